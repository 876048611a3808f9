"""The sandbox cloud behaves like a real one: asynchronous lifecycles, idempotent creates,
dependency conflicts, quotas, unique addresses, persistence and a clean inventory.

Every test uses a real SQLite store and a fake clock (or ``speed=0``), so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from central_api.providers.base import (
    BackendResource,
    Conflict,
    InvalidRequest,
    NotFound,
    Provider,
    QuotaExceeded,
    Scope,
)
from central_api.providers.sandbox import (
    SandboxSettings,
    delete_behind_the_back,
    inventory,
    modify_behind_the_back,
    sandbox_provider,
    set_quota,
)
from central_api.providers.sandbox.keys import owner_key
from central_api.providers.sandbox.records import Records
from central_api.store.sqlite import SqliteStore

T = TypeVar("T")
NS = Scope("team-a")
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrtGgkUlX4MX7Yg7hoeulM9IfoVrdTeWfD7J0zx"
              "wUEU test")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "sandbox.db")
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cloud(store: SqliteStore, clock: Clock) -> Provider:
    """Real default delays on a fake clock."""
    return sandbox_provider(store, SandboxSettings(clock=clock))


@pytest.fixture
def instant(store: SqliteStore) -> Provider:
    return sandbox_provider(store, SandboxSettings(speed=0))


def create(p: Provider, kind: str, owner: str, desired: dict[str, Any],
           scope: Scope = NS) -> BackendResource:
    return run(p.service(kind).create(scope, owner, desired))


def find(p: Provider, kind: str, owner: str, scope: Scope = NS) -> BackendResource | None:
    return run(p.service(kind).find(scope, owner))


def server(networks: list[str], **over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "flavor": "SCS-2V-4", "resources": None, "image": "ubuntu-24.04",
        "architecture": "amd64", "gpu": None, "networkIDs": networks,
        "securityGroupIDs": [], "volumeIDs": [], "keypairID": "", "userData": "",
        "haPolicy": "none"}
    spec.update(over)
    return spec


def network_with_subnet(p: Provider, cidr: str = "10.0.0.0/24", name: str = "net",
                        scope: Scope = NS) -> tuple[str, str]:
    net = create(p, "Network", f"{name}-uid", {"mtu": None, "adminStateUp": True,
                                               "description": ""}, scope)
    sub = create(p, "Subnet", f"{name}-sub-uid",
                 {"networkID": net.id, "cidr": cidr, "ipVersion": 4, "gatewayIP": None,
                  "enableDHCP": True, "dnsNameservers": []}, scope)
    return net.id, sub.id


# -- lifecycle ---------------------------------------------------------------------------------
def test_server_is_pending_until_its_boot_delay_has_passed(cloud: Provider, clock: Clock) -> None:
    net, _ = network_with_subnet(cloud)
    clock.advance(1)
    created = create(cloud, "Server", "srv-uid", server([net]))
    assert created.state == "PENDING"
    assert created.observed["powerState"] == "NOSTATE"
    clock.advance(1.9)
    assert find(cloud, "Server", "srv-uid").state == "PENDING"  # type: ignore[union-attr]
    clock.advance(0.2)
    active = find(cloud, "Server", "srv-uid")
    assert active is not None and active.state == "ACTIVE"
    assert active.observed == {"addresses": ["10.0.0.2"], "flavor": "SCS-2V-4",
                               "powerState": "RUNNING", "simulated": True}
    assert active.owner_uid == "srv-uid"
    assert active.desired == server([net])


def test_every_observation_says_simulated(instant: Provider) -> None:
    net, sub = network_with_subnet(instant)
    resources = [find(instant, "Network", "net-uid"), find(instant, "Subnet", "net-sub-uid"),
                 create(instant, "Keypair", "kp", {"publicKey": PUBLIC_KEY}),
                 create(instant, "Volume", "vol", {"sizeGiB": 1, "volumeType": "",
                                                   "imageRef": ""}),
                 create(instant, "Router", "rt", {"externalGateway": True, "subnetIDs": [sub]}),
                 create(instant, "SecurityGroup", "sg", {"description": "", "rules": []})]
    assert all(r is not None and r.observed["simulated"] is True for r in resources)
    assert instant.simulated and instant.name == "sandbox"


def test_speed_zero_makes_creation_and_deletion_instant(instant: Provider) -> None:
    net, _ = network_with_subnet(instant)
    srv = create(instant, "Server", "srv", server([net]))
    assert srv.state == "ACTIVE"
    run(instant.service("Server").delete(NS, srv))
    assert find(instant, "Server", "srv") is None


def test_speed_divides_every_delay(store: SqliteStore, clock: Clock) -> None:
    fast = sandbox_provider(store, SandboxSettings(speed=10, clock=clock))
    vol = create(fast, "Volume", "vol", {"sizeGiB": 1, "volumeType": "", "imageRef": ""})
    assert vol.state == "PENDING"
    clock.advance(0.11)  # Volume: 1 s at speed 1
    assert find(fast, "Volume", "vol").state == "ACTIVE"  # type: ignore[union-attr]


def test_delete_goes_through_deleting_then_find_returns_none(cloud: Provider,
                                                             clock: Clock) -> None:
    net, _ = network_with_subnet(cloud)
    clock.advance(5)
    srv = create(cloud, "Server", "srv", server([net]))
    clock.advance(5)
    run(cloud.service("Server").delete(NS, srv))
    deleting = find(cloud, "Server", "srv")
    assert deleting is not None and deleting.state == "DELETING"
    run(cloud.service("Server").delete(NS, deleting))  # safe to call again
    clock.advance(1.01)
    assert find(cloud, "Server", "srv") is None


# -- idempotency ---------------------------------------------------------------------------------
def test_creating_twice_for_one_owner_gives_one_resource(instant: Provider,
                                                         store: SqliteStore) -> None:
    first = create(instant, "Network", "owner-1", {"mtu": 1400})
    second = create(instant, "Network", "owner-1", {"mtu": 1400})
    assert first.id == second.id
    assert len(run(inventory(store))["Network"]) == 1


def test_create_interrupted_after_the_owner_index_reuses_the_chosen_id(
        instant: Provider, store: SqliteStore) -> None:
    records = Records(store, SandboxSettings(speed=0))
    chosen = records.claim_owner("Network", NS.namespace, "owner-1")  # then the "crash"
    assert find(instant, "Network", "owner-1") is None
    created = create(instant, "Network", "owner-1", {"mtu": None})
    assert created.id == chosen
    assert [n["id"] for n in run(inventory(store))["Network"]] == [chosen]


def test_owner_index_of_a_recreated_resource_survives_a_late_purge(
        instant: Provider, store: SqliteStore) -> None:
    first = create(instant, "Network", "owner-1", {})
    delete_behind_the_back(store, "Network", NS.namespace, first.id)
    second = create(instant, "Network", "owner-1", {})
    assert second.id != first.id
    stale = {"id": first.id, "kind": "Network", "namespace": NS.namespace,
             "ownerUID": "owner-1"}  # a purge of the old record that a crash interrupted
    Records(store, SandboxSettings()).purge(stale)
    assert store.get(owner_key("Network", NS.namespace, "owner-1"))["id"] == second.id


# -- updates -------------------------------------------------------------------------------------
def test_update_changes_what_the_backend_has(instant: Provider) -> None:
    net = create(instant, "Network", "n", {"mtu": 1500, "description": "a"})
    updated = run(instant.service("Network").update(NS, net, {"mtu": 1400,
                                                              "description": "b"}))
    assert updated.desired == {"mtu": 1400, "description": "b"}
    assert find(instant, "Network", "n").desired["mtu"] == 1400  # type: ignore[union-attr]


def test_changing_an_immutable_field_is_an_invalid_request(instant: Provider) -> None:
    net, _ = network_with_subnet(instant)
    sub = find(instant, "Subnet", "net-sub-uid")
    assert sub is not None
    with pytest.raises(InvalidRequest, match="cidr .* cannot be changed"):
        run(instant.service("Subnet").update(NS, sub, {**sub.desired, "cidr": "10.9.0.0/24"}))
    kp = create(instant, "Keypair", "kp", {"publicKey": PUBLIC_KEY})
    with pytest.raises(InvalidRequest, match="publicKey"):
        run(instant.service("Keypair").update(NS, kp, {"publicKey": PUBLIC_KEY + "x"}))


def test_server_cannot_be_updated_while_building_and_resizes_through_pending(
        cloud: Provider, clock: Clock) -> None:
    net, _ = network_with_subnet(cloud)
    clock.advance(1)
    srv = create(cloud, "Server", "srv", server([net]))
    with pytest.raises(Conflict, match="still being created"):
        run(cloud.service("Server").update(NS, srv, server([net], flavor="SCS-4V-8")))
    clock.advance(2)
    resized = run(cloud.service("Server").update(NS, srv, server([net], flavor="SCS-4V-8")))
    assert resized.state == "PENDING" and "resizing to SCS-4V-8" in resized.message
    assert resized.observed["flavor"] == "SCS-4V-8"
    clock.advance(1)
    assert find(cloud, "Server", "srv").state == "ACTIVE"  # type: ignore[union-attr]


def test_update_of_a_vanished_resource_is_not_found(instant: Provider,
                                                    store: SqliteStore) -> None:
    net = create(instant, "Network", "n", {})
    delete_behind_the_back(store, "Network", NS.namespace, net.id)
    with pytest.raises(NotFound):
        run(instant.service("Network").update(NS, net, {"mtu": 1400}))


def test_volumes_only_grow(instant: Provider) -> None:
    vol = create(instant, "Volume", "v", {"sizeGiB": 10, "volumeType": "", "imageRef": ""})
    grown = run(instant.service("Volume").update(NS, vol, {**vol.desired, "sizeGiB": 20}))
    with pytest.raises(InvalidRequest, match="only grow"):
        run(instant.service("Volume").update(NS, grown, {**vol.desired, "sizeGiB": 5}))


# -- dependencies --------------------------------------------------------------------------------
def test_subnet_needs_an_existing_network(instant: Provider) -> None:
    with pytest.raises(Conflict, match="Network 'nope' .* does not exist"):
        create(instant, "Subnet", "s", {"networkID": "nope", "cidr": "10.0.0.0/24",
                                        "ipVersion": 4})


def test_network_with_subnets_cannot_be_deleted_until_they_are(instant: Provider) -> None:
    net_id, _ = network_with_subnet(instant)
    net = find(instant, "Network", "net-uid")
    sub = find(instant, "Subnet", "net-sub-uid")
    assert net is not None and sub is not None
    with pytest.raises(Conflict, match=f"Network {net_id} is still used by Subnet") as exc:
        run(instant.service("Network").delete(NS, net))
    assert exc.value.retryable
    run(instant.service("Subnet").delete(NS, sub))
    run(instant.service("Network").delete(NS, net))
    assert find(instant, "Network", "net-uid") is None


def test_overlapping_subnets_on_one_network_are_refused(instant: Provider) -> None:
    net, _ = network_with_subnet(instant, "10.0.0.0/24")
    with pytest.raises(InvalidRequest, match="overlaps"):
        create(instant, "Subnet", "s2", {"networkID": net, "cidr": "10.0.0.128/25",
                                         "ipVersion": 4})


def test_attached_volume_cannot_be_deleted_until_its_server_is(instant: Provider) -> None:
    net, _ = network_with_subnet(instant)
    vol = create(instant, "Volume", "v", {"sizeGiB": 10, "volumeType": "ssd", "imageRef": ""})
    srv = create(instant, "Server", "srv", server([net], volumeIDs=[vol.id]))
    assert find(instant, "Volume", "v").observed["attachedTo"] == srv.id  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="attached to server"):
        run(instant.service("Volume").delete(NS, vol))
    with pytest.raises(Conflict, match="in use by server"):
        create(instant, "Server", "srv2", server([net], volumeIDs=[vol.id]))
    run(instant.service("Server").delete(NS, srv))
    assert find(instant, "Volume", "v").observed["attachedTo"] == ""  # type: ignore[union-attr]
    run(instant.service("Volume").delete(NS, vol))


def test_server_needs_its_network_to_have_a_subnet(instant: Provider) -> None:
    net = create(instant, "Network", "n", {})
    with pytest.raises(Conflict, match="has no subnet"):
        create(instant, "Server", "srv", server([net.id]))


def test_subnet_with_a_server_or_router_cannot_be_deleted(instant: Provider) -> None:
    net, sub_id = network_with_subnet(instant)
    sub = find(instant, "Subnet", "net-sub-uid")
    assert sub is not None
    srv = create(instant, "Server", "srv", server([net]))
    with pytest.raises(Conflict, match="attached to Server"):
        run(instant.service("Subnet").delete(NS, sub))
    run(instant.service("Server").delete(NS, srv))
    router = create(instant, "Router", "rt", {"externalGateway": False, "subnetIDs": [sub_id]})
    with pytest.raises(Conflict, match="interface of Router"):
        run(instant.service("Subnet").delete(NS, sub))
    run(instant.service("Router").update(NS, router, {"externalGateway": False,
                                                      "subnetIDs": []}))
    run(instant.service("Subnet").delete(NS, sub))


def test_security_group_in_use_cannot_be_deleted(instant: Provider) -> None:
    net, _ = network_with_subnet(instant)
    sg = create(instant, "SecurityGroup", "sg", {"description": "web", "rules": []})
    create(instant, "Server", "srv", server([net], securityGroupIDs=[sg.id]))
    with pytest.raises(Conflict, match="used by Server"):
        run(instant.service("SecurityGroup").delete(NS, sg))


def test_a_volume_still_creating_cannot_be_attached(cloud: Provider, clock: Clock) -> None:
    net, _ = network_with_subnet(cloud)
    vol = create(cloud, "Volume", "v", {"sizeGiB": 1, "volumeType": "", "imageRef": ""})
    with pytest.raises(Conflict, match="PENDING, not ACTIVE"):
        create(cloud, "Server", "srv", server([net], volumeIDs=[vol.id]))


def image(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "source": {"url": "https://images.example.com/x.qcow2"}, "checksum": "",
        "diskFormat": "qcow2", "architecture": "amd64", "minDiskGiB": 0, "minMemoryMiB": 0,
        "osDistro": "", "osVersion": ""}
    spec.update(over)
    return spec


def boot_image(network: str, image_id: str, **over: Any) -> dict[str, Any]:
    """A Server's desired state as the controller passes it before creation: the reference
    and the Image's resolved ID."""
    return server([network], image="", imageRef={"name": "img"}, imageID=image_id, **over)


