"""Every IaaS kind created, updated, observed Ready and deleted with kubectl, each step
checked with openstacksdk directly against Nova, Neutron, Cinder and Octavia."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from central_api.providers.openstack.ownership import OWNER_KEY, owner_tag
from tests.iaas_openstack.conftest import Central, obj
from tests.openstack import OpenStackCloud
from tests.polling import poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def ssh_key(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                   check=True)
    return (tmp_path / "k.pub").read_text().strip()


def test_network_subnet_router_and_security_group(central: Central, conn: Any) -> None:
    ns = central.namespace()
    ssh = {"protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22,
           "remoteIPPrefix": "198.51.100.0/24"}
    central.apply(ns, obj("Network", "web", {"description": "web tier"}),
                  obj("Subnet", "web-v4", {"networkRef": {"name": "web"},
                                           "cidr": "10.20.0.0/24"}),
                  obj("Router", "edge", {"externalGateway": True,
                                         "interfaces": [{"name": "web-v4"}]}),
                  obj("SecurityGroup", "web", {"description": "ssh", "rules": [ssh]}))
    central.wait_ready(ns, "networks", "web")
    central.wait_ready(ns, "subnets", "web-v4")
    central.wait_ready(ns, "routers", "edge")
    central.wait_ready(ns, "securitygroups", "web")

    net = conn.network.get_network(central.backend_id(ns, "networks", "web"))
    assert owner_tag(central.uid(ns, "networks", "web")) in net.tags
    assert net.description == "web tier"
    sub = conn.network.get_subnet(central.backend_id(ns, "subnets", "web-v4"))
    assert (sub.network_id, sub.cidr) == (net.id, "10.20.0.0/24")
    router = conn.network.get_router(central.backend_id(ns, "routers", "edge"))
    public = conn.network.find_network("public", ignore_missing=False)
    assert router.external_gateway_info["network_id"] == public.id
    assert any(ip["subnet_id"] == sub.id for port in conn.network.ports(device_id=router.id)
               for ip in port.fixed_ips)
    edge = central.get(ns, "routers", "edge") or {}
    assert edge["status"]["externalIP"].startswith("203.0.113.")
    group_id = central.backend_id(ns, "securitygroups", "web")

    def ingress() -> list[tuple[Any, ...]]:
        return sorted((r.protocol, r.port_range_min, r.remote_ip_prefix)
                      for r in conn.network.security_group_rules(security_group_id=group_id)
                      if r.direction == "ingress")
    assert ingress() == [("tcp", 22, "198.51.100.0/24")]

    # updates in place
    central.kubectl("-n", ns, "patch", "network", "web", "--type", "merge",
                    "-p", '{"spec": {"description": "web tier, renamed"}}')
    central.kubectl("-n", ns, "patch", "subnet", "web-v4", "--type", "merge",
                    "-p", '{"spec": {"dnsNameservers": ["9.9.9.9"]}}')
    https = {"protocol": "tcp", "portRangeMin": 443, "portRangeMax": 443}
    central.apply(ns, obj("SecurityGroup", "web", {"description": "https", "rules": [https]}))
    for kind, name in (("networks", "web"), ("subnets", "web-v4"), ("securitygroups", "web")):
        central.wait_generation(ns, kind, name)
    assert conn.network.get_network(net.id).description == "web tier, renamed"
    assert conn.network.get_subnet(sub.id).dns_nameservers == ["9.9.9.9"]
    assert ingress() == [("tcp", 443, None)]

    central.kubectl("-n", ns, "delete", "routers,subnets,networks,securitygroups", "--all",
                    "--timeout=240s", timeout=270)
    assert conn.network.find_router(router.id, ignore_missing=True) is None
    assert conn.network.find_subnet(sub.id, ignore_missing=True) is None
    assert conn.network.find_network(net.id, ignore_missing=True) is None
    assert conn.network.find_security_group(group_id, ignore_missing=True) is None


def rbd_size(cloud: OpenStackCloud, volume_id: str) -> int | None:
    """Size in bytes of the volume's RBD image in the harness's Ceph pool (None: no image),
    read with Ceph's own ``rbd`` tool: proof that Cinder stored the volume in Ceph."""
    return cloud.ceph.images().get(f"volume-{volume_id}")


