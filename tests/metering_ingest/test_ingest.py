"""``POST /webhooks/ceilometer`` on a real server: Ceilometer 19's own payloads (captured from
its HTTP publisher) are stored once per message id with their tenant; anything malformed is
a 400 that stores nothing; only a token bound to ``metering-ingest`` may post."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.polling import poll
from tests.security.support import client, unique
from tests.server import ScsServer

from .support import (
    INGEST_ROLE,
    WEBHOOK,
    ServerLedger,
    basic,
    captured,
    captured_events,
    captured_samples,
    fresh,
    https,
    serve,
    server_ledger,
    token_with_role,
)


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    yield from serve()


@pytest.fixture(scope="module")
def admin(server: ScsServer) -> Iterator[httpx.Client]:
    with client(server, server.token) as http:
        yield http


@pytest.fixture(scope="module")
def token(admin: httpx.Client) -> str:
    return token_with_role(admin, INGEST_ROLE)


@pytest.fixture(scope="module")
def publisher(server: ScsServer, token: str) -> Iterator[httpx.Client]:
    """Ceilometer's side: basic credentials, the password being the token."""
    with https(server, basic(token)) as http:
        yield http


@pytest.fixture(scope="module")
def ledger(server: ScsServer) -> Iterator[ServerLedger]:
    found = server_ledger(server)
    yield found
    found.close()


def post(http: httpx.Client, body: Any) -> httpx.Response:
    return http.post(WEBHOOK, json=body)


def stored_ids(ledger: ServerLedger) -> set[str]:
    return {s.message_id for s in ledger.samples()}


def test_captured_samples_are_stored_once(publisher: httpx.Client,
                                          ledger: ServerLedger) -> None:
    body = captured()[0]["body"]  # byte for byte what Ceilometer sent
    first = publisher.post(WEBHOOK, content=body)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 2, "stored": 2, "duplicates": 0,
                            "unmappedProjects": ["9f2a0c1b8e7d4f3a9b6c5d4e3f2a1b0c"]}
    again = publisher.post(WEBHOOK, content=body)  # the publisher's retry
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 2
    by_id = {s.message_id: s for s in ledger.samples()}
    for item in captured_samples():
        stored = by_id[item["id"]]
        assert (stored.counter_name, stored.unit, stored.volume, stored.resource_id) == (
            item["name"], item["unit"], float(item["volume"]), item["resource_id"])
        assert stored.raw == item
        assert stored.tenant == ""  # no tenant owns the project


def test_naive_timestamps_are_utc(publisher: httpx.Client, ledger: ServerLedger) -> None:
    items = fresh(captured_samples())
    items[0]["timestamp"], items[1]["timestamp"] = ("2030-01-02T03:04:05.250000",
                                                    "2030-01-02T04:04:05.250000+01:00")
    assert post(publisher, items).status_code == 200
    by_id = {s.message_id: s for s in ledger.samples()}
    assert {by_id[i["id"]].timestamp for i in items} == {1893553445.25}


def test_captured_events_are_stored_as_event_samples(publisher: httpx.Client,
                                                    ledger: ServerLedger) -> None:
    body = captured()[1]["body"]
    assert publisher.post(WEBHOOK, content=body).json()["stored"] == 1
    event = captured_events()[0]
    stored = {s.message_id: s for s in ledger.samples()}[event["message_id"]]
    assert (stored.counter_name, stored.counter_type, stored.unit, stored.volume) == (
        "compute.instance.create.end", "event", "event", 1.0)
    assert (stored.project_id, stored.resource_id) == (
        "9f2a0c1b8e7d4f3a9b6c5d4e3f2a1b0c", "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f")


def test_a_single_sample_without_batching_is_accepted(publisher: httpx.Client) -> None:
    item = fresh(captured_samples())[0]  # batch=False posts each sample alone
    assert post(publisher, item).json()["stored"] == 1


def test_the_meter_message_shape_is_accepted(publisher: httpx.Client,
                                             ledger: ServerLedger) -> None:
    sample = fresh(captured_samples())[1]
    message = {"source": "openstack", "counter_name": sample["name"],
               "counter_type": sample["type"], "counter_unit": sample["unit"],
               "counter_volume": sample["volume"], "user_id": sample["user_id"],
               "project_id": sample["project_id"], "resource_id": sample["resource_id"],
               "timestamp": sample["timestamp"], "resource_metadata": {},
               "message_id": sample["id"], "message_signature": "ab" * 32,
               "monotonic_time": None}
    assert post(publisher, [message]).json()["stored"] == 1
    assert {s.message_id: s for s in ledger.samples()}[sample["id"]].counter_name == \
        "volume.size"