def test_a_server_boots_an_image_only_once_it_is_active_and_of_its_architecture(
        cloud: Provider, clock: Clock) -> None:
    net, _ = network_with_subnet(cloud)
    img = create(cloud, "Image", "img", image(architecture="arm64"))
    assert img.state == "PENDING"
    with pytest.raises(Conflict, match="PENDING, not ACTIVE"):
        create(cloud, "Server", "early", boot_image(net, img.id, architecture="arm64",
                                                    flavor="SCS-2V-4_a"))
    clock.advance(3)
    ready = find(cloud, "Image", "img")
    assert ready is not None and ready.state == "ACTIVE"
    assert "nothing was downloaded" in ready.message
    with pytest.raises(InvalidRequest, match="built for arm64, the server asks for amd64"):
        create(cloud, "Server", "wrong", boot_image(net, img.id))
    booted = create(cloud, "Server", "srv", boot_image(net, img.id, architecture="arm64",
                                                       flavor="SCS-2V-4_a"))
    assert booted.desired["imageID"] == img.id


def test_a_server_recorded_before_images_existed_still_updates(instant: Provider) -> None:
    """Records written before ``imageRef`` existed lack it and ``imageID``; the controller
    now sends them as null and "", which must not count as changing an immutable field."""
    net, _ = network_with_subnet(instant)
    old = create(instant, "Server", "srv", server([net]))
    updated = run(instant.service("Server").update(
        NS, old, server([net], imageRef=None, imageID="", haPolicy="restart")))
    assert updated.desired["haPolicy"] == "restart"


