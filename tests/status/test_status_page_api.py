"""The SCS status-page API (spec 1.1.2) against a real ``scs serve``.

Every response goes through ``StatusApi``, which validates it against the spec's schema for
its path, method and status code (see conftest), so each test here is also a conformance
test of the operations it calls.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.status.conftest import PREFIX, StatusApi, spec

STATUS_KRM = "/apis/status.scs.community/v1alpha1"
WINDOW = "?start=2024-01-01T00:00:00Z&end=2030-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def base(admin: StatusApi) -> dict[str, str]:
    """A component, an impact type, a severity and a phase list the tests share."""
    component = admin.create("/components", {"displayName": "Block storage",
                                              "labels": {"region": "r1"}})
    impact_type = admin.create("/impacttypes", {"displayName": "Performance degraded",
                                                "description": "slow"})
    assert admin.post("/severities", {"displayName": "impacted", "value": 60}
                      ).status_code == 204
    assert admin.post("/phases", {"phases": ["Investigating", "Fixing", "Resolved"]}
                      ).status_code == 201
    return {"component": component, "impact_type": impact_type}


def incident(base: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"displayName": "Volumes slow", "description": "attach takes minutes",
            "beganAt": "2025-03-01T10:00:00Z", "endedAt": None,
            "affects": [{"reference": base["component"], "type": base["impact_type"],
                         "severity": 60}]}
    return {**body, **fields}


def krm_items(kube: httpx.Client, plural: str) -> list[dict[str, Any]]:
    response = kube.get(f"{STATUS_KRM}/{plural}")
    assert response.status_code == 200, response.text
    return [{"name": o["metadata"]["name"], "rv": o["metadata"]["resourceVersion"]}
            for o in response.json()["items"]]


def test_openapi_json_is_the_spec(anonymous: StatusApi) -> None:
    response = anonymous.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == spec()


def test_component_round_trip_with_read_after_write(admin: StatusApi) -> None:
    cid = admin.create("/components", {"displayName": "Compute", "labels": {"az": "1"}})
    assert admin.data(f"/components/{cid}") == {
        "id": cid, "displayName": "Compute", "labels": {"az": "1"}, "activelyAffectedBy": []}
    assert admin.patch(f"/components/{cid}", {"displayName": "Compute (r1)"}
                       ).status_code == 204
    got = admin.data(f"/components/{cid}")
    assert got["displayName"] == "Compute (r1)" and got["labels"] == {"az": "1"}, \
        "PATCH keeps the fields it leaves out"
    assert cid in [c["id"] for c in admin.data("/components")]
    assert admin.delete(f"/components/{cid}").status_code == 204
    assert admin.get(f"/components/{cid}").status_code == 404
    assert admin.delete(f"/components/{cid}").status_code == 404


def test_impact_type_round_trip(admin: StatusApi) -> None:
    tid = admin.create("/impacttypes", {"displayName": "Unavailable"})
    assert admin.patch(f"/impacttypes/{tid}", {"description": "down"}).status_code == 204
    assert admin.data(f"/impacttypes/{tid}") == {"id": tid, "displayName": "Unavailable",
                                                 "description": "down"}
    assert tid in [t["id"] for t in admin.data("/impacttypes")]
    assert admin.delete(f"/impacttypes/{tid}").status_code == 204
    assert admin.get(f"/impacttypes/{tid}").status_code == 404


def test_severities_are_named_and_unique_by_value(admin: StatusApi) -> None:
    assert admin.post("/severities", {"displayName": "minor", "value": 20}).status_code == 204
    assert admin.data("/severities/minor") == {"displayName": "minor", "value": 20}
    duplicate = admin.post("/severities", {"displayName": "small", "value": 20})
    assert duplicate.status_code == 400 and "Duplicate value" in duplicate.json()["message"]
    assert admin.get("/severities/small").status_code == 404
    assert admin.patch("/severities/minor", {"value": 25}).status_code == 204
    assert admin.patch("/severities/minor", {"displayName": "low"}).status_code == 204
    assert admin.get("/severities/minor").status_code == 404
    assert admin.data("/severities/low") == {"displayName": "low", "value": 25}
    values = [s["value"] for s in admin.data("/severities")]
    assert values == sorted(values)
    assert admin.delete("/severities/low").status_code == 204
    assert admin.get("/severities/low").status_code == 404


def test_phase_lists_are_immutable_generations(admin: StatusApi, base: dict[str, str]
                                               ) -> None:
    first = admin.data("/phases")
    created = admin.post("/phases", {"phases": ["Open", "Closed"]})
    assert created.status_code == 201
    generation = created.json()["generation"]
    assert generation == first["generation"] + 1
    assert admin.data("/phases") == {"generation": generation, "phases": ["Open", "Closed"]}
    assert admin.data(f"/phases?generation={first['generation']}") == first
    assert admin.get("/phases?generation=999").status_code == 404
    assert admin.get("/phases?generation=x").status_code == 400


def test_incident_updates_are_numbered_from_zero(admin: StatusApi, base: dict[str, str]
                                                 ) -> None:
    iid = admin.create("/incidents", incident(base))
    orders = [admin.post(f"/incidents/{iid}/updates", {"displayName": f"u{i}"}).json()["order"]
              for i in range(3)]
    assert orders == [0, 1, 2]
    assert admin.delete(f"/incidents/{iid}/updates/1").status_code == 204
    assert admin.post(f"/incidents/{iid}/updates", {"displayName": "u3"}).json()["order"] == 3
    assert admin.patch(f"/incidents/{iid}/updates/0", {"description": "found it"}
                       ).status_code == 204
    update = admin.data(f"/incidents/{iid}/updates/0")
    assert update["displayName"] == "u0" and update["description"] == "found it"
    assert update["createdAt"] is not None
    assert [u["order"] for u in admin.data(f"/incidents/{iid}/updates")] == [0, 2, 3]
    assert admin.data(f"/incidents/{iid}")["updates"] == [0, 2, 3]
    assert admin.get(f"/incidents/{iid}/updates/1").status_code == 404
    assert admin.delete(f"/incidents/{iid}/updates/1").status_code == 404


def test_active_incident_affects_its_component_until_it_ends(admin: StatusApi,
                                                             base: dict[str, str]) -> None:
    iid = admin.create("/incidents", incident(base, phase={"generation": 1, "order": 0}))
    got = admin.data(f"/incidents/{iid}")
    assert got["endedAt"] is None and got["phase"] == {"generation": 1, "order": 0}
    assert got["affects"] == [{"reference": base["component"], "type": base["impact_type"],
                               "severity": 60}]
    impacts = admin.data(f"/components/{base['component']}")["activelyAffectedBy"]
    assert {"reference": iid, "type": base["impact_type"], "severity": 60} in impacts
    before = admin.data(f"/components/{base['component']}?at=2025-02-01T00:00:00Z")
    assert iid not in [i["reference"] for i in before["activelyAffectedBy"]]
    assert admin.patch(f"/incidents/{iid}", {"endedAt": "2025-03-02T10:00:00Z"}
                       ).status_code == 204
    now = admin.data(f"/components/{base['component']}")["activelyAffectedBy"]
    assert iid not in [i["reference"] for i in now]
    during = admin.data("/components?at=2025-03-01T12:00:00Z")
    mine = next(c for c in during if c["id"] == base["component"])
    assert iid in [i["reference"] for i in mine["activelyAffectedBy"]]


def test_incidents_are_selected_by_time_window(admin: StatusApi, base: dict[str, str]
                                               ) -> None:
    old = admin.create("/incidents", incident(base, beganAt="2020-01-01T00:00:00Z",
                                              endedAt="2020-01-02T00:00:00Z"))
    active = admin.create("/incidents", incident(base, beganAt="2020-06-01T00:00:00Z"))
    window = "?start=2021-01-01T00:00:00Z&end=2021-12-31T00:00:00Z"
    ids = [i["id"] for i in admin.data(f"/incidents{window}")]
    assert active in ids and old not in ids
    assert old in [i["id"] for i in admin.data(
        "/incidents?start=2019-12-31T00:00:00Z&end=2020-01-01T12:00:00Z")]
    assert admin.get("/incidents?start=2021-01-01T00:00:00Z").status_code == 400
    assert admin.get("/incidents?start=2022-01-01T00:00:00Z&end=2021-01-01T00:00:00Z"
                     ).status_code == 400


def test_patch_incident_replaces_affects_and_keeps_the_rest(admin: StatusApi,
                                                            base: dict[str, str]) -> None:
    iid = admin.create("/incidents", incident(base))
    assert admin.patch(f"/incidents/{iid}", {"affects": []}).status_code == 204
    got = admin.data(f"/incidents/{iid}")
    assert got["affects"] == [] and got["displayName"] == "Volumes slow"
    assert got["beganAt"] == "2025-03-01T10:00:00.000Z"
    assert admin.delete(f"/incidents/{iid}").status_code == 204
    assert admin.get(f"/incidents/{iid}/updates").status_code == 404


def test_maintenance_needs_an_end(admin: StatusApi, base: dict[str, str]) -> None:
    body = incident(base, affects=[{"reference": base["component"],
                                    "type": base["impact_type"], "severity": 0}])
    refused = admin.post("/incidents", body)
    assert refused.status_code == 400 and "maintenance" in refused.json()["message"]
    assert admin.post("/incidents", {**body, "endedAt": "2025-03-01T12:00:00Z"}
                      ).status_code == 201


UNKNOWN = "00000000-0000-4000-8000-000000000000"


def bad_inputs(base: dict[str, str]) -> list[tuple[str, str, Any, int, str]]:
    """(method, path, body, status, text in the message) — none of them may store anything."""
    ok_incident = incident(base)
    return [
        ("POST", "/components", b"{not json", 400, "not valid JSON"),
        ("POST", "/components", [], 400, "JSON object"),
        ("POST", "/components", {}, 400, "none of the object's fields"),
        ("POST", "/components", {"displayName": 7}, 400, "displayName"),
        ("POST", "/components", {"labels": {"a": 1}}, 400, "labels"),
        ("POST", "/impacttypes", {"displayName": ["x"]}, 400, "displayName"),
        ("POST", "/severities", {"displayName": "x", "value": "high"}, 400, "value"),
        ("POST", "/severities", {"displayName": "x", "value": 101}, 400, "value"),
        ("POST", "/severities", {"value": 30}, 400, "displayName"),
        ("POST", "/severities", {"displayName": "bad/name", "value": 31}, 400, ""),
        ("POST", "/phases", {"phases": []}, 400, "phases"),
        ("POST", "/phases", {"phases": "Investigating"}, 400, "phases"),
        ("POST", "/incidents", {**ok_incident, "beganAt": "yesterday"}, 400, "beganAt"),
        ("POST", "/incidents", {**ok_incident, "beganAt": "2025-13-01T00:00:00Z"}, 400,
         "beganAt"),
        ("POST", "/incidents", {**ok_incident, "endedAt": "2025-02-01T00:00:00Z"}, 400,
         "endedAt"),
        ("POST", "/incidents", {**ok_incident, "affects": [
            {"reference": UNKNOWN, "type": base["impact_type"], "severity": 5}]}, 400,
         "no component"),
        ("POST", "/incidents", {**ok_incident, "affects": [
            {"reference": "nope", "type": base["impact_type"], "severity": 5}]}, 400,
         "not a UUID"),
        ("POST", "/incidents", {**ok_incident, "affects": [
            {"reference": base["component"], "type": base["impact_type"], "severity": True}]},
         400, "severity"),
        ("POST", "/incidents", {**ok_incident, "phase": {"generation": 999, "order": 0}},
         400, "phase"),
        ("POST", "/incidents", {**ok_incident, "phase": {"generation": 1, "order": 99}},
         400, "phase"),
        ("PATCH", f"/components/{UNKNOWN}", {"displayName": "x"}, 404, ""),
        ("PATCH", "/components/not-a-uuid", {"displayName": "x"}, 400,
         "Invalid format for parameter componentId"),
        ("DELETE", f"/incidents/{UNKNOWN}", None, 404, ""),
        ("POST", f"/incidents/{UNKNOWN}/updates", {"displayName": "x"}, 404, ""),
        ("GET", "/incidents/x/updates/1", None, 400, "incidentId"),
        ("PATCH", "/severities/nosuch", {"value": 3}, 404, ""),
        ("GET", "/components?at=tomorrow", None, 400, "parameter at"),
        ("GET", "/nothing-here", None, 404, ""),
        ("PUT", "/components", {"displayName": "x"}, 405, ""),
    ]


KINDS = ["components", "impacttypes", "severities", "phaselists", "incidents"]


def test_bad_input_gets_a_clear_error_and_stores_nothing(admin: StatusApi,
                                                         kube: httpx.Client,
                                                         base: dict[str, str]) -> None:
    before = {plural: krm_items(kube, plural) for plural in KINDS}
    for method, path, body, status, text in bad_inputs(base):
        content = body if isinstance(body, bytes) else \
            (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if content is not None else {}
        response = admin.request(method, path, content=content, headers=headers)
        assert response.status_code == status, (method, path, body, response.text)
        assert text in response.json()["message"], (method, path, response.text)
    assert {plural: krm_items(kube, plural) for plural in KINDS} == before


def test_oversized_and_non_json_bodies_are_refused(admin: StatusApi, kube: httpx.Client
                                                   ) -> None:
    before = krm_items(kube, "components")
    huge = json.dumps({"displayName": "x" * (4 * 1024 * 1024)})
    response = admin.request("POST", "/components", content=huge,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    response = admin.request("POST", "/components", content="displayName: x",
                             headers={"Content-Type": "application/yaml"})
    assert response.status_code == 415
    too_long = admin.post("/components", {"displayName": "x" * 300})
    assert too_long.status_code == 400 and "displayName" in too_long.json()["message"]
    assert krm_items(kube, "components") == before


def test_objects_written_with_the_krm_api_show_in_the_rest_view(admin: StatusApi,
                                                                kube: httpx.Client) -> None:
    created = kube.post(f"{STATUS_KRM}/components", json={
        "metadata": {"name": "object-storage"}, "spec": {"displayName": "Object storage"}})
    assert created.status_code == 201, created.text
    uid = created.json()["metadata"]["uid"]
    assert admin.data(f"/components/{uid}")["displayName"] == "Object storage"
    assert kube.delete(f"{STATUS_KRM}/components/object-storage").status_code == 200
    assert admin.get(f"/components/{uid}").status_code == 404


def test_trailing_slash_is_the_same_path(admin: StatusApi) -> None:
    response = admin.http.get(f"{PREFIX}/components/")
    assert response.status_code == 200 and "data" in response.json()
