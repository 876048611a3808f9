"""Finalizers keep an object until its backend resource is gone, so nothing leaks: a Network
whose backend refuses deletion (a Subnet still uses it) stays, marked as being deleted."""

from __future__ import annotations

import time

import pytest

from tests.controllers.conftest import FINALIZER, Cluster, eventually

pytestmark = pytest.mark.slow


def test_deleting_a_network_that_still_has_a_subnet_waits_for_the_subnet_and_leaks_nothing(
        cluster: Cluster) -> None:
    ns = cluster.create_namespace("finalize")
    net = cluster.network_with_subnet(ns)
    conflicts_before = cluster.metric("scs_controller_errors_total", kind="networks",
                                      reason="Conflict")

    cluster.delete("networks", ns, "net")
    time.sleep(2.0)  # several attempts by the controller, each refused by the backend
    held = cluster.get("networks", ns, "net")
    assert held is not None, "the Network went away while its backend network is still in use"
    assert held["metadata"].get("deletionTimestamp"), held["metadata"]
    assert FINALIZER in held["metadata"]["finalizers"], held["metadata"]
    backend = [n for n in cluster.inventory()["Network"] if n["namespace"] == ns]
    assert [n["id"] for n in backend] == [net["status"]["backendID"]], backend
    assert cluster.metric("scs_controller_errors_total", kind="networks",
                          reason="Conflict") > conflicts_before

    cluster.delete("subnets", ns, "net-v4")
    cluster.wait_gone("subnets", ns, "net-v4")
    cluster.wait_gone("networks", ns, "net")

    def leftovers() -> dict:
        return {kind: [i["id"] for i in items if i["namespace"] == ns]
                for kind, items in cluster.inventory().items()
                if any(i["namespace"] == ns for i in items)}

    eventually(lambda: leftovers() == {}, timeout=5, what="an empty sandbox namespace")