def test_an_images_source_cannot_change_but_its_metadata_can(instant: Provider) -> None:
    img = create(instant, "Image", "img", image())
    with pytest.raises(InvalidRequest, match="source of Image .* cannot be changed"):
        run(instant.service("Image").update(
            NS, img, image(source={"url": "https://images.example.com/y.qcow2"})))
    updated = run(instant.service("Image").update(NS, img, image(minDiskGiB=10)))
    assert updated.desired["minDiskGiB"] == 10


# -- quotas --------------------------------------------------------------------------------------
def test_quota_exceeded_names_quota_used_and_limit(store: SqliteStore) -> None:
    p = sandbox_provider(store, SandboxSettings(speed=0, quotas={"instances": 2}))
    net, _ = network_with_subnet(p)
    create(p, "Server", "a", server([net]))
    create(p, "Server", "b", server([net]))
    with pytest.raises(QuotaExceeded) as exc:
        create(p, "Server", "c", server([net]))
    assert str(exc.value) == ("sandbox (simulated): quota exceeded for instances in namespace "
                              "team-a: requested 1, used 2, limit 2")
    assert exc.value.retryable
    other = Scope("team-b")
    net_b, _ = network_with_subnet(p, scope=other)
    create(p, "Server", "c", server([net_b]), scope=other)  # quotas are per namespace


