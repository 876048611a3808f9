"""References between IaaS objects: a missing referenced object is reported on the
referring object's conditions, and creating it lets both converge."""

from __future__ import annotations

import pytest

from tests.controllers.conftest import Cluster, condition, eventually, network, subnet

pytestmark = pytest.mark.slow


def test_a_subnet_of_a_missing_network_reports_reference_not_found_until_the_network_exists(
        cluster: Cluster) -> None:
    ns = cluster.create_namespace("refs")
    cluster.create(ns, subnet("orphan-v4", "later"))

    def unresolved() -> dict | None:
        item = cluster.get("subnets", ns, "orphan-v4")
        found = condition(item, "ReferencesResolved")
        return item if found and found["status"] == "False" else None

    item = eventually(unresolved, what="ReferencesResolved=False on the subnet")
    refs, ready = condition(item, "ReferencesResolved"), condition(item, "Ready")
    assert refs is not None and ready is not None
    assert refs["reason"] == "ReferenceNotFound", refs
    assert "networks 'later' does not exist" in refs["message"], refs
    assert ready["status"] == "False" and ready["reason"] == "ReferenceNotFound", ready
    assert "'later'" in ready["message"], ready
    assert not (item.get("status") or {}).get("backendID"), "nothing may be created yet"

    cluster.create(ns, network("later"))
    net = cluster.wait_ready("networks", ns, "later")
    sub = cluster.wait_ready("subnets", ns, "orphan-v4", timeout=15)
    resolved = condition(sub, "ReferencesResolved")
    assert resolved is not None and resolved["status"] == "True", resolved
    assert sub["status"]["networkID"] == net["status"]["backendID"]
