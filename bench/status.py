"""Benchmark ``status`` (issue 15): the public status page under load.

200 Components and 10,000 Incidents (each affecting one to three components; most ended
over the past year, a few active), then, in the same run, with wrk at 32 connections:

- anonymous ``GET /status/components`` (every component with its active impacts) against
  the same objects on the KRM path (``GET .../components``, authenticated);
- anonymous ``GET /status/incidents?start=&end=`` for the last 30 days against a KRM list
  of as many incidents (``?limit=``, the nearest KRM request: the KRM API has no time
  filter).

Reported: requests/s, p99 and server CPU per request for each, and the response sizes.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .common import connect, cpu_seconds, run_wrk, start_server, stop_server

KRM = "/apis/status.scs.community/v1alpha1"
PREFIX = "/status"
CONFIG = """\
services: [tenancy, status]
controllers: external
status: {probes: {enabled: false}}
"""
WINDOW_DAYS = 30
UNLIMITED = ("--rate-limit", "1000000", "--rate-burst", "1000000")
"""wrk's anonymous requests all come from 127.0.0.1, one client address: the per-address
limit of anonymous callers would answer most of them with 429."""


def component(i: int) -> dict[str, Any]:
    return {"apiVersion": "status.scs.community/v1alpha1", "kind": "Component",
            "metadata": {"name": f"component-{i:03d}"},
            "spec": {"displayName": f"Component {i}",
                     "labels": {"region": f"region-{i % 4}", "service": f"svc-{i % 25}"}}}


def incident(i: int, components: int, now: datetime, rng: random.Random) -> dict[str, Any]:
    began = now - timedelta(minutes=rng.randrange(1, 365 * 24 * 60))
    active = i % 500 == 0
    ended = None if active else began + timedelta(minutes=rng.randrange(5, 600))
    affected = rng.sample(range(components), rng.randrange(1, 4))
    return {"apiVersion": "status.scs.community/v1alpha1", "kind": "Incident",
            "metadata": {"name": f"incident-{i:05d}"},
            "spec": {"displayName": f"Incident {i}", "description": "benchmark incident",
                     "beganAt": _time(began), "endedAt": _time(ended) if ended else None,
                     "affects": [{"component": f"component-{c:03d}", "impactType": "degraded",
                                  "severity": rng.choice((10, 50, 100))} for c in affected],
                     "updates": [{"order": 0, "displayName": "Investigating",
                                  "createdAt": _time(began)}]}}


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _populate(server: Any, components: int, incidents: int) -> None:
    now, rng = datetime.now(UTC), random.Random(15)  # noqa: S311 - reproducible test data
    conns = [await connect(server) for _ in range(8)]
    await conns[0].json("POST", f"{KRM}/impacttypes", {
        "metadata": {"name": "degraded"}, "spec": {"displayName": "Degraded"}})
    for name, value in (("minor", 25), ("major", 75), ("down", 100)):
        await conns[0].json("POST", f"{KRM}/severities",
                            {"metadata": {"name": name}, "spec": {"value": value}})

    async def worker(conn: Any, chunk: list[tuple[str, dict[str, Any]]]) -> None:
        for path, body in chunk:
            await conn.json("POST", path, body)

    # Components first: an incident naming a component not created yet is refused (422),
    # and 8 connections in parallel do not keep the order of one list.
    for bodies in ([(f"{KRM}/components", component(i)) for i in range(components)],
                   [(f"{KRM}/incidents", incident(i, components, now, rng))
                    for i in range(incidents)]):
        await asyncio.gather(*(worker(c, bodies[i::len(conns)])
                               for i, c in enumerate(conns)))
    for conn in conns:
        conn.close()


async def _sizes(server: Any, paths: dict[str, tuple[str, bool]]) -> dict[str, dict[str, int]]:
    """Response bytes and item count of each benchmarked request, checked to succeed."""
    conn = await connect(server)
    found = {}
    for name, (path, _) in paths.items():
        status, body = await conn.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:300]!r}")
        data = json.loads(body)
        items = data.get("data", data.get("items"))
        found[name] = {"bytes": len(body), "items": len(items)}
    conn.close()
    return found


def bench_status(components: int, incidents: int, seconds: float, report: Any,
                 work: Path) -> None:
    server = start_server(config=CONFIG, timeout=180, args=UNLIMITED)
    try:
        asyncio.run(_populate(server, components, incidents))
        now = datetime.now(UTC)
        window = urlencode({"start": _time(now - timedelta(days=WINDOW_DAYS)),
                            "end": _time(now)})
        paths = {"components": (f"{PREFIX}/components", False),
                 "krm-components": (f"{KRM}/components", True),
                 "incidents": (f"{PREFIX}/incidents?{window}", False)}
        sizes = asyncio.run(_sizes(server, paths))
        paths["krm-incidents"] = (f"{KRM}/incidents?limit={sizes['incidents']['items']}", True)
        sizes.update(asyncio.run(_sizes(server, {"krm-incidents": paths["krm-incidents"]})))
        results = {name: _wrk(server, path, authenticated, seconds, work)
                   for name, (path, authenticated) in paths.items()}
    finally:
        stop_server(server)
    report.details["status"] = {"components": components, "incidents": incidents,
                                "window_days": WINDOW_DAYS, "sizes": sizes, **results}
    for name, krm in (("components", "krm-components"), ("incidents", "krm-incidents")):
        api, base = results[name], results[krm]
        label = f"anonymous GET /{name} ({sizes[name]['items']} items, " \
                f"{sizes[name]['bytes'] // 1024} KiB; baseline: the KRM list)"
        report.add("status", f"{label} req/s", api["req_per_s"], base["req_per_s"],
                   round(api["req_per_s"] / base["req_per_s"], 3) if base["req_per_s"] else "")
        report.add("status", f"GET /{name} p99 ms", api["p99_us"] / 1000, base["p99_us"] / 1000)
        report.add("status", f"GET /{name} server CPU µs per request",
                   api["cpu_us_per_request"], base["cpu_us_per_request"])


def _wrk(server: Any, path: str, authenticated: bool, seconds: float,
         work: Path) -> dict[str, Any]:
    pid = server.proc.pid
    before = cpu_seconds(pid)
    result = run_wrk(server.url + path, server.token if authenticated else "", seconds, 32, "",
                     work)
    errors = sum(result[k] for k in ("status_errors", "connect_errors", "read_errors",
                                     "write_errors", "timeouts"))
    if errors:
        raise RuntimeError(f"wrk saw {errors} errors on {path}: {result}")
    result["cpu_us_per_request"] = round((cpu_seconds(pid) - before) * 1e6
                                         / max(result["requests"], 1), 1)
    return result
