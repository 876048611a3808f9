"""The OpenStack provider against a real OpenStack cloud (Keystone, Nova, Neutron, Cinder,
Glance, Octavia) — no mocks.

By default the tests start the harness cloud (``tests/openstack``: Debian's Zed services on
127.0.0.1, Nova with the fake compute driver, Cinder on Ceph RBD; shared with
the other OpenStack suites of the session). To test another cloud instead:

- ``SCS_TEST_OPENSTACK_CLOUD``: cloud name in clouds.yaml (the harness is not started then).
- ``OS_CLIENT_CONFIG_FILE`` (optional): path to that clouds.yaml (openstacksdk's own variable;
  default search: ``./clouds.yaml``, ``~/.config/openstack``, ``/etc/openstack``).
- ``SCS_TEST_OPENSTACK_IMAGE`` (optional): image name for servers and image-backed volumes;
  default: the first active image not tagged for arm64 (the harness's ``ubuntu-24.04``).
- ``SCS_TEST_OPENSTACK_EXTERNAL_NETWORK`` (optional): external network name or ID; default:
  the first ``router:external`` network. Router-gateway and floating-IP tests need one.
- ``SCS_TEST_OPENSTACK_LB_PROVIDER`` (optional): Octavia provider for the load balancer test;
  default ``ovn`` on another cloud, ``amphora`` (with noop backends) on the harness.

Services missing from the cloud's catalog (e.g. no Octavia) skip only the tests that need
them. Every test creates its resources under fresh owner UIDs, verifies them with openstacksdk
directly, and deletes them again — also when it fails.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import openstack
import openstack.connection
import pytest
from openstack.config import loader
from openstack.connection import Connection

from central_api.providers.base import (
    BackendResource,
    BackendUnavailable,
    InvalidRequest,
    NotFound,
    Provider,
    QuotaExceeded,
    ResourceService,
    Scope,
    State,
)
from central_api.providers.openstack import OpenStackSettings, openstack_provider
from central_api.providers.openstack.flavors import image_arch
from central_api.providers.openstack.keys import fingerprint
from central_api.providers.openstack.ownership import owner_tag, resource_name
from tests.openstack import CLOUD_NAME
from tests.openstack.fixture import shared_cloud
from tests.polling import poll as shared_poll

T = TypeVar("T")

EXTERNAL_CLOUD = os.environ.get("SCS_TEST_OPENSTACK_CLOUD", "")
CLOUD = EXTERNAL_CLOUD or CLOUD_NAME
IMAGE = os.environ.get("SCS_TEST_OPENSTACK_IMAGE", "")
EXTERNAL_NETWORK = os.environ.get("SCS_TEST_OPENSTACK_EXTERNAL_NETWORK", "")
# The harness runs Octavia's OVN provider and its amphora provider with noop backends;
# amphora here covers the 501 path, tests/iaas_openstack the OVN default.
LB_PROVIDER = os.environ.get("SCS_TEST_OPENSTACK_LB_PROVIDER",
                             "ovn" if EXTERNAL_CLOUD else "amphora")
# OVN balances by source IP and port only; amphora (haproxy) has no SOURCE_IP_PORT.
LB_ALGORITHM = "SOURCE_IP_PORT" if LB_PROVIDER == "ovn" else "ROUND_ROBIN"
SCOPE = Scope(namespace="openstack-it")

# The first test also waits for the test OpenStack to start (2-4 minutes on 2 busy cores).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def clouds_yaml() -> Iterator[str]:
    """The clouds.yaml holding CLOUD: the harness's, or the configured cloud's."""
    if EXTERNAL_CLOUD:
        yield os.environ.get("OS_CLIENT_CONFIG_FILE", "")
        return
    for cloud in shared_cloud():
        yield str(cloud.clouds_yaml)


@pytest.fixture(scope="module")
def conn(clouds_yaml: str) -> Iterator[Connection]:
    """openstacksdk's own connection, to check what the provider did."""
    config = loader.OpenStackConfig(config_files=[clouds_yaml] if clouds_yaml else None)
    connection = openstack.connection.Connection(config=config.get_one(cloud=CLOUD))
    connection.authorize()  # a configured but unreachable cloud is a failure, not a skip
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def provider(conn: Connection, clouds_yaml: str) -> Provider:
    return openstack_provider(OpenStackSettings(
        cloud=CLOUD, clouds_yaml=clouds_yaml, external_network=EXTERNAL_NETWORK,
        timeout=180))