def test_project_of_a_tenant_maps_to_the_tenant(admin: httpx.Client, publisher: httpx.Client,
                                                ledger: ServerLedger) -> None:
    name, project = unique("acme"), unique("project").replace("-", "")
    tenants = "/apis/tenancy.scs.community/v1alpha1/tenants"
    made = admin.post(tenants, json={"metadata": {"name": name},
                                     "spec": {"displayName": "Acme", "admins": []}})
    assert made.status_code == 201, made.text
    obj = made.json()
    obj["status"] = {"projectID": project}
    put = admin.put(f"{tenants}/{name}/status", json=obj)
    assert put.status_code == 200, put.text
    items = fresh(captured_samples(), project=project) + fresh(captured_events(), project)

    def mapped() -> dict[str, Any] | None:
        answer = post(publisher, fresh(items)).json()
        return answer if not answer["unmappedProjects"] else None

    # the Tenant informer sees the status within moments
    poll(mapped, 10, 0.2, "the tenant's project is known")
    answer = post(publisher, items).json()
    assert answer == {"received": 3, "stored": 3, "duplicates": 0, "unmappedProjects": []}
    mine = {s.message_id for s in ledger.samples(tenant=name)}
    assert {i.get("id") or i["message_id"] for i in items} <= mine


BAD_SAMPLES: list[tuple[str, Any]] = [
    ("volume a string", {"volume": "20"}),
    ("volume a bool", {"volume": True}),
    ("unknown type", {"type": "counter"}),
    ("no id", {"id": None}),
    ("empty id", {"id": ""}),
    ("unknown key", {"surprise": 1}),
    ("bad timestamp", {"timestamp": "yesterday"}),
    ("year 1", {"timestamp": "0001-01-01T00:00:00"}),
    ("huge metadata", {"resource_metadata": {"x": "y" * 70_000}}),
    ("long resource id", {"resource_id": "r" * 300}),
    ("control character in name", {"name": "cpu\u0000"}),
]


@pytest.mark.parametrize(("what", "change"), BAD_SAMPLES, ids=[b[0] for b in BAD_SAMPLES])
def test_bad_sample_is_refused_and_nothing_of_the_batch_is_stored(
        publisher: httpx.Client, ledger: ServerLedger, what: str, change: Any) -> None:
    good, bad = fresh(captured_samples())
    bad.update(change)
    before = stored_ids(ledger)
    answer = post(publisher, [good, bad])
    assert answer.status_code == 400, answer.text
    assert "[1]" in answer.json()["message"]
    assert stored_ids(ledger) == before


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b"42", b'"x"', b"[1, 2]",
                                  b'[{"payload": "raw_only"}]', b"[NaN]"])
def test_bodies_that_are_no_payload_are_refused(publisher: httpx.Client,
                                                ledger: ServerLedger, body: bytes) -> None:
    before = stored_ids(ledger)
    assert publisher.post(WEBHOOK, content=body).status_code == 400
    assert stored_ids(ledger) == before


def test_bad_event_trait_is_refused(publisher: httpx.Client, ledger: ServerLedger) -> None:
    event = fresh(captured_events())[0]
    event["traits"].append(["flavor", 9, "m1"])  # no such trait type
    before = stored_ids(ledger)
    assert post(publisher, [event]).status_code == 400
    assert stored_ids(ledger) == before


def test_too_large_a_body_is_refused(publisher: httpx.Client) -> None:
    answer = publisher.post(WEBHOOK, content=b"[" + b" " * (17 * 1024 * 1024) + b"]")
    assert answer.status_code == 413


def test_credentials_are_required(server: ScsServer, token: str) -> None:
    with client(server, None) as anonymous:
        assert post(anonymous, fresh(captured_samples())).status_code == 401
    with https(server, basic("not-a-token")) as wrong:
        assert post(wrong, fresh(captured_samples())).status_code == 401
    with client(server, token) as bearer:  # a bearer token works as well
        assert post(bearer, fresh(captured_samples())).status_code == 200


def test_a_token_without_the_ingest_role_is_forbidden(server: ScsServer, admin: httpx.Client,
                                                      ledger: ServerLedger) -> None:
    before = stored_ids(ledger)
    with https(server, basic(token_with_role(admin, None))) as other:
        assert post(other, fresh(captured_samples())).status_code == 403
    assert stored_ids(ledger) == before


def test_only_post_is_served(publisher: httpx.Client) -> None:
    assert publisher.get(WEBHOOK).status_code == 405
    assert publisher.post(WEBHOOK + "/x", json=[]).status_code == 404
