"""Faults of the backend: transient errors are retried with backoff until the object
converges, permanent ones are reported on the object, quota is honoured.

Faults are injected through the sandbox's own API on the server's store, opened from the
test process while the server runs (``inject_fault``, ``set_quota``; see
``central_api/providers/sandbox/faults.py``): that is the sandbox's documented
fault-injection path. Every fault is scoped to the test's namespace.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from central_api.providers.sandbox import clear_faults, inject_fault, set_quota
from central_api.store.base import Store
from tests.controllers.conftest import Cluster, Recorder, condition, eventually, server

pytestmark = pytest.mark.slow

FAULT_CACHE_SECONDS = 0.5
"""``SandboxSettings.fault_cache_seconds``: another process' fault shows up within this."""


def inject(store: Store, name: str, **fault: Any) -> None:
    inject_fault(store, name, **fault)
    time.sleep(FAULT_CACHE_SECONDS + 0.2)


def errors_total(cluster: Cluster, reason: str) -> float:
    return cluster.metric("scs_controller_errors_total", kind="servers", reason=reason)


def test_a_backend_unavailable_three_times_is_retried_with_backoff_until_the_server_is_ready(
        cluster: Cluster) -> None:
    ns = cluster.create_namespace("unavailable")
    cluster.network_with_subnet(ns)
    store = cluster.store()
    fault = f"unavailable-{ns}"
    inject(store, fault, kind="Server", operation="create", scope=ns,
                 error="BackendUnavailable", times=3)
    before = errors_total(cluster, "BackendUnavailable")
    try:
        with Recorder(cluster, "servers", ns) as recorder:
            cluster.create(ns, server("vm", "net"))
            ready = cluster.wait_ready("servers", ns, "vm")
        synced = recorder.conditions("vm", "Synced")
    finally:
        clear_faults(store, fault)

    failing = [c for c in synced if c["status"] == "False"]
    assert failing, f"Synced never showed the outage: {synced}"
    assert failing[0]["reason"] == "BackendUnavailable", failing
    assert "sandbox (simulated)" in failing[0]["message"], failing
    final = condition(ready, "Synced")
    assert final is not None and final["status"] == "True", final
    assert errors_total(cluster, "BackendUnavailable") - before >= 3
    servers = [s for s in cluster.inventory()["Server"] if s["namespace"] == ns]
    assert [s["ownerUID"] for s in servers] == [ready["metadata"]["uid"]], servers


def test_a_backend_timeout_is_retried_until_the_server_is_ready(cluster: Cluster) -> None:
    ns = cluster.create_namespace("timeout")
    cluster.network_with_subnet(ns)
    store = cluster.store()
    fault = f"timeout-{ns}"
    inject(store, fault, kind="Server", operation="create", scope=ns, error="Timeout",
                 timeout_seconds=0.5, times=2)
    try:
        with Recorder(cluster, "servers", ns) as recorder:
            started = time.monotonic()
            cluster.create(ns, server("vm", "net"))
            cluster.wait_ready("servers", ns, "vm")
            took = time.monotonic() - started
        synced = recorder.conditions("vm", "Synced")
    finally:
        clear_faults(store, fault)
    assert took >= 1.0, f"two timeouts of 0.5 s each must have passed, not {took:.2f}s"
    failing = [c for c in synced if c["status"] == "False"]
    assert failing and "timed out" in failing[0]["message"], synced
    assert failing[0]["reason"] == "BackendUnavailable", failing


def test_a_server_that_goes_to_error_in_the_backend_is_reported_not_ready_with_backend_error(
        cluster: Cluster) -> None:
    ns = cluster.create_namespace("goerror")
    cluster.network_with_subnet(ns)
    store = cluster.store()
    fault = f"goerror-{ns}"
    inject(store, fault, kind="Server", operation="create", scope=ns, goToError=True,
                 times=1, message="hypervisor on fire")
    try:
        cluster.create(ns, server("vm", "net"))

        def failed() -> dict | None:
            ready = condition(cluster.get("servers", ns, "vm"), "Ready")
            return ready if ready and ready["reason"] == "BackendError" else None

        ready = eventually(failed, what="Ready reason BackendError")
    finally:
        clear_faults(store, fault)
    assert ready["status"] == "False", ready
    assert "hypervisor on fire" in ready["message"], ready
    time.sleep(1.0)  # an ERROR resource stays in ERROR: the controller does not flap
    still = condition(cluster.get("servers", ns, "vm"), "Ready")
    assert still is not None and still["status"] == "False", still
    assert still["reason"] == "BackendError", still


def test_a_server_over_the_instance_quota_reports_quota_exceeded_until_another_is_deleted(
        cluster: Cluster) -> None:
    ns = cluster.create_namespace("quota")
    cluster.network_with_subnet(ns)
    set_quota(cluster.store(), ns, instances=1)
    cluster.create(ns, server("first", "net"))
    cluster.wait_ready("servers", ns, "first")
    cluster.create(ns, server("second", "net"))

    def refused() -> dict | None:
        synced = condition(cluster.get("servers", ns, "second"), "Synced")
        return synced if synced and synced["reason"] == "QuotaExceeded" else None

    synced = eventually(refused, what="QuotaExceeded on the second server")
    assert synced["status"] == "False", synced
    assert "quota exceeded for instances" in synced["message"], synced
    ready = condition(cluster.get("servers", ns, "second"), "Ready")
    assert ready is not None and ready["status"] == "False", ready
    assert ready["reason"] == "QuotaExceeded", ready

    cluster.delete("servers", ns, "first")
    second = cluster.wait_ready("servers", ns, "second", timeout=20)
    cluster.wait_gone("servers", ns, "first")
    servers = [s for s in cluster.inventory()["Server"] if s["namespace"] == ns]
    assert [s["ownerUID"] for s in servers] == [second["metadata"]["uid"]], servers