def require(conn: Connection, *service_types: str) -> None:
    missing = [s for s in service_types if not conn.has_service(s)]
    if missing:
        pytest.skip(f"cloud {CLOUD!r} offers no {', '.join(missing)} service")


def external_network(conn: Connection) -> Any:
    if EXTERNAL_NETWORK:
        return conn.network.find_network(EXTERNAL_NETWORK, ignore_missing=False)
    for net in conn.network.networks(is_router_external=True):
        return net
    pytest.skip(f"cloud {CLOUD!r} has no external network "
                "(set SCS_TEST_OPENSTACK_EXTERNAL_NETWORK)")


def image_name(conn: Connection) -> str:
    if IMAGE:
        return IMAGE
    for image in conn.image.images(status="active"):
        if image_arch(image) != "arm64":
            return str(image.name)
    pytest.skip(f"cloud {CLOUD!r} has no active image (set SCS_TEST_OPENSTACK_IMAGE)")


class Created:
    """Backend resources made by a test, deleted in reverse order at teardown."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.items: list[tuple[str, BackendResource]] = []

    def create(self, kind: str, desired: dict[str, Any], wait_for: State | None = "ACTIVE",
               timeout: float = 300) -> BackendResource:
        uid = str(uuid.uuid4())
        resource = run(self.provider.service(kind).create(SCOPE, uid, desired))
        self.items.append((kind, resource))
        if wait_for is not None:
            resource = wait_state(self.provider.service(kind), uid, wait_for, timeout)
        return resource

    def cleanup(self) -> None:
        for kind, resource in reversed(self.items):
            service = self.provider.service(kind)
            try:
                run(service.delete(SCOPE, resource))
                wait_gone(service, resource.owner_uid)
            except Exception as exc:  # keep cleaning up the rest
                print(f"cleanup of {kind} {resource.id} failed: {exc!r}")


@pytest.fixture
def created(provider: Provider) -> Iterator[Created]:
    made = Created(provider)
    try:
        yield made
    finally:
        made.cleanup()


def poll(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Real services converge in seconds: look every 2 s (``tests.polling.poll``)."""
    return shared_poll(check, timeout, 2, what)


def wait_state(service: ResourceService, uid: str, state: State, timeout: float = 300
               ) -> BackendResource:
    def check() -> BackendResource | None:
        found = run(service.find(SCOPE, uid))
        assert found is not None, f"{uid} vanished"
        if found.state == "ERROR" and state != "ERROR":
            pytest.fail(f"{uid} went to ERROR: {found.message}")
        return found if found.state == state else None
    return poll(check, timeout, f"{uid} to be {state}")


def wait_gone(service: ResourceService, uid: str, timeout: float = 300) -> None:
    poll(lambda: run(service.find(SCOPE, uid)) is None, timeout, f"{uid} to be deleted")


def ssh_public_key(tmp_path: Path, name: str = "id") -> str:
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return (tmp_path / f"{name}.pub").read_text().strip()


def network_with_subnet(created: Created, cidr: str = "10.42.0.0/24"
                        ) -> tuple[BackendResource, BackendResource]:
    net = created.create("Network", {"mtu": None, "adminStateUp": True, "description": "it"})
    subnet = created.create("Subnet", {"networkID": net.id, "cidr": cidr, "ipVersion": 4,
                                       "gatewayIP": None, "enableDHCP": True,
                                       "dnsNameservers": []})
    return net, subnet


def smallest_flavor(conn: Connection) -> Any:
    flavors = [f for f in conn.compute.flavors(details=True, get_extra_specs=True)
               if not f.is_disabled and not any(k.startswith(("pci_passthrough", "scs:gpu",
                                                              "resources:VGPU"))
                                                for k in f.extra_specs or {})]
    return min(flavors, key=lambda f: (f.vcpus, f.ram, f.disk, f.name))