def test_server_with_keypair_volume_and_floating_ip(central: Central, conn: Any,
                                                    cloud: OpenStackCloud,
                                                    tmp_path: Path) -> None:
    ns = central.namespace()
    central.apply(
        ns, obj("Network", "app", {}),
        obj("Subnet", "app-v4", {"networkRef": {"name": "app"}, "cidr": "10.21.0.0/24"}),
        obj("Router", "edge", {"externalGateway": True, "interfaces": [{"name": "app-v4"}]}),
        obj("SecurityGroup", "app", {"rules": [{"protocol": "tcp", "portRangeMin": 22}]}),
        obj("Keypair", "ops", {"publicKey": ssh_key(tmp_path)}),
        obj("Volume", "data", {"sizeGiB": 1}),
        obj("Server", "app-1", {"flavor": "SCS-1V-2", "image": "ubuntu-24.04",
                                "networks": [{"name": "app"}],
                                "securityGroups": [{"name": "app"}],
                                "keypairRef": {"name": "ops"}, "volumes": [{"name": "data"}]}),
        obj("FloatingIP", "app-1", {"serverRef": {"name": "app-1"}}))
    central.wait_ready(ns, "servers", "app-1", timeout=300)
    central.wait_ready(ns, "floatingips", "app-1")
    central.wait_ready(ns, "volumes", "data")

    server_id = central.backend_id(ns, "servers", "app-1")
    server = conn.compute.get_server(server_id)
    assert server.status == "ACTIVE"
    assert server.key_name == central.backend_id(ns, "keypairs", "ops")
    assert server.flavor.original_name == "SCS-1V-2"
    status = (central.get(ns, "servers", "app-1") or {})["status"]
    assert status["flavor"] == "SCS-1V-2" and status["powerState"] == "RUNNING"
    assert status["addresses"][0].startswith("10.21.0.")
    keypair = conn.compute.get_keypair(central.backend_id(ns, "keypairs", "ops"))
    assert (central.get(ns, "keypairs", "ops") or {})["status"]["fingerprint"] \
        == keypair.fingerprint

    volume_id = central.backend_id(ns, "volumes", "data")
    # Volumes are attached on an update after the server is ACTIVE (see compute.py).
    poll(lambda: any(a["server_id"] == server_id for a in
                     conn.block_storage.get_volume(volume_id).attachments or []),
         180, 2.0, "the volume to be attached")
    assert conn.block_storage.get_volume(volume_id).metadata[OWNER_KEY] \
        == central.uid(ns, "volumes", "data")
    assert rbd_size(cloud, volume_id) == 1 << 30
    fip = conn.network.get_ip(central.backend_id(ns, "floatingips", "app-1"))
    assert conn.network.get_port(fip.port_id).device_id == server_id
    assert (central.get(ns, "floatingips", "app-1") or {})["status"]["address"] \
        == fip.floating_ip_address

    # updates: grow the volume, opt the server into VM-HA
    central.kubectl("-n", ns, "patch", "volume", "data", "--type", "merge",
                    "-p", '{"spec": {"sizeGiB": 2}}')
    central.kubectl("-n", ns, "patch", "server", "app-1", "--type", "merge",
                    "-p", '{"spec": {"haPolicy": "restart"}}')
    central.wait_generation(ns, "volumes", "data")
    central.wait_generation(ns, "servers", "app-1")
    assert conn.block_storage.get_volume(volume_id).size == 2
    assert rbd_size(cloud, volume_id) == 2 << 30
    assert conn.compute.get_server(server_id).metadata["HA_Enabled"] == "True"

    # a retype to another type of the same backend: no migration, the image stays in Ceph
    backend = next(conn.block_storage.backend_pools()).capabilities["volume_backend_name"]
    gold = conn.block_storage.create_type(name=f"gold-{ns}",
                                          extra_specs={"volume_backend_name": backend})
    central.kubectl("-n", ns, "patch", "volume", "data", "--type", "merge",
                    "-p", f'{{"spec": {{"volumeType": "{gold.name}"}}}}')
    poll(lambda: conn.block_storage.get_volume(volume_id).volume_type == gold.name, 120, 2.0,
         f"the volume to be retyped to {gold.name}")
    central.wait_generation(ns, "volumes", "data")
    assert rbd_size(cloud, volume_id) == 2 << 30

    # an immutable change is refused with a clear condition, the server stays
    central.kubectl("-n", ns, "patch", "server", "app-1", "--type", "merge",
                    "-p", '{"spec": {"flavor": "SCS-2V-4"}}')
    found = central.wait_condition(ns, "servers", "app-1", "InvalidRequest")
    assert "cannot change in place" in found["message"]
    assert conn.compute.get_server(server_id).flavor.original_name == "SCS-1V-2"

    central.kubectl("-n", ns, "delete", "floatingips,servers,volumes,keypairs,routers,"
                    "subnets,securitygroups,networks", "--all", "--timeout=300s", timeout=330)
    poll(lambda: conn.compute.find_server(server_id, ignore_missing=True) is None, 120, 2.0,
         "the server to be gone from Nova")
    assert conn.block_storage.find_volume(volume_id, ignore_missing=True) is None
    assert rbd_size(cloud, volume_id) is None
    conn.block_storage.delete_type(gold)
    assert conn.network.find_ip(fip.id, ignore_missing=True) is None
    assert conn.compute.find_keypair(keypair.name, ignore_missing=True) is None