def test_cores_quota_counts_the_chosen_flavor(store: SqliteStore) -> None:
    p = sandbox_provider(store, SandboxSettings(speed=0, quotas={"cores": 6}))
    net, _ = network_with_subnet(p)
    create(p, "Server", "a", server([net], flavor="SCS-4V-8"))
    with pytest.raises(QuotaExceeded, match="cores .* requested 4, used 4, limit 6"):
        create(p, "Server", "b", server([net], flavor="SCS-4V-16"))
    create(p, "Server", "b", server([net], flavor="SCS-2V-8"))


def test_quota_override_per_namespace_and_on_growth(instant: Provider,
                                                    store: SqliteStore) -> None:
    set_quota(store, NS.namespace, gigabytes=30)
    vol = create(instant, "Volume", "v", {"sizeGiB": 20, "volumeType": "", "imageRef": ""})
    with pytest.raises(QuotaExceeded, match="gigabytes .* requested 40, used 0, limit 30"):
        run(instant.service("Volume").update(NS, vol, {**vol.desired, "sizeGiB": 40}))
    run(instant.service("Volume").update(NS, vol, {**vol.desired, "sizeGiB": 30}))


def test_deleting_frees_quota(store: SqliteStore, clock: Clock) -> None:
    p = sandbox_provider(store, SandboxSettings(clock=clock, quotas={"networks": 1}))
    net = create(p, "Network", "n1", {})
    run(p.service("Network").delete(NS, net))
    create(p, "Network", "n2", {})