def server_desired(conn: Connection, network_id: str, **extra: Any) -> dict[str, Any]:
    flavor = smallest_flavor(conn)
    return {"flavor": "", "resources": {"cpu": flavor.vcpus, "memoryMiB": flavor.ram},
            "image": image_name(conn), "architecture": "amd64", "gpu": None,
            "networkIDs": [network_id], "securityGroupIDs": [], "volumeIDs": [],
            "keypairID": "", "userData": "#cloud-config\n{}\n", "haPolicy": "none", **extra}


# -- Neutron -----------------------------------------------------------------------------------
def test_network_is_created_tagged_updated_and_deleted(conn: Connection, provider: Provider,
                                                       created: Created) -> None:
    require(conn, "network")
    net = created.create("Network", {"mtu": None, "adminStateUp": True,
                                     "description": "first"})
    backend = conn.network.get_network(net.id)
    assert backend.name == resource_name(net.owner_uid)
    assert owner_tag(net.owner_uid) in backend.tags
    assert net.desired["description"] == "first"

    service = provider.service("Network")
    updated = run(service.update(SCOPE, net, {"mtu": None, "adminStateUp": False,
                                              "description": "second"}))
    backend = conn.network.get_network(net.id)
    assert (backend.description, backend.is_admin_state_up) == ("second", False)
    assert updated.desired["adminStateUp"] is False

    run(service.delete(SCOPE, net))
    wait_gone(service, net.owner_uid)
    assert conn.network.find_network(net.id, ignore_missing=True) is None
    run(service.delete(SCOPE, net))  # deleting again is safe


def test_creating_twice_finds_the_same_resource(conn: Connection, provider: Provider,
                                                created: Created) -> None:
    require(conn, "network")
    net = created.create("Network", {"mtu": None, "adminStateUp": True, "description": ""})
    again = run(provider.service("Network").create(SCOPE, net.owner_uid,
                                                   {"mtu": None, "adminStateUp": True,
                                                    "description": ""}))
    assert again.id == net.id
    assert [n.id for n in conn.network.networks(tags=owner_tag(net.owner_uid))] == [net.id]
    found = run(provider.service("Network").find(SCOPE, net.owner_uid))
    assert found is not None and found.id == net.id


def test_resource_found_by_name_when_its_tag_is_missing(conn: Connection, provider: Provider,
                                                        created: Created) -> None:
    """A create interrupted before tagging is adopted (and tagged), not duplicated."""
    require(conn, "network")
    uid = str(uuid.uuid4())
    bare = conn.network.create_network(name=resource_name(uid))
    try:
        found = run(provider.service("Network").find(SCOPE, uid))
        assert found is not None and found.id == bare.id
        assert owner_tag(uid) in conn.network.get_network(bare.id).tags
    finally:
        conn.network.delete_network(bare.id, ignore_missing=True)


def test_subnet_updates_in_place_and_refuses_a_new_cidr(conn: Connection, provider: Provider,
                                                        created: Created) -> None:
    require(conn, "network")
    net, subnet = network_with_subnet(created, "10.43.0.0/24")
    backend = conn.network.get_subnet(subnet.id)
    assert (backend.network_id, backend.cidr) == (net.id, "10.43.0.0/24")
    assert subnet.observed["networkID"] == net.id

    service = provider.service("Subnet")
    desired = {**subnet.desired, "dnsNameservers": ["9.9.9.9"], "enableDHCP": False}
    run(service.update(SCOPE, subnet, desired))
    backend = conn.network.get_subnet(subnet.id)
    assert backend.dns_nameservers == ["9.9.9.9"]
    assert backend.is_dhcp_enabled is False
    with pytest.raises(InvalidRequest, match="cidr"):
        run(service.update(SCOPE, subnet, {**desired, "cidr": "10.44.0.0/24"}))


