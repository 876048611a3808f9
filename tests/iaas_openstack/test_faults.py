"""Real faults in the real backend, observed through kubectl: each ends in a clear Ready
condition, converges where it can, and leaves no backend object behind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from central_api.providers.openstack.ownership import owner_tag
from tests.iaas_openstack.conftest import Central, obj
from tests.openstack import OpenStackCloud
from tests.polling import poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def tagged(lister: Any, central: Central, ns: str, kind: str, name: str) -> list[Any]:
    """Backend objects carrying the owner tag of the Central API object (duplicates show)."""
    uid = (central.get(ns, kind, name) or {})["metadata"]["uid"]
    return list(lister(tags=owner_tag(uid)))


@pytest.fixture
def huge_flavor(conn: Any) -> Iterator[str]:
    """A flavor whose root disk no host has: Nova schedules, finds no host, and the server
    goes to ERROR (the fake hypervisor offers 600000 GiB; disk is not a quota in Nova)."""
    name = f"huge-{uuid.uuid4().hex[:6]}"
    flavor = conn.compute.create_flavor(name=name, vcpus=1, ram=512, disk=2_000_000)
    try:
        yield name
    finally:
        conn.compute.delete_flavor(flavor, ignore_missing=True)


def test_backend_stopped_mid_reconcile_converges_without_duplicates(
        central: Central, conn: Any, cloud: OpenStackCloud) -> None:
    ns = central.namespace()
    central.apply(ns, obj("Network", "n", {}))
    central.wait_ready(ns, "networks", "n")
    cloud.stop_service("neutron")
    try:
        central.apply(ns, obj("Subnet", "s", {"networkRef": {"name": "n"},
                                              "cidr": "10.30.0.0/24"}))
        down = central.wait_condition(ns, "subnets", "s", "BackendUnavailable")
        assert down["status"] == "False" and down["message"].startswith("openstack")
    finally:
        cloud.start_service("neutron")
    central.wait_ready(ns, "subnets", "s", timeout=360)
    assert len(tagged(conn.network.subnets, central, ns, "subnets", "s")) == 1
    central.kubectl("-n", ns, "delete", "subnets,networks", "--all", "--timeout=180s")
    assert not list(conn.network.subnets(cidr="10.30.0.0/24"))


def test_server_in_error_reports_novas_fault_and_deletes_cleanly(
        central: Central, conn: Any, huge_flavor: str) -> None:
    ns = central.namespace()
    central.apply(ns, obj("Network", "n", {}),
                  obj("Subnet", "s", {"networkRef": {"name": "n"}, "cidr": "10.31.0.0/24"}),
                  obj("Server", "big", {"flavor": huge_flavor, "image": "ubuntu-24.04",
                                        "networks": [{"name": "n"}]}))
    failed = central.wait_condition(ns, "servers", "big", "BackendError", timeout=240)
    assert failed["status"] == "False"
    assert "No valid host" in failed["message"]
    server_id = central.backend_id(ns, "servers", "big")
    assert conn.compute.get_server(server_id).status == "ERROR"

    central.kubectl("-n", ns, "delete", "servers,subnets,networks", "--all",
                    "--timeout=240s", timeout=270)
    assert conn.compute.find_server(server_id, ignore_missing=True) is None
    assert not list(conn.network.ports(device_id=server_id))


def test_object_deleted_behind_our_back_is_recreated(central: Central, conn: Any) -> None:
    ns = central.namespace()
    central.apply(ns, obj("Network", "n", {"description": "keep me"}),
                  obj("SecurityGroup", "g", {"rules": [{"protocol": "tcp",
                                                        "portRangeMin": 22}]}))
    central.wait_ready(ns, "networks", "n")
    central.wait_ready(ns, "securitygroups", "g")
    first_net = central.backend_id(ns, "networks", "n")
    first_group = central.backend_id(ns, "securitygroups", "g")
    conn.network.delete_network(first_net)
    conn.network.delete_security_group(first_group)

    def replaced(kind: str, first: str) -> str | None:
        now = central.backend_id(ns, kind, "n" if kind == "networks" else "g")
        return now if now and now != first else None
    net_id = poll(lambda: replaced("networks", first_net), 120, 1.0, "a new network")
    group_id = poll(lambda: replaced("securitygroups", first_group), 120, 1.0,
                    "a new security group")
    central.wait_ready(ns, "networks", "n")
    assert conn.network.get_network(net_id).description == "keep me"
    assert [r.port_range_min for r in conn.network.security_group_rules(
        security_group_id=group_id) if r.direction == "ingress"] == [22]
    assert len(tagged(conn.network.networks, central, ns, "networks", "n")) == 1
    central.kubectl("-n", ns, "delete", "networks,securitygroups", "--all", "--timeout=120s")


def test_nova_quota_exceeded_is_reported_and_converges_when_raised(
        central: Central, conn: Any) -> None:
    project = conn.current_project_id
    original = conn.get_compute_quotas(project).instances
    in_use = len(list(conn.compute.servers(all_projects=False)))
    ns = central.namespace()
    central.apply(ns, obj("Network", "n", {}),
                  obj("Subnet", "s", {"networkRef": {"name": "n"}, "cidr": "10.32.0.0/24"}))
    central.wait_ready(ns, "subnets", "s")
    conn.set_compute_quotas(project, instances=in_use)
    try:
        central.apply(ns, obj("Server", "one", {"flavor": "SCS-1V-2", "image": "ubuntu-24.04",
                                                "networks": [{"name": "n"}]}))
        refused = central.wait_condition(ns, "servers", "one", "QuotaExceeded")
        assert "instances" in refused["message"].lower()
        assert not tagged(conn.compute.servers, central, ns, "servers", "one")
    finally:
        conn.set_compute_quotas(project, instances=original)
    central.wait_ready(ns, "servers", "one", timeout=360)
    assert len(tagged(conn.compute.servers, central, ns, "servers", "one")) == 1
    central.kubectl("-n", ns, "delete", "servers,subnets,networks", "--all",
                    "--timeout=240s", timeout=270)
