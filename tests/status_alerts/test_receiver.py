"""The Alertmanager webhook receiver, fed notifications directly (the shapes Alertmanager
0.25 sends; test_prometheus_alertmanager.py has the real Alertmanager send them).

Every alert becomes an Incident of the status page, seen here through the KRM API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.security.support import client, unique
from tests.server import ScsServer

from .support import (
    FINGERPRINT_LABEL,
    IMPACT_TYPE,
    INCIDENTS,
    SOURCE_LABEL,
    WEBHOOK,
    admin,
    alert,
    create_status_objects,
    editor_role,
    fingerprint,
    incidents,
    notification,
    serve,
    token_with_role,
)

COMPONENT = unique("block-storage")
MAPPED = unique("compute")


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    yield from serve({"status": {"alertmanager": {"components": {"nova": MAPPED}}}})


@pytest.fixture(scope="module")
def http(server: ScsServer) -> Iterator[httpx.Client]:
    with admin(server) as http:
        create_status_objects(http, COMPONENT)
        create_status_objects(http, MAPPED)
        yield http


@pytest.fixture(scope="module")
def receiver(server: ScsServer, http: httpx.Client) -> Iterator[httpx.Client]:
    """Alertmanager's identity: a ServiceAccount token holding the status-editor role."""
    with client(server, token_with_role(http, editor_role(http))) as receiver:
        yield receiver


def send(receiver: httpx.Client, *alerts: dict[str, Any]) -> dict[str, Any]:
    response = receiver.post(WEBHOOK, json=notification(*alerts))
    assert response.status_code == 200, response.text
    return dict(response.json())


def only(http: httpx.Client, fp: str) -> dict[str, Any]:
    found = incidents(http, fp)
    assert len(found) == 1, found
    return found[0]


def test_firing_alert_opens_an_incident_on_its_component(http: httpx.Client,
                                                        receiver: httpx.Client) -> None:
    fp = fingerprint()
    summary = send(receiver, alert(fp, COMPONENT, severity="critical"))
    incident = only(http, fp)
    assert summary["opened"] == [incident["metadata"]["name"]]
    assert incident["metadata"]["labels"] == {SOURCE_LABEL: "alertmanager",
                                              FINGERPRINT_LABEL: fp}
    spec = incident["spec"]
    assert spec["displayName"] == "Block storage is down"
    assert spec["description"] == "Volumes hang."
    assert spec["beganAt"] == "2030-01-02T03:04:05.123Z"
    assert spec.get("endedAt") is None
    assert spec["affects"] == [{"component": COMPONENT, "impactType": IMPACT_TYPE,
                                "severity": 100}]


def test_component_label_is_mapped_and_severity_label_sets_the_severity(
        http: httpx.Client, receiver: httpx.Client) -> None:
    fp = fingerprint()
    send(receiver, alert(fp, "nova", severity="warning"))
    assert only(http, fp)["spec"]["affects"] == [
        {"component": MAPPED, "impactType": IMPACT_TYPE, "severity": 50}]


def test_alert_without_summary_is_named_after_alertname(http: httpx.Client,
                                                        receiver: httpx.Client) -> None:
    fp = fingerprint()
    send(receiver, alert(fp, COMPONENT, summary=""))
    assert only(http, fp)["spec"]["displayName"] == "BackendDown"


def test_repeated_notification_keeps_one_incident_and_adds_no_update(
        http: httpx.Client, receiver: httpx.Client) -> None:
    fp = fingerprint()
    send(receiver, alert(fp, COMPONENT))
    before = only(http, fp)
    for _ in range(3):  # Alertmanager re-sends every repeat_interval
        summary = send(receiver, alert(fp, COMPONENT))
        assert summary["unchanged"] == [before["metadata"]["name"]]
    after = only(http, fp)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"].get("updates", []) == []