def test_router_interfaces_and_external_gateway(conn: Connection, provider: Provider,
                                                created: Created) -> None:
    require(conn, "network")
    _, subnet = network_with_subnet(created, "10.45.0.0/24")
    router = created.create("Router", {"externalGateway": False, "subnetIDs": [subnet.id]})
    assert router.desired["subnetIDs"] == [subnet.id]
    ports = list(conn.network.ports(device_id=router.id))
    assert any(ip["subnet_id"] == subnet.id for p in ports for ip in p.fixed_ips)

    service = provider.service("Router")
    detached = run(service.update(SCOPE, router, {"externalGateway": False, "subnetIDs": []}))
    assert detached.desired["subnetIDs"] == []

    ext = external_network(conn)
    with_gateway = run(service.update(SCOPE, router, {"externalGateway": True,
                                                      "subnetIDs": [subnet.id]}))
    assert conn.network.get_router(router.id).external_gateway_info["network_id"] == ext.id
    assert with_gateway.observed["externalIP"]


def test_security_group_rules_are_reconciled_keeping_default_egress(
        conn: Connection, provider: Provider, created: Created) -> None:
    require(conn, "network")
    ssh = {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22,
           "remoteIPPrefix": "0.0.0.0/0", "ethertype": "IPv4"}
    web = {**ssh, "portRangeMin": 443, "portRangeMax": 443, "remoteIPPrefix": "10.0.0.0/8"}
    group = created.create("SecurityGroup", {"description": "it", "rules": [ssh]})

    def rules() -> list[tuple[str, str | None, int | None]]:
        return sorted((r.direction, r.protocol, r.port_range_min)
                      for r in conn.network.security_group_rules(security_group_id=group.id))

    assert ("ingress", "tcp", 22) in rules()
    egress = [r for r in rules() if r[0] == "egress"]
    assert egress, "Neutron's default egress rules are kept"

    updated = run(provider.service("SecurityGroup").update(
        SCOPE, group, {"description": "it", "rules": [web]}))
    assert ("ingress", "tcp", 22) not in rules()
    assert ("ingress", "tcp", 443) in rules()
    assert [r for r in rules() if r[0] == "egress"] == egress
    assert [r["portRangeMin"] for r in updated.desired["rules"]] == [443]


# -- Nova --------------------------------------------------------------------------------------
def test_keypair_reports_novas_fingerprint_and_replaces_a_new_key(
        conn: Connection, provider: Provider, created: Created, tmp_path: Path) -> None:
    require(conn, "compute")
    first = ssh_public_key(tmp_path, "a")
    keypair = created.create("Keypair", {"publicKey": first})
    assert keypair.id == resource_name(keypair.owner_uid)
    backend = conn.compute.get_keypair(keypair.id)
    assert keypair.observed["fingerprint"] == backend.fingerprint == fingerprint(first)

    second = ssh_public_key(tmp_path, "b")
    updated = run(provider.service("Keypair").update(SCOPE, keypair, {"publicKey": second}))
    assert updated.id == keypair.id
    assert conn.compute.get_keypair(keypair.id).fingerprint == fingerprint(second)


@pytest.mark.timeout(1200)
def test_server_boots_attaches_volume_and_opts_into_ha(conn: Connection, provider: Provider,
                                                       created: Created,
                                                       tmp_path: Path) -> None:
    require(conn, "compute", "network", "image", "block-storage")
    net, subnet = network_with_subnet(created, "10.46.0.0/24")
    group = created.create("SecurityGroup", {"description": "", "rules": []})
    keypair = created.create("Keypair", {"publicKey": ssh_public_key(tmp_path)})
    volume = created.create("Volume", {"sizeGiB": 1, "volumeType": "", "imageRef": ""})
    desired = server_desired(conn, net.id, securityGroupIDs=[group.id],
                             keypairID=keypair.id)
    server = created.create("Server", desired, timeout=900)

    backend = conn.compute.get_server(server.id)
    assert owner_tag(server.owner_uid) in (backend.tags or [])
    assert backend.key_name == keypair.id
    assert server.observed["flavor"] == smallest_flavor(conn).name
    assert server.observed["addresses"]
    assert server.observed["powerState"] == "RUNNING"
    assert server.desired["securityGroupIDs"] == [group.id]

    service = provider.service("Server")
    desired = {**desired, "volumeIDs": [volume.id], "haPolicy": "restart"}
    run(service.update(SCOPE, server, desired))
    poll(lambda: any(a["server_id"] == server.id
                     for a in conn.block_storage.get_volume(volume.id).attachments or []),
         300, "the volume to be attached")
    assert conn.compute.get_server(server.id).metadata["HA_Enabled"] == "True"
    attached = wait_state(provider.service("Volume"), volume.owner_uid, "ACTIVE")
    assert attached.observed["attachedTo"] == server.id

    with pytest.raises(InvalidRequest, match="cannot change in place"):
        run(service.update(SCOPE, server, {**desired, "image": "another-image"}))
    again = run(service.create(SCOPE, server.owner_uid, desired))
    assert again.id == server.id