# -- addresses -----------------------------------------------------------------------------------
def test_addresses_are_unique_within_a_subnet_across_many_servers(instant: Provider) -> None:
    net, _ = network_with_subnet(instant, "10.1.0.0/26")

    async def many() -> list[BackendResource]:
        service = instant.service("Server")
        return await asyncio.gather(*(service.create(NS, f"srv-{i}", server([net]))
                                      for i in range(40)))

    servers = run(many())
    ips = [s.observed["addresses"][0] for s in servers]
    assert len(set(ips)) == 40
    subnet = ipaddress.ip_network("10.1.0.0/26")
    assert all(ipaddress.ip_address(ip) in subnet for ip in ips)
    assert "10.1.0.1" not in ips  # the gateway


def test_a_full_subnet_is_a_conflict_and_deleted_servers_give_addresses_back(
        instant: Provider) -> None:
    net, _ = network_with_subnet(instant, "10.2.0.0/29")  # 6 hosts, one is the gateway
    servers = [create(instant, "Server", f"s{i}", server([net])) for i in range(5)]
    with pytest.raises(Conflict, match="no free IP address"):
        create(instant, "Server", "s5", server([net]))
    run(instant.service("Server").delete(NS, servers[2]))
    again = create(instant, "Server", "s5", server([net]))
    assert again.observed["addresses"] == servers[2].observed["addresses"]