def test_changed_alert_updates_the_incident_once(http: httpx.Client,
                                                 receiver: httpx.Client) -> None:
    fp = fingerprint()
    send(receiver, alert(fp, COMPONENT, severity="warning"))
    for _ in range(2):
        send(receiver, alert(fp, COMPONENT, severity="critical", description="All down."))
    spec = only(http, fp)["spec"]
    assert spec["affects"][0]["severity"] == 100
    assert spec["description"] == "All down."
    assert len(spec["updates"]) == 1
    assert "impact" in spec["updates"][0]["description"]


def test_repeats_keep_a_status_editors_own_wording(http: httpx.Client,
                                                   receiver: httpx.Client) -> None:
    fp = fingerprint()
    send(receiver, alert(fp, COMPONENT))
    incident = only(http, fp)
    incident["spec"]["displayName"] = "Volumes cannot be attached in region 1"
    edited = http.put(f"{INCIDENTS}/{incident['metadata']['name']}", json=incident)
    assert edited.status_code == 200, edited.text
    send(receiver, alert(fp, COMPONENT))
    assert only(http, fp)["spec"]["displayName"] == "Volumes cannot be attached in region 1"
    send(receiver, alert(fp, COMPONENT, summary="Block storage is down in all regions"))
    assert only(http, fp)["spec"]["displayName"] == "Block storage is down in all regions"


def test_resolved_alert_ends_the_incident_with_a_closing_update(
        http: httpx.Client, receiver: httpx.Client) -> None:
    fp = fingerprint()
    send(receiver, alert(fp, COMPONENT))
    summary = send(receiver, alert(fp, COMPONENT, "resolved",
                                   ends_at="2030-01-02T04:00:00.5Z"))
    incident = only(http, fp)
    assert summary["ended"] == [incident["metadata"]["name"]]
    assert incident["spec"]["endedAt"] == "2030-01-02T04:00:00.500Z"
    assert [u["displayName"] for u in incident["spec"]["updates"]] == ["Resolved"]
    again = send(receiver, alert(fp, COMPONENT, "resolved", ends_at="2030-01-02T04:00:00.5Z"))
    assert again["ignored"] == [incident["metadata"]["name"]]
    assert only(http, fp)["metadata"]["resourceVersion"] == \
        incident["metadata"]["resourceVersion"]


def test_alert_firing_again_after_resolve_opens_a_new_incident(
        http: httpx.Client, receiver: httpx.Client) -> None:
    fp = fingerprint()
    send(receiver, alert(fp, COMPONENT))
    send(receiver, alert(fp, COMPONENT, "resolved", ends_at="2030-01-02T04:00:00Z"))
    send(receiver, alert(fp, COMPONENT, starts_at="2030-01-02T05:00:00Z"))
    found = sorted(incidents(http, fp), key=lambda i: i["spec"]["beganAt"])
    assert [i["spec"].get("endedAt") for i in found] == ["2030-01-02T04:00:00.000Z", None]
    assert found[1]["spec"]["beganAt"] == "2030-01-02T05:00:00.000Z"


def test_new_episode_ends_an_incident_whose_resolve_was_lost(
        http: httpx.Client, receiver: httpx.Client) -> None:
    fp = fingerprint()
    send(receiver, alert(fp, COMPONENT))
    send(receiver, alert(fp, COMPONENT, starts_at="2030-01-03T00:00:00Z"))
    found = sorted(incidents(http, fp), key=lambda i: i["spec"]["beganAt"])
    assert [i["spec"].get("endedAt") for i in found] == ["2030-01-03T00:00:00.000Z", None]


def test_unknown_component_opens_an_incident_without_impact_and_says_so(
        http: httpx.Client, receiver: httpx.Client) -> None:
    fp = fingerprint()
    summary = send(receiver, alert(fp, "no-such-component"))
    assert summary["unknownReferences"] == ["component 'no-such-component'"]
    assert only(http, fp)["spec"]["affects"] == []


def test_notification_with_many_alerts_handles_each(http: httpx.Client,
                                                    receiver: httpx.Client) -> None:
    fps = [fingerprint() for _ in range(5)]
    summary = send(receiver, *(alert(fp, COMPONENT) for fp in fps))
    assert len(summary["opened"]) == 5
    assert all(len(incidents(http, fp)) == 1 for fp in fps)


