"""Crash safety of the reconcile loop: a server SIGKILLed while its Servers are still being
created resumes after a restart on the same data directory, and the sandbox ends up with
exactly one backend Server per object (retries after the crash never duplicate)."""

from __future__ import annotations

import time

import pytest

from tests.controllers.conftest import Launcher, eventually, is_ready, server

pytestmark = pytest.mark.slow

SERVERS = 10
SLOW_SANDBOX = {"providers": {"iaas": {"type": "sandbox", "speed": 0.5}}}
"""Speed 0.5 doubles the sandbox's delays: a Server boots for 4 s, so the kill lands while
they are PENDING."""


def test_servers_pending_when_the_process_is_killed_converge_after_restart_without_duplicates(
        launch: Launcher) -> None:
    first = launch.start(SLOW_SANDBOX)
    ns = first.create_namespace("restart")
    first.network_with_subnet(ns)
    uids = {first.create(ns, server(f"vm-{i}", "net"))["metadata"]["uid"]
            for i in range(SERVERS)}

    def some_in_backend() -> list[dict] | None:
        found = [s for s in first.inventory()["Server"] if s["namespace"] == ns]
        return found if found else None

    eventually(some_in_backend, timeout=10, interval=0.05, what="a backend Server")
    pending = first.list("servers", ns)
    assert not any(is_ready(item) for item in pending), "too late: a Server is already Ready"
    first.server.kill()
    killed_at = time.monotonic()

    second = launch.start(SLOW_SANDBOX, data_dir=first.server.data_dir)
    for i in range(SERVERS):
        second.wait_ready("servers", ns, f"vm-{i}", timeout=30)
    print(f"\n{SERVERS} servers Ready {time.monotonic() - killed_at:.1f}s after the SIGKILL")

    backend = [s for s in second.inventory()["Server"] if s["namespace"] == ns]
    owners = [s["ownerUID"] for s in backend]
    assert len(backend) == SERVERS, f"expected {SERVERS} backend servers, found {backend}"
    assert sorted(owners) == sorted(uids), "each object must own exactly one backend server"
    addresses = [ip for s in backend for ip in s["observed"]["addresses"]]
    assert len(set(addresses)) == SERVERS, f"addresses must be unique: {addresses}"