def test_arm64_and_gpu_requests_pick_the_matching_flavor_and_image(central: Central,
                                                                   conn: Any) -> None:
    ns = central.namespace()
    central.apply(
        ns, obj("Network", "n", {}),
        obj("Subnet", "n-v4", {"networkRef": {"name": "n"}, "cidr": "10.22.0.0/24"}),
        obj("Server", "arm", {"resources": {"cpu": 2, "memoryMiB": 4096},
                              "image": "ubuntu-24.04", "architecture": "arm64",
                              "networks": [{"name": "n"}]}),
        obj("Server", "gpu", {"resources": {"cpu": 1, "memoryMiB": 2048},
                              "gpu": {"count": 1, "model": "nvidia-l4"},
                              "image": "ubuntu-24.04", "networks": [{"name": "n"}]}),
        obj("Server", "plain", {"resources": {"cpu": 1, "memoryMiB": 2048},
                                "image": "ubuntu-24.04", "networks": [{"name": "n"}]}))
    central.wait_ready(ns, "servers", "arm", "gpu", "plain", timeout=300)
    flavors = {name: conn.compute.get_server(central.backend_id(ns, "servers", name))
               .flavor.original_name for name in ("arm", "gpu", "plain")}
    assert flavors == {"arm": "SCS-2V-4-arm64", "gpu": "SCS-4V-16-gpu", "plain": "SCS-1V-2"}
    arm = conn.compute.get_server(central.backend_id(ns, "servers", "arm"))
    image = conn.image.get_image(arm.image.id)
    assert image.properties.get("hw_architecture") == "aarch64" or \
        getattr(image, "hw_architecture", None) == "aarch64"
    central.kubectl("-n", ns, "delete", "servers,subnets,networks", "--all",
                    "--timeout=300s", timeout=330)


def test_the_iaas_examples_become_ready_on_openstack(central: Central, conn: Any) -> None:
    """``examples/iaas`` as a user applies them, the OVN load balancer with its floating IP
    included."""
    ns = central.namespace()
    files = [f"examples/iaas/{name}.yaml" for name in ("01-network", "02-security",
                                                       "03-servers", "04-loadbalancer")]
    for path in files:
        central.kubectl("-n", ns, "apply", "-f", path)
    central.wait_ready(ns, "servers", "web-1", "web-2", timeout=300)
    central.wait_ready(ns, "loadbalancers", "web", timeout=400)
    lb = conn.load_balancer.get_load_balancer(central.backend_id(ns, "loadbalancers", "web"))
    assert (lb.provider, lb.provisioning_status) == ("ovn", "ACTIVE")
    assert (central.get(ns, "loadbalancers", "web") or {})["status"]["floatingIP"] \
        .startswith("203.0.113.")
    web2 = conn.compute.get_server(central.backend_id(ns, "servers", "web-2"))
    assert web2.flavor.original_name == "SCS-2V-4-arm64"
    assert web2.metadata["HA_Enabled"] == "True"
    web1 = conn.compute.get_server(central.backend_id(ns, "servers", "web-1"))
    assert web1.key_name == central.backend_id(ns, "keypairs", "ops")
    central.kubectl("-n", ns, "delete", *[arg for path in reversed(files)
                                          for arg in ("-f", path)], "--timeout=300s",
                    timeout=330)
    for server in (web1, web2):
        poll(lambda s=server: conn.compute.find_server(s.id, ignore_missing=True) is None,
             120, 2.0, f"server {server.name} to be gone")
    assert conn.load_balancer.find_load_balancer(lb.id, ignore_missing=True) is None