@pytest.mark.timeout(1200)
def test_floating_ip_is_allocated_and_associated(conn: Connection, provider: Provider,
                                                 created: Created) -> None:
    require(conn, "compute", "network", "image")
    external_network(conn)
    net, subnet = network_with_subnet(created, "10.47.0.0/24")
    created.create("Router", {"externalGateway": True, "subnetIDs": [subnet.id]})
    server = created.create("Server", server_desired(conn, net.id), timeout=900)

    fip = created.create("FloatingIP", {"serverID": None})
    assert fip.observed["address"]
    assert conn.network.get_ip(fip.id).port_id is None

    # Without an L3 agent the status stays DOWN; association is what counts.
    associated = run(provider.service("FloatingIP").update(SCOPE, fip,
                                                           {"serverID": server.id}))
    port = conn.network.get_port(conn.network.get_ip(fip.id).port_id)
    assert port.device_id == server.id
    assert associated.desired["serverID"] == server.id


# -- Cinder ------------------------------------------------------------------------------------
def test_volume_grows_but_never_shrinks(conn: Connection, provider: Provider,
                                        created: Created) -> None:
    require(conn, "block-storage")
    volume = created.create("Volume", {"sizeGiB": 1, "volumeType": "", "imageRef": ""})
    backend = conn.block_storage.get_volume(volume.id)
    assert backend.metadata["scs-owner-uid"] == volume.owner_uid
    assert backend.size == 1

    service = provider.service("Volume")
    run(service.update(SCOPE, volume, {"sizeGiB": 2, "volumeType": "", "imageRef": ""}))
    poll(lambda: conn.block_storage.get_volume(volume.id).size == 2, 120, "size 2 GiB")
    grown = wait_state(service, volume.owner_uid, "ACTIVE")
    assert grown.desired["sizeGiB"] == 2
    with pytest.raises(InvalidRequest, match="cannot shrink"):
        run(service.update(SCOPE, grown, {"sizeGiB": 1, "volumeType": "", "imageRef": ""}))


def test_volume_from_an_image_uses_the_amd64_variant_of_its_name(
        conn: Connection, provider: Provider, created: Created) -> None:
    """Images may exist once per architecture under one name (what Servers choose by); a
    Volume, which has no architecture, gets the amd64 one."""
    require(conn, "block-storage", "image")
    name = image_name(conn)
    volume = created.create("Volume", {"sizeGiB": 1, "volumeType": "", "imageRef": name})
    backend = conn.block_storage.get_volume(volume.id)
    image = conn.image.get_image(backend.volume_image_metadata["image_id"])
    assert image.name == name and image_arch(image) in ("", "amd64")
    assert volume.desired["imageRef"] == name
    with pytest.raises(InvalidRequest, match="not found"):
        run(provider.service("Volume").create(SCOPE, str(uuid.uuid4()), {
            "sizeGiB": 1, "volumeType": "", "imageRef": f"no-such-image-{uuid.uuid4()}"}))


