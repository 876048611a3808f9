"""Leader election between two real ``scs serve`` replicas on one PostgreSQL store: exactly
one runs the controllers (it holds the Lease ``scs-system/scs-controllers``), and when it is
SIGKILLed the other takes over and reconciles what is created afterwards."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from typing import Any

import psycopg
import pytest

from tests.controllers.conftest import Cluster, Launcher, eventually, network
from tests.pg import PostgresServer

pytestmark = pytest.mark.slow

CONFIG = {"providers": {"iaas": {"type": "sandbox", "speed": 10}}}
FAILOVER_LIMIT = 15.0


def create_database(postgres: PostgresServer) -> str:
    name = f"scs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres.url_for(name)


def lease(cluster: Cluster) -> dict[str, Any]:
    """The Lease's spec as ``kubectl get lease`` shows it ({} while there is none yet)."""
    result = cluster.kubectl("get", "lease", "-n", "scs-system", "scs-controllers", "-o",
                             "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return {}
    spec: dict[str, Any] = json.loads(result.stdout)["spec"]
    return spec


def holds(cluster: Cluster, holder: str) -> bool:
    """Lease identities are ``<host>-<pid>-<random>``; the pid names the process."""
    assert cluster.server.proc is not None
    return f"-{cluster.server.proc.pid}-" in holder


def leader_gauge(cluster: Cluster) -> float:
    return cluster.metric("scs_controller_leader")


def test_exactly_one_replica_leads_and_the_other_takes_over_when_the_leader_is_killed(
        launch: Launcher, postgres_server: PostgresServer) -> None:
    store = create_database(postgres_server)
    a = launch.start(CONFIG, store=store)
    b_dir = launch.base / "replica-b"
    b_dir.mkdir()
    shutil.copy2(a.server.data_dir / "encryption.key", b_dir / "encryption.key")
    shutil.copytree(a.server.data_dir / "sa-signing", b_dir / "sa-signing")
    b = launch.start(CONFIG, store=store, data_dir=b_dir)
    replicas = [a, b]

    holder = eventually(lambda: lease(a).get("holderIdentity"), timeout=15,
                        what="a lease holder")
    leaders = [r for r in replicas if holds(r, holder)]
    assert len(leaders) == 1, f"lease holder {holder!r} is neither replica"
    leader = leaders[0]
    survivor = b if leader is a else a
    for _ in range(5):  # stable: one leader, the other waits, for a few renewals
        assert [leader_gauge(r) for r in (leader, survivor)] == [1.0, 0.0]
        assert lease(survivor)["holderIdentity"] == holder
        time.sleep(0.5)

    ns = survivor.create_namespace("failover")
    survivor.create(ns, network("before"))
    survivor.wait_ready("networks", ns, "before")  # reconciled by the leader, via the store

    leader.server.kill()
    killed_at = time.monotonic()
    new_holder = eventually(lambda: (h := lease(survivor).get("holderIdentity")) != holder
                            and h, timeout=FAILOVER_LIMIT + 5, interval=0.2,
                            what="the survivor to take the lease")
    failover = time.monotonic() - killed_at
    print(f"\nleader failover: the survivor took the lease {failover:.1f}s after the SIGKILL")
    assert holds(survivor, new_holder), new_holder
    assert failover <= FAILOVER_LIMIT, f"failover took {failover:.1f}s"
    eventually(lambda: leader_gauge(survivor) == 1.0, timeout=5, what="leader gauge 1")
    assert lease(survivor)["leaseTransitions"] >= 1

    survivor.create(ns, network("after"))
    survivor.wait_ready("networks", ns, "after", timeout=15)