def test_load_balancer_with_listener_pool_and_member(central: Central, conn: Any) -> None:
    """Octavia's amphora provider with noop backends (the harness runs it beside OVN)."""
    ns = central.namespace()
    central.apply(
        ns, obj("Network", "lb", {}),
        obj("Subnet", "lb-v4", {"networkRef": {"name": "lb"}, "cidr": "10.23.0.0/24"}),
        obj("Server", "web-1", {"flavor": "SCS-1V-2", "image": "ubuntu-24.04",
                                "networks": [{"name": "lb"}]}),
        obj("LoadBalancer", "web", {
            "subnetRef": {"name": "lb-v4"}, "provider": "amphora",
            "listeners": [{"name": "http", "protocol": "TCP", "port": 80, "pool": "web"}],
            "pools": [{"name": "web", "algorithm": "ROUND_ROBIN",
                       "members": [{"serverRef": {"name": "web-1"}, "port": 8080}]}]}))
    central.wait_ready(ns, "loadbalancers", "web", timeout=400)
    lb = conn.load_balancer.get_load_balancer(central.backend_id(ns, "loadbalancers", "web"))
    assert lb.provider == "amphora" and lb.provisioning_status == "ACTIVE"
    assert (central.get(ns, "loadbalancers", "web") or {})["status"]["vipAddress"] \
        == lb.vip_address
    listener = conn.load_balancer.get_listener(lb.listeners[0]["id"])
    assert (listener.protocol, listener.protocol_port) == ("TCP", 80)
    members = list(conn.load_balancer.members(listener.default_pool_id))
    assert [(m.protocol_port, m.address.startswith("10.23.0.")) for m in members] \
        == [(8080, True)]

    central.kubectl("-n", ns, "patch", "loadbalancer", "web", "--type", "json", "-p",
                    '[{"op": "replace", "path": "/spec/listeners/0/port", "value": 8000}]')
    central.wait_generation(ns, "loadbalancers", "web")
    ports = [conn.load_balancer.get_listener(ref["id"]).protocol_port
             for ref in conn.load_balancer.get_load_balancer(lb.id).listeners]
    assert ports == [8000]

    central.kubectl("-n", ns, "delete", "loadbalancers,servers,subnets,networks", "--all",
                    "--timeout=300s", timeout=330)
    assert conn.load_balancer.find_load_balancer(lb.id, ignore_missing=True) is None


def ovn_lbs(cloud: OpenStackCloud) -> dict[str, dict[str, str]]:
    """OVN's northbound load balancers: name (the Octavia ID) → VIPs (``address:port`` →
    backends), read with ``ovn-nbctl`` (``lb-list`` truncates names and backends)."""
    listing = json.loads(cloud.ovn_nbctl("--format=json", "--columns=name,vips", "list",
                                         "Load_Balancer"))
    return {name: dict(vips[1]) for name, vips in listing["data"]}