# -- Octavia -----------------------------------------------------------------------------------
@pytest.mark.timeout(1800)
def test_load_balancer_with_listener_pool_and_member(conn: Connection, provider: Provider,
                                                     created: Created) -> None:
    require(conn, "load-balancer", "compute", "network", "image")
    net, subnet = network_with_subnet(created, "10.48.0.0/24")
    server = created.create("Server", server_desired(conn, net.id), timeout=900)
    desired = {"subnetID": subnet.id, "provider": LB_PROVIDER, "floatingIP": False,
               "listeners": [{"name": "web", "protocol": "TCP", "port": 80, "pool": "web"}],
               "pools": [{"name": "web", "protocol": "TCP", "algorithm": LB_ALGORITHM,
                          "members": [{"serverID": server.id, "port": 8080}]}]}
    lb = created.create("LoadBalancer", desired, wait_for=None)
    service = provider.service("LoadBalancer")

    def converged() -> BackendResource | None:
        current = run(service.find(SCOPE, lb.owner_uid))
        assert current is not None
        if current.state == "ERROR":
            pytest.fail(f"load balancer failed: {current.message}")
        result = run(service.update(SCOPE, current, desired))
        return result if result.state == "ACTIVE" else None

    result = poll(converged, 1200, "the load balancer to converge")
    assert result.observed["vipAddress"]
    backend = conn.load_balancer.get_load_balancer(lb.id)
    assert (backend.provider, owner_tag(lb.owner_uid) in backend.tags) == (LB_PROVIDER, True)
    listeners = [conn.load_balancer.get_listener(ref["id"])
                 for ref in backend.listeners]
    assert [(li.protocol, li.protocol_port) for li in listeners] == [("TCP", 80)]
    pool = conn.load_balancer.get_pool(listeners[0].default_pool_id)
    members = list(conn.load_balancer.members(pool.id))
    assert [(m.name, m.protocol_port) for m in members] == [(server.id, 8080)]
    assert result.desired["pools"][0]["members"] == [{"serverID": server.id, "port": 8080}]

    if LB_PROVIDER == "amphora":
        # Octavia answers 501 for an option the provider lacks: a terminal refusal that
        # names the option, not an outage to retry forever.
        other = {**desired, "pools": [{**desired["pools"][0], "name": "other",
                                       "algorithm": "SOURCE_IP_PORT"}]}
        with pytest.raises(InvalidRequest, match="SOURCE_IP_PORT"):
            run(service.update(SCOPE, result, other))


# -- errors and credentials --------------------------------------------------------------------
def test_missing_resource_is_not_found(conn: Connection, provider: Provider) -> None:
    require(conn, "network")
    ghost = BackendResource(id=str(uuid.uuid4()), owner_uid=str(uuid.uuid4()), state="ACTIVE")
    with pytest.raises(NotFound):
        run(provider.service("Network").update(SCOPE, ghost, {"description": "x"}))
    assert run(provider.service("Network").find(SCOPE, ghost.owner_uid)) is None


def test_invalid_cidr_is_an_invalid_request(conn: Connection, provider: Provider,
                                            created: Created) -> None:
    require(conn, "network")
    net = created.create("Network", {"mtu": None, "adminStateUp": True, "description": ""})
    with pytest.raises(InvalidRequest):
        run(provider.service("Subnet").create(SCOPE, str(uuid.uuid4()), {
            "networkID": net.id, "cidr": "10.49.0.0/24", "ipVersion": 4,
            "gatewayIP": "10.49.0.300", "enableDHCP": True, "dnsNameservers": []}))


def test_volume_beyond_quota_is_quota_exceeded(conn: Connection, provider: Provider,
                                               created: Created) -> None:
    require(conn, "block-storage")
    limits = conn.block_storage.get_limits().absolute
    maximum = int(limits.max_total_volume_gigabytes)
    if maximum < 0:
        pytest.skip("the test project has unlimited volume gigabytes")
    uid = str(uuid.uuid4())
    with pytest.raises(QuotaExceeded):
        run(provider.service("Volume").create(SCOPE, uid, {"sizeGiB": maximum + 1,
                                                           "volumeType": "", "imageRef": ""}))
    assert run(provider.service("Volume").find(SCOPE, uid)) is None


