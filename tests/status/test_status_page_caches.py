"""The status-page API's precomputed reads (``server/statuspage/index.py``) against a real
``scs serve``: cached lists and rendered incident views must follow every write, through
the REST API and kubectl's KRM path alike, and time windows must select exactly what the
reference server selects at their edges.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.status.conftest import StatusApi

STATUS_KRM = "/apis/status.scs.community/v1alpha1"


def eventually(read: Callable[[], Any], want: Callable[[Any], bool], timeout: float = 10
               ) -> Any:
    """A KRM write answers before this process's informer has it (no read-after-write
    across the two APIs): poll until the REST view shows it."""
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if want(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def krm_create(kube: httpx.Client, plural: str, name: str, spec: dict[str, Any]) -> str:
    response = kube.post(f"{STATUS_KRM}/{plural}",
                         json={"metadata": {"name": name}, "spec": spec})
    assert response.status_code == 201, response.text
    return str(response.json()["metadata"]["uid"])


def test_cached_lists_follow_every_rest_write(admin: StatusApi) -> None:
    """Each list is read (and so cached) before the write that must show in it."""
    admin.data("/components")
    cid = admin.create("/components", {"displayName": "Cached compute"})
    assert cid in [c["id"] for c in admin.data("/components")]
    assert admin.patch(f"/components/{cid}", {"labels": {"az": "2"}}).status_code == 204
    mine = [c for c in admin.data("/components") if c["id"] == cid]
    assert mine[0]["labels"] == {"az": "2"}

    admin.data("/impacttypes")
    tid = admin.create("/impacttypes", {"displayName": "Cached slow"})
    assert tid in [t["id"] for t in admin.data("/impacttypes")]

    admin.data("/severities")
    assert admin.post("/severities", {"displayName": "cached", "value": 33}
                      ).status_code == 204
    assert {"displayName": "cached", "value": 33} in admin.data("/severities")

    before = admin.data("/phases")
    created = admin.post("/phases", {"phases": ["Seen", "Gone"]})
    assert created.status_code == 201
    assert admin.data("/phases") == {"generation": before["generation"] + 1,
                                     "phases": ["Seen", "Gone"]}

    admin.data("/components")
    iid = admin.create("/incidents", {
        "displayName": "Cached outage", "beganAt": "2025-01-01T00:00:00Z", "endedAt": None,
        "affects": [{"reference": cid, "type": tid, "severity": 30}]})
    mine = [c for c in admin.data("/components") if c["id"] == cid]
    assert mine[0]["activelyAffectedBy"] == [{"reference": iid, "type": tid, "severity": 30}]
    assert admin.patch(f"/incidents/{iid}", {"endedAt": "2025-01-02T00:00:00Z"}
                       ).status_code == 204
    mine = [c for c in admin.data("/components") if c["id"] == cid]
    assert mine[0]["activelyAffectedBy"] == []


def test_incident_views_follow_their_components_coming_and_going(
        admin: StatusApi, kube: httpx.Client) -> None:
    """An incident's view names the ids of the components it affects; a component deleted
    and created again under the same name (kubectl) gets a new id, which the view shows."""
    first = krm_create(kube, "components", "cache-db", {"displayName": "Database"})
    tid = admin.create("/impacttypes", {"displayName": "Down"})
    eventually(lambda: admin.get(f"/components/{first}").status_code, lambda s: s == 200)
    iid = admin.create("/incidents", {
        "displayName": "DB down", "beganAt": "2025-02-01T00:00:00Z", "endedAt": None,
        "affects": [{"reference": first, "type": tid, "severity": 90}]})
    assert admin.data(f"/incidents/{iid}")["affects"][0]["reference"] == first

    assert kube.delete(f"{STATUS_KRM}/components/cache-db").status_code == 200
    got = eventually(lambda: admin.data(f"/incidents/{iid}"), lambda v: v["affects"] == [])
    assert got["affects"] == [], "an impact on a component that is gone is left out"

    second = krm_create(kube, "components", "cache-db", {"displayName": "Database"})
    assert second != first
    got = eventually(lambda: admin.data(f"/incidents/{iid}"), lambda v: v["affects"] != [])
    assert got["affects"] == [{"reference": second, "type": tid, "severity": 90}]


def test_many_incident_views_rerendered_at_once_stay_the_same(admin: StatusApi) -> None:
    """Forty incidents listed, then an impact type added (every rendered view is stale, and
    more than the loop renders per request are rendered in a worker thread): the list
    reads the same, twice."""
    cid = admin.create("/components", {"displayName": "Network"})
    tid = admin.create("/impacttypes", {"displayName": "Lossy"})
    ids = [admin.create("/incidents", {
        "displayName": f"Packet loss {i}", "beganAt": f"2023-05-{i % 28 + 1:02d}T10:00:00Z",
        "endedAt": f"2023-06-{i % 28 + 1:02d}T10:00:00Z",
        "affects": [{"reference": cid, "type": tid, "severity": 40}]}) for i in range(40)]
    window = "/incidents?start=2023-01-01T00:00:00Z&end=2023-12-31T00:00:00Z"
    listed = admin.data(window)
    assert sorted(i["id"] for i in listed) == sorted(ids)
    admin.create("/impacttypes", {"displayName": "Unrelated"})
    assert admin.data(window) == listed
    assert admin.data(window) == listed


def test_window_edges_are_inclusive_and_at_is_exclusive_of_the_end(admin: StatusApi
                                                                   ) -> None:
    """Listed in [start, end] when it began by the end and did not end before the start;
    active ``?at=`` from its begin up to (not at) its end."""
    cid = admin.create("/components", {"displayName": "Edges"})
    tid = admin.create("/impacttypes", {"displayName": "Edge impact"})
    iid = admin.create("/incidents", {
        "displayName": "Edge", "beganAt": "2022-03-01T10:00:00Z",
        "endedAt": "2022-03-01T12:00:00.5Z",
        "affects": [{"reference": cid, "type": tid, "severity": 20}]})

    def listed(start: str, end: str) -> bool:
        return iid in [i["id"] for i in admin.data(f"/incidents?start={start}&end={end}")]

    def active(at: str) -> bool:
        return bool(admin.data(f"/components/{cid}?at={at}")["activelyAffectedBy"])

    assert listed("2022-03-01T12:00:00.5Z", "2022-03-02T00:00:00Z")
    assert not listed("2022-03-01T12:00:00.501Z", "2022-03-02T00:00:00Z")
    assert listed("2022-02-01T00:00:00Z", "2022-03-01T10:00:00Z")
    assert not listed("2022-02-01T00:00:00Z", "2022-03-01T09:59:59.999Z")
    assert listed("2022-03-01T11:00:00%2B01:00", "2022-03-01T11:00:00%2B01:00"), "same instant"
    assert active("2022-03-01T10:00:00Z") and active("2022-03-01T12:00:00.499Z")
    assert not active("2022-03-01T12:00:00.5Z") and not active("2022-03-01T09:59:59Z")
    at_list = admin.data("/components?at=2022-03-01T11:00:00Z")
    assert [c["activelyAffectedBy"] for c in at_list if c["id"] == cid] == [
        [{"reference": iid, "type": tid, "severity": 20}]]
