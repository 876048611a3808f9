"""The status-page API on two replicas sharing one PostgreSQL database.

Each replica serves the REST view from its own informers, so what one replica wrote must
reach the other's view through the store's change stream; and updates written to one
incident through both replicas at once must all survive with distinct orders (each is a
read-modify-write of the Incident, retried on a conflicting resourceVersion).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import create_database
from tests.pg import PostgresServer
from tests.server import ScsServer

from .conftest import STATUS_CONFIG, StatusApi

pytestmark = pytest.mark.slow
UNLIMITED = ["--rate-limit", "100000", "--rate-burst", "100000"]


@pytest.fixture(scope="module")
def replicas(postgres_server: PostgresServer) -> Iterator[tuple[StatusApi, StatusApi]]:
    store = create_database(postgres_server)
    b_dir = Path(tempfile.mkdtemp(prefix="scs-status-replica-"))
    config = b_dir / "status.yaml"
    config.write_text(yaml.safe_dump(STATUS_CONFIG))
    args = [*UNLIMITED, "--config", str(config)]
    a = ScsServer(store=store, extra_args=args)
    b = ScsServer(data_dir=b_dir, store=store, extra_args=args)
    apis: list[StatusApi] = []
    try:
        a.start()
        shutil.copy2(a.data_dir / "encryption.key", b_dir / "encryption.key")
        b.start()
        apis = [StatusApi(a, a.token), StatusApi(b, b.token)]
        yield apis[0], apis[1]
    finally:
        for api in apis:
            api.http.close()
        a.cleanup()
        b.cleanup()
        shutil.rmtree(b_dir, ignore_errors=True)


def eventually(read: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = read()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_what_one_replica_writes_the_other_serves(replicas: tuple[StatusApi, StatusApi]
                                                  ) -> None:
    a, b = replicas
    component = a.create("/components", {"displayName": "Object storage"})
    incident = a.create("/incidents", {
        "displayName": "Slow uploads", "beganAt": "2026-12-01T10:00:00Z",
        "affects": [{"reference": component,
                     "type": a.create("/impacttypes", {"displayName": "Degraded"}),
                     "severity": 50}]})

    def affected() -> list[dict[str, Any]]:
        response = b.get(f"/components/{component}")
        return response.json()["data"]["activelyAffectedBy"] \
            if response.status_code == 200 else []

    assert [i["reference"] for i in eventually(affected)] == [incident]
    assert b.patch(f"/incidents/{incident}", {"endedAt": "2026-12-01T11:00:00Z"}
                   ).status_code == 204
    assert eventually(lambda: not affected()), "the end written via B did not reach B's view"
    assert a.data(f"/incidents/{incident}")["endedAt"] == "2026-12-01T11:00:00.000Z"


def test_updates_posted_through_both_replicas_at_once_all_survive(
        replicas: tuple[StatusApi, StatusApi]) -> None:
    a, b = replicas
    incident = a.create("/incidents", {"displayName": "Network flaps",
                                       "beganAt": "2026-12-02T08:00:00Z"})
    eventually(lambda: b.get(f"/incidents/{incident}").status_code == 200)

    def post(i: int) -> int:
        api = (a, b)[i % 2]
        response = api.post(f"/incidents/{incident}/updates", {"displayName": f"update {i}"})
        assert response.status_code == 201, response.text
        return int(response.json()["order"])

    with ThreadPoolExecutor(8) as pool:
        orders = list(pool.map(post, range(24)))
    assert sorted(orders) == list(range(24)), orders
    names = {u["displayName"] for u in a.data(f"/incidents/{incident}/updates")}
    assert names == {f"update {i}" for i in range(24)}