def test_scope_credentials_are_used_for_the_tenant(conn: Connection, created: Created) -> None:
    """A namespace's own clouds.yaml-style credentials (issue 5's Secret) work on their own."""
    require(conn, "network")
    entry = {"auth": dict(conn.config.config["auth"]),
             "auth_type": conn.config.config.get("auth_type", "password"),
             "region_name": conn.config.get_region_name() or None}
    tenant_provider = openstack_provider(OpenStackSettings())  # no operator cloud at all
    scope = Scope(namespace="tenant-ns", tenant="t", credentials=entry)
    uid = str(uuid.uuid4())
    service = tenant_provider.service("Network")
    net = run(service.create(scope, uid, {"mtu": None, "adminStateUp": True,
                                          "description": "tenant"}))
    try:
        assert conn.network.get_network(net.id).project_id == conn.current_project_id
    finally:
        run(service.delete(scope, net))


@pytest.fixture
def two_tenants(conn: Connection) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Two projects, each with a user holding ``member`` there only (what onboarding makes
    for a tenant), as clouds.yaml-style credentials. Needs an admin cloud (the harness)."""
    made: list[Any] = []
    entries = []
    try:
        member = conn.identity.find_role("member", ignore_missing=False)
        for letter in ("a", "b"):
            name = f"it-{letter}-{uuid.uuid4().hex[:6]}"
            project = conn.identity.create_project(name=name, domain_id="default")
            password = uuid.uuid4().hex
            user = conn.identity.create_user(name=name, password=password,
                                             domain_id="default", default_project_id=project.id)
            made += [user, project]
            conn.identity.assign_project_role_to_user(project, user, member)
            entries.append({"auth": {"auth_url": conn.auth["auth_url"], "username": name,
                                     "password": password, "project_id": project.id,
                                     "user_domain_id": "default"},
                            "region_name": conn.config.get_region_name()})
        yield entries[0], entries[1]
    finally:
        for item in made:
            delete = (conn.identity.delete_user if item.__class__.__name__ == "User"
                      else conn.identity.delete_project)
            delete(item, ignore_missing=True)


def test_tenant_objects_live_in_their_project_and_are_invisible_to_others(
        conn: Connection, two_tenants: tuple[dict[str, Any], dict[str, Any]]) -> None:
    require(conn, "network", "compute")
    tenant_a, tenant_b = two_tenants
    provider = openstack_provider(OpenStackSettings())  # tenants' own credentials only
    scope_a = Scope(namespace="a", tenant="a", credentials=tenant_a)
    scope_b = Scope(namespace="b", tenant="b", credentials=tenant_b)
    uid = str(uuid.uuid4())
    networks = provider.service("Network")
    net = run(networks.create(scope_a, uid, {"mtu": None, "adminStateUp": True,
                                             "description": "tenant a"}))
    try:
        assert conn.network.get_network(net.id).project_id == tenant_a["auth"]["project_id"]
        assert run(networks.find(scope_b, uid)) is None
        as_b = openstack.connect(load_yaml_config=False, load_envvars=False, **tenant_b)
        assert as_b.network.find_network(net.id, ignore_missing=True) is None
        assert not list(as_b.network.networks(tags=owner_tag(uid)))
        with pytest.raises(NotFound):  # B cannot change A's network by its ID either
            run(networks.update(scope_b, net, {"description": "taken over"}))
        assert conn.network.get_network(net.id).description == "tenant a"
        found = run(networks.find(scope_a, uid))
        assert found is not None and found.id == net.id
    finally:
        run(networks.delete(scope_a, net))


def test_unreachable_cloud_is_backend_unavailable() -> None:
    """A real connection attempt to a closed port: needs no cloud, runs everywhere."""
    provider = openstack_provider(OpenStackSettings(timeout=30))
    scope = Scope(namespace="ns", credentials={
        "auth_url": "http://127.0.0.1:9/v3", "application_credential_id": "id",
        "application_credential_secret": "secret"})
    with pytest.raises(BackendUnavailable) as caught:
        run(provider.service("Network").find(scope, str(uuid.uuid4())))
    assert caught.value.retryable


def test_no_credentials_anywhere_is_an_invalid_request() -> None:
    provider = openstack_provider(OpenStackSettings())
    with pytest.raises(InvalidRequest, match="no OpenStack credentials"):
        run(provider.service("Network").find(Scope(namespace="ns"), str(uuid.uuid4())))