def test_ovn_load_balancer_with_members_and_floating_ip(central: Central, conn: Any,
                                                        cloud: OpenStackCloud) -> None:
    """The LoadBalancer kind's default provider, OVN: Octavia's OVN provider writes the load
    balancer into OVN's northbound database, Neutron (ML2/OVN) the floating IP as OVN NAT."""
    ns = central.namespace()
    server = {"flavor": "SCS-1V-2", "image": "ubuntu-24.04", "networks": [{"name": "lb"}]}
    central.apply(
        ns, obj("Network", "lb", {}),
        obj("Subnet", "lb-v4", {"networkRef": {"name": "lb"}, "cidr": "10.24.0.0/24"}),
        obj("Router", "edge", {"externalGateway": True, "interfaces": [{"name": "lb-v4"}]}),
        obj("Server", "web-1", server), obj("Server", "web-2", server),
        obj("LoadBalancer", "web", {
            "subnetRef": {"name": "lb-v4"}, "provider": "ovn", "floatingIP": True,
            "listeners": [{"name": "http", "protocol": "TCP", "port": 80, "pool": "web"}],
            "pools": [{"name": "web",
                       "members": [{"serverRef": {"name": "web-1"}, "port": 8080},
                                   {"serverRef": {"name": "web-2"}, "port": 8080}]}]}))
    central.wait_ready(ns, "loadbalancers", "web", timeout=400)
    lb = conn.load_balancer.get_load_balancer(central.backend_id(ns, "loadbalancers", "web"))
    assert (lb.provider, lb.provisioning_status) == ("ovn", "ACTIVE")
    status = (central.get(ns, "loadbalancers", "web") or {})["status"]
    assert status["vipAddress"] == lb.vip_address and lb.vip_address.startswith("10.24.0.")
    listener = conn.load_balancer.get_listener(lb.listeners[0]["id"])
    assert (listener.protocol, listener.protocol_port) == ("TCP", 80)
    pool = conn.load_balancer.get_pool(listener.default_pool_id)
    assert (pool.protocol, pool.lb_algorithm) == ("TCP", "SOURCE_IP_PORT")
    servers = {central.backend_id(ns, "servers", name) for name in ("web-1", "web-2")}
    members = list(conn.load_balancer.members(pool.id))
    assert {m.name for m in members} == servers
    assert all(m.protocol_port == 8080 and m.address.startswith("10.24.0.") for m in members)

    fip = conn.network.find_ip(status["floatingIP"], ignore_missing=False)
    assert fip.port_id == lb.vip_port_id and status["floatingIP"].startswith("203.0.113.")
    router = central.backend_id(ns, "routers", "edge")
    nat = cloud.ovn_nbctl("lr-nat-list", f"neutron-{router}")
    assert f"{fip.floating_ip_address}" in nat and lb.vip_address in nat

    # OVN's load balancer (the OVN provider's, named by the Octavia ID): the VIP and the
    # floating IP on the listener's port, both to the members' addresses.
    backends = ",".join(sorted(f"{m.address}:8080" for m in members))
    assert f"{lb.vip_address}:80" in cloud.ovn_nbctl("lb-list")

    def ovn_vips() -> dict[str, str]:
        vips = ovn_lbs(cloud).get(lb.id, {})
        return {vip: ",".join(sorted(to.split(","))) for vip, to in vips.items()}
    poll(lambda: ovn_vips() == {f"{lb.vip_address}:80": backends,
                                f"{fip.floating_ip_address}:80": backends}, 60, 1.0,
         "OVN's load balancer to carry the VIP and the floating IP")

    # a listener port change reaches OVN
    central.kubectl("-n", ns, "patch", "loadbalancer", "web", "--type", "json", "-p",
                    '[{"op": "replace", "path": "/spec/listeners/0/port", "value": 8000}]')
    central.wait_generation(ns, "loadbalancers", "web")
    poll(lambda: ovn_vips() == {f"{lb.vip_address}:8000": backends,
                                f"{fip.floating_ip_address}:8000": backends}, 60, 1.0,
         "OVN's load balancer to listen on port 8000")
    assert [conn.load_balancer.get_listener(ref["id"]).protocol_port
            for ref in conn.load_balancer.get_load_balancer(lb.id).listeners] == [8000]

    central.kubectl("-n", ns, "delete", "loadbalancers,servers,routers,subnets,networks",
                    "--all", "--timeout=300s", timeout=330)
    assert conn.load_balancer.find_load_balancer(lb.id, ignore_missing=True) is None
    assert conn.network.find_ip(fip.id, ignore_missing=True) is None
    poll(lambda: lb.id not in ovn_lbs(cloud), 60, 1.0,
         "the load balancer to be gone from OVN's northbound database")
    assert conn.network.find_router(router, ignore_missing=True) is None