def test_server_gets_one_address_per_network(instant: Provider) -> None:
    net_a, _ = network_with_subnet(instant, "10.0.0.0/24", "a")
    net_b, _ = network_with_subnet(instant, "10.5.0.0/24", "b")
    srv = create(instant, "Server", "srv", server([net_a, net_b]))
    assert srv.observed["addresses"] == ["10.0.0.2", "10.5.0.2"]
    srv = run(instant.service("Server").update(NS, srv, server([net_b])))
    assert srv.observed["addresses"] == ["10.5.0.2"]
    other = create(instant, "Server", "srv2", server([net_a]))
    assert other.observed["addresses"] == ["10.0.0.2"]  # released by the update


def test_floating_ip_associates_reassociates_and_is_released_by_server_deletion(
        instant: Provider) -> None:
    net, _ = network_with_subnet(instant)
    a = create(instant, "Server", "a", server([net]))
    b = create(instant, "Server", "b", server([net]))
    fip = create(instant, "FloatingIP", "fip", {"serverID": a.id})
    assert ipaddress.ip_address(fip.observed["address"]) in ipaddress.ip_network(
        "203.0.113.0/24")
    fip = run(instant.service("FloatingIP").update(NS, fip, {"serverID": b.id}))
    assert fip.desired == {"serverID": b.id}
    run(instant.service("Server").delete(NS, b))
    assert find(instant, "FloatingIP", "fip").desired == {"serverID": None}  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="does not exist"):
        create(instant, "FloatingIP", "fip2", {"serverID": "gone"})


def test_router_gateway_and_load_balancer_addresses(instant: Provider) -> None:
    net, sub = network_with_subnet(instant)
    router = create(instant, "Router", "rt", {"externalGateway": True, "subnetIDs": [sub]})
    assert router.observed["externalIP"].startswith("203.0.113.")
    router = run(instant.service("Router").update(NS, router, {"externalGateway": False,
                                                               "subnetIDs": [sub]}))
    assert router.observed["externalIP"] == ""
    srv = create(instant, "Server", "srv", server([net]))
    lb = create(instant, "LoadBalancer", "lb", {
        "subnetID": sub, "provider": "ovn", "floatingIP": True,
        "listeners": [{"name": "http", "protocol": "TCP", "port": 80, "pool": "web"}],
        "pools": [{"name": "web", "protocol": "TCP", "algorithm": "SOURCE_IP_PORT",
                   "members": [{"serverID": srv.id, "port": 8080}]}]})
    assert lb.observed["vipAddress"].startswith("10.0.0.")
    assert lb.observed["vipAddress"] not in srv.observed["addresses"]
    assert lb.observed["floatingIP"].startswith("203.0.113.")
    with pytest.raises(InvalidRequest, match="provider"):
        run(instant.service("LoadBalancer").update(NS, lb, {**lb.desired,
                                                            "provider": "amphora"}))


