"""The status page's incident timeline (``server/statuspage/index.py``) against the plain
rule it replaces: for random incidents, changed and deleted along the way, a window query
selects exactly the incidents the reference's predicate selects, and ``?at=`` the ones
``is_active`` calls active, in the API's order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from central_api.kinds.status import is_active, parse_time
from central_api.server.statuspage.index import IncidentTimeline, micros

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def stamp(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_incident(rng: random.Random, name: str) -> dict[str, Any]:
    began = rng.randrange(0, 1000)
    length = rng.randrange(-20, 0) if rng.random() < 0.03 else rng.randrange(0, 200)
    spec: dict[str, Any] = {  # a few end before they begin (stored before validation)
        "beganAt": None if rng.random() < 0.05 else stamp(began),
        "endedAt": None if rng.random() < 0.2 else stamp(began + length)}
    return {"metadata": {"name": name, "uid": f"uid-{name}",
                         "creationTimestamp": stamp(rng.randrange(0, 50))}, "spec": spec}


def overlaps(obj: dict[str, Any], start: datetime, end: datetime) -> bool:
    """The reference's rule: began by the window's end, not ended before its start."""
    began, ended = parse_time(obj["spec"]["beganAt"]), parse_time(obj["spec"]["endedAt"])
    return (began is None or began <= end) and (ended is None or ended >= start)


def expected(live: dict[str, dict[str, Any]], start: datetime, end: datetime) -> list[str]:
    found = [o for o in live.values() if overlaps(o, start, end)]
    found.sort(key=lambda o: (o["metadata"]["creationTimestamp"], o["metadata"]["name"]))
    return [o["metadata"]["name"] for o in found]


def test_window_queries_select_what_the_reference_rules_select() -> None:
    rng = random.Random(7)
    timeline, live = IncidentTimeline(), {}
    for step in range(3000):
        name = f"incident-{rng.randrange(400)}"
        if name in live and rng.random() < 0.2:
            timeline.drop(name)
            del live[name]
        else:
            live[name] = random_incident(rng, name)
            timeline.put(live[name])
        if step % 50 == 0:
            a, b = sorted(rng.randrange(-100, 1300) for _ in range(2))
            start, end = BASE + timedelta(minutes=a), BASE + timedelta(minutes=b)
            got = [e.name for e in timeline.overlapping(micros(start), micros(end))]
            assert got == expected(live, start, end), (start, end)
            active = [e.name for e in timeline.active_at(micros(start))]
            assert active == [n for n in expected(live, start, start)
                              if is_active(live[n], start)], start
    assert sorted(timeline.entries) == sorted(live)