def test_concurrent_identical_notifications_open_one_incident(
        server: ScsServer, http: httpx.Client, receiver: httpx.Client) -> None:
    """Two replicas (or a retry racing the original) deliver the same notification."""
    fp = fingerprint()
    token = receiver.headers["Authorization"].removeprefix("Bearer ")
    codes: list[int] = []
    start = threading.Barrier(6)

    def deliver() -> None:
        with client(server, token) as own:
            start.wait()
            codes.append(own.post(WEBHOOK, json=notification(alert(fp, COMPONENT))).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 6
    assert only(http, fp)["spec"].get("updates", []) == []


# -- refusals ------------------------------------------------------------------------------
def _valid() -> dict[str, Any]:
    return notification(alert(fingerprint(), COMPONENT))


def _mutated(change: str) -> bytes:
    body = _valid()
    first = body["alerts"][0]
    if change == "version 3":
        body["version"] = "3"
    elif change == "no alerts field":
        del body["alerts"]
    elif change == "empty alerts":
        body["alerts"] = []
    elif change == "labels not an object":
        first["labels"] = ["component", COMPONENT]
    elif change == "label value not a string":
        first["labels"]["severity"] = 3
    elif change == "startsAt a number":
        first["startsAt"] = 1700000000
    elif change == "startsAt malformed":
        first["startsAt"] = "yesterday at noon"
    elif change == "startsAt without zone":
        first["startsAt"] = "2030-01-02T03:04:05"
    elif change == "fingerprint not hex":
        first["fingerprint"] = "../../etc"
    elif change == "status unknown":
        first["status"] = "pending"
    elif change == "second alert broken":
        body["alerts"].append({**alert(fingerprint(), COMPONENT), "status": None})
    elif change == "not JSON":
        return b"{version: 4"
    elif change == "JSON array":
        return b"[]"
    return json.dumps(body).encode()


BAD = ["version 3", "no alerts field", "empty alerts", "labels not an object",
       "label value not a string", "startsAt a number", "startsAt malformed",
       "startsAt without zone", "fingerprint not hex", "status unknown",
       "second alert broken", "not JSON", "JSON array"]


@pytest.mark.parametrize("change", BAD)
def test_bad_payload_is_refused_with_400_and_changes_nothing(
        http: httpx.Client, receiver: httpx.Client, change: str) -> None:
    before = http.get(INCIDENTS).json()["metadata"]["resourceVersion"]
    response = receiver.post(WEBHOOK, content=_mutated(change),
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "Alertmanager webhook payload" in response.json()["message"]
    assert http.get(INCIDENTS).json()["metadata"]["resourceVersion"] == before


def test_oversized_payload_is_refused_with_413_and_changes_nothing(
        http: httpx.Client, receiver: httpx.Client) -> None:
    before = len(incidents(http))
    body = _valid()
    body["alerts"][0]["annotations"]["description"] = "x" * (3 * 1024 * 1024)
    response = receiver.post(WEBHOOK, json=body)
    assert response.status_code == 413
    assert "too large" in response.json()["message"]
    assert len(incidents(http)) == before


def test_without_token_is_401(server: ScsServer, http: httpx.Client) -> None:
    with client(server, None) as anonymous:
        response = anonymous.post(WEBHOOK, json=_valid())
    assert response.status_code == 401
    with client(server, "not-a-token") as forged:
        assert forged.post(WEBHOOK, json=_valid()).status_code == 401


def test_token_without_the_role_is_403_and_opens_nothing(
        server: ScsServer, http: httpx.Client) -> None:
    body = _valid()
    with client(server, token_with_role(http, "", "no-role")) as nobody:
        response = nobody.post(WEBHOOK, json=body)
    assert response.status_code == 403
    assert "incidents" in response.json()["message"]
    assert incidents(http, body["alerts"][0]["fingerprint"]) == []


def test_other_methods_are_405(receiver: httpx.Client) -> None:
    assert receiver.get(WEBHOOK).status_code == 405