def test_load_balancer_members_must_exist(instant: Provider) -> None:
    _, sub = network_with_subnet(instant)
    with pytest.raises(Conflict, match="Server 'ghost'"):
        create(instant, "LoadBalancer", "lb", {
            "subnetID": sub, "provider": "ovn", "floatingIP": False, "listeners": [],
            "pools": [{"name": "p", "members": [{"serverID": "ghost", "port": 80}]}]})


# -- keypairs ------------------------------------------------------------------------------------
def test_keypair_fingerprint_is_the_md5_nova_and_ssh_keygen_report(instant: Provider) -> None:
    kp = create(instant, "Keypair", "kp", {"publicKey": PUBLIC_KEY})
    # ssh-keygen -E md5 -lf key.pub → MD5:a7:1b:16:fa:2f:a7:00:fc:58:ea:c6:85:bf:91:8d:7b
    assert kp.observed["fingerprint"] == "a7:1b:16:fa:2f:a7:00:fc:58:ea:c6:85:bf:91:8d:7b"
    with pytest.raises(InvalidRequest, match="OpenSSH format"):
        create(instant, "Keypair", "bad", {"publicKey": "not a key at all"})


# -- persistence, drift, inventory ---------------------------------------------------------------
def test_the_cloud_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "persist.db"
    first_store = SqliteStore(path)
    p = sandbox_provider(first_store, SandboxSettings(speed=0))
    net, _ = network_with_subnet(p)
    srv = create(p, "Server", "srv", server([net]))
    first_store.close()

    second_store = SqliteStore(path)
    try:
        again = sandbox_provider(second_store, SandboxSettings(speed=0))
        found = find(again, "Server", "srv")
        assert found is not None and found.id == srv.id
        assert found.observed["addresses"] == srv.observed["addresses"]
        other = create(again, "Server", "srv2", server([net]))
        assert other.observed["addresses"] != srv.observed["addresses"]
    finally:
        second_store.close()


def test_pending_resource_is_still_pending_after_a_restart_until_its_time(
        tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "persist.db"
    s1 = SqliteStore(path)
    create(sandbox_provider(s1, SandboxSettings(clock=clock)), "Volume", "v",
           {"sizeGiB": 1, "volumeType": "", "imageRef": ""})
    s1.close()
    s2 = SqliteStore(path)
    try:
        p = sandbox_provider(s2, SandboxSettings(speed=0, clock=clock))  # new speed: no effect
        assert find(p, "Volume", "v").state == "PENDING"  # type: ignore[union-attr]
        clock.advance(1)
        assert find(p, "Volume", "v").state == "ACTIVE"  # type: ignore[union-attr]
    finally:
        s2.close()


def test_deleted_behind_the_back_is_not_found_and_recreated_with_a_new_id(
        instant: Provider, store: SqliteStore) -> None:
    net, _ = network_with_subnet(instant)
    srv = create(instant, "Server", "srv", server([net]))
    fip = create(instant, "FloatingIP", "fip", {"serverID": srv.id})
    assert delete_behind_the_back(store, "Server", NS.namespace, srv.id)
    assert not delete_behind_the_back(store, "Server", NS.namespace, srv.id)
    assert find(instant, "Server", "srv") is None
    assert find(instant, "FloatingIP", "fip").desired["serverID"] is None  # type: ignore[union-attr]
    again = create(instant, "Server", "srv", server([net]))
    assert again.id != srv.id
    assert again.observed["addresses"] == srv.observed["addresses"]  # address was released
    assert fip.id


def test_modified_behind_the_back_shows_up_as_drift(instant: Provider,
                                                    store: SqliteStore) -> None:
    net = create(instant, "Network", "n", {"mtu": 1500})
    modify_behind_the_back(store, "Network", NS.namespace, net.id, mtu=9000)
    assert find(instant, "Network", "n").desired == {"mtu": 9000}  # type: ignore[union-attr]


def test_inventory_is_empty_after_deleting_everything(cloud: Provider, store: SqliteStore,
                                                      clock: Clock) -> None:
    net, sub = network_with_subnet(cloud)
    clock.advance(1)
    vol = create(cloud, "Volume", "v", {"sizeGiB": 1, "volumeType": "", "imageRef": ""})
    kp = create(cloud, "Keypair", "kp", {"publicKey": PUBLIC_KEY})
    sg = create(cloud, "SecurityGroup", "sg", {"description": "", "rules": []})
    clock.advance(1)
    srv = create(cloud, "Server", "srv", server([net], volumeIDs=[vol.id],
                                                securityGroupIDs=[sg.id], keypairID=kp.id))
    rt = create(cloud, "Router", "rt", {"externalGateway": True, "subnetIDs": [sub]})
    fip = create(cloud, "FloatingIP", "fip", {"serverID": srv.id})
    lb = create(cloud, "LoadBalancer", "lb", {"subnetID": sub, "provider": "ovn",
                                              "floatingIP": True, "listeners": [],
                                              "pools": []})
    img = create(cloud, "Image", "img", image())
    inv = run(inventory(store))
    assert sum(len(v) for v in inv.values()) == len(inv) - 1 == 10  # no Cluster here
    assert inv["Cluster"] == []
    assert inv["Server"][0]["observed"]["simulated"] is True
    clock.advance(5)
    for kind, res in [("LoadBalancer", lb), ("FloatingIP", fip), ("Router", rt),
                      ("Server", srv), ("Volume", vol), ("Keypair", kp),
                      ("SecurityGroup", sg), ("Image", img)]:
        run(cloud.service(kind).delete(NS, res))
    for owner, kind in [("net-sub-uid", "Subnet"), ("net-uid", "Network")]:
        found = find(cloud, kind, owner)
        assert found is not None
        run(cloud.service(kind).delete(NS, found))
    assert any(run(inventory(store, SandboxSettings(clock=clock))).values())  # DELETING
    clock.advance(2)
    inv = run(inventory(store, SandboxSettings(clock=clock)))
    assert inv == {kind: [] for kind in inv} and len(inv) == 11  # the 10 IaaS kinds, Cluster
    assert store.list("sandbox/ips", NS.namespace).items == []
    assert store.list("sandbox/ips", "").items == []
    assert store.list("sandbox/owners", NS.namespace).items == []


# -- views shared by several API server processes ------------------------------------------------
def test_quota_and_address_views_see_writes_of_another_process_and_survive_compaction(
        tmp_path: Path) -> None:
    """Two sandboxes on one database file stand for two ``scs serve`` processes: each keeps
    its own incremental views, and each must see what the other committed — also after the
    history the views catch up from has been compacted away."""
    first_store, second_store = (SqliteStore(tmp_path / "shared.db"),
                                 SqliteStore(tmp_path / "shared.db"))
    try:
        settings = SandboxSettings(speed=0, quotas={"instances": 3})
        first = sandbox_provider(first_store, settings)
        second = sandbox_provider(second_store, settings)
        net, _ = network_with_subnet(first, "10.3.0.0/29")  # 5 usable hosts
        a = create(first, "Server", "a", server([net]))
        b = create(second, "Server", "b", server([net]))    # second's views warm up here
        c = create(first, "Server", "c", server([net]))
        assert len({s.observed["addresses"][0] for s in (a, b, c)}) == 3
        with pytest.raises(QuotaExceeded, match="used 3, limit 3"):
            create(second, "Server", "d", server([net]))

        run(first.service("Server").delete(NS, a))
        first_store.compact(first_store.current_revision())
        d = create(second, "Server", "d", server([net]))     # catches up by listing again
        assert d.observed["addresses"] == a.observed["addresses"]
        with pytest.raises(QuotaExceeded, match="used 3, limit 3"):
            create(first, "Server", "e", server([net]))
    finally:
        first_store.close()
        second_store.close()
