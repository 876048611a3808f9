"""Clusters against the tenant's clusters/cores/RAM quotas, and spec.oidc from the tenant's
IdP: the admission plugins on a real SQLite store, with the real informers following it
through the watch hub (no HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from central_api.auth import cluster_quota
from central_api.auth.cluster_oidc import ClusterOidcDefault, oidc_of_tenant
from central_api.auth.cluster_quota import (
    CLUSTERS,
    ClusterQuotaAdmission,
    ComputeUsage,
    Demand,
    cluster_demand,
    cluster_parts,
    server_demand,
)
from central_api.auth.tenants import TENANT_LABEL
from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.kinds.flavors import flavor_size
from central_api.kinds.kind import ResourceType
from central_api.machinery.errors import ApiError
from central_api.machinery.user import User
from central_api.registry.informers import Informers
from central_api.registry.resources import DeleteOptions, Resources, WriteOptions
from central_api.registry.watch import WatchHub
from central_api.store.sqlite import SqliteStore

MEMBER = User("alice", ("system:authenticated",))
SMALL_POOL = {"name": "small", "flavor": "SCS-2V-4", "replicas": 1}


# -- flavor names and what a cluster asks for ---------------------------------------------
@pytest.mark.parametrize(("name", "size"), [
    ("SCS-4V-8", (4, 8192)), ("SCS-2V-4-20s", (2, 4096)), ("SCS-2V-4_a", (2, 4096)),
    ("SCS-16V-64-500s_GNa-14h", (16, 65536)), ("SCS-1L-1", (1, 1024)),
    ("SCS-2C-4-2x100p", (2, 4096)), ("SCS-8Ti-32u-50n_kvm_z3h", (8, 32768)),
    ("SCS-1V-0.5", (1, 512)), ("SCS-16V-128_GNa-108h", (16, 131072)),
])
def test_scs_flavor_names_state_vcpus_and_ram(name: str, size: tuple[int, int]) -> None:
    found = flavor_size(name)
    assert found is not None and (found.cores, found.ram_mib) == size


@pytest.mark.parametrize("name", ["m1.large", "SCS-0V-4", "SCS-4V", "scs-4v-8",
                                  "SCS-4X-8", "SCS-4V-8-", "SCS-4V-8 _a", ""])
def test_other_names_state_no_size(name: str) -> None:
    assert flavor_size(name) is None


def test_pools_count_at_their_worst_case_and_hosted_control_planes_not_at_all() -> None:
    spec = {"controlPlane": {"replicas": 3}, "nodePools": [
        {"name": "a", "flavor": "SCS-4V-8", "replicas": 2},
        {"name": "b", "flavor": "SCS-2V-4", "autoscaling": {"min": 1, "max": 5}}]}
    assert cluster_demand({"spec": spec}) == Demand(1, 3 * 2 + 2 * 4 + 5 * 2,
                                                    (3 * 4 + 2 * 8 + 5 * 4) * 1024)
    hosted = {**spec, "controlPlane": {"replicas": 3, "hosted": True}}
    assert cluster_demand({"spec": hosted}) == Demand(1, 18, 36 * 1024)
    fields = [p.field for p in cluster_parts(spec)]
    assert fields == ["metadata.name", "spec.controlPlane.replicas",
                      "spec.nodePools[0].replicas", "spec.nodePools[1].autoscaling.max"]
    resized = {**spec, "nodePools": [{**spec["nodePools"][0], "flavor": "SCS-8V-16"}]}
    assert cluster_parts(resized, spec)[2].field == "spec.nodePools[0].flavor"


def test_servers_count_their_chosen_flavor_else_their_request() -> None:
    assert server_demand({"spec": {"flavor": "SCS-2V-4"}}) == Demand(0, 2, 4096)
    assert server_demand({"spec": {"resources": {"cpu": 3, "memoryMiB": 3000}},
                          "status": {"flavor": "SCS-4V-8"}}) == Demand(0, 4, 8192)
    assert server_demand({"spec": {"resources": {"cpu": 3, "memoryMiB": 3000}}}) == \
        Demand(0, 3, 3000)
    assert server_demand({"spec": {"flavor": "custom.big"}}) == Demand()


# -- admission on a real store --------------------------------------------------------------
class World:
    """A store with tenant acme (namespaces acme-a and acme-b), the two plugins installed,
    and the informers following the store as in the server."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteStore(tmp_path / "state.db")
        self.res = Resources(self.store, Catalog(builtin_kinds()))
        self.informers = Informers(self.res.catalog)
        self.now = 1000.0
        self.usage = ComputeUsage(self.informers, clock=lambda: self.now)
        self.res.admission += [ClusterOidcDefault(self.usage, self.informers, self.store),
                               ClusterQuotaAdmission(self.usage, self.informers, self.store)]
        self.hub = WatchHub(self.store)

    def rt(self, plural: str) -> ResourceType:
        for group, version in (("", "v1"), ("tenancy.scs.community", "v1alpha1"),
                               ("kaas.scs.community", "v1alpha1"),
                               ("iaas.scs.community", "v1alpha1")):
            if rt := self.res.catalog.lookup(group, version, plural):
                return rt
        raise LookupError(plural)

    def tenant(self, name: str, **spec: Any) -> None:
        self.res.create(self.rt("tenants"), "", {"metadata": {"name": name}, "spec": {
            "displayName": name, **spec}}, WriteOptions())
        for suffix in ("a", "b"):
            self.res.create(self.rt("namespaces"), "", {"metadata": {
                "name": f"{name}-{suffix}", "labels": {TENANT_LABEL: name}}}, WriteOptions())

    def cluster(self, name: str, pools: list[dict[str, Any]], ns: str = "acme-a",
                dry_run: bool = False, **spec: Any) -> dict[str, Any]:
        return self.res.create(self.rt("clusters"), ns, {"metadata": {"name": name}, "spec": {
            "kubernetesVersion": "1.34", "nodePools": pools, **spec}},
            WriteOptions(user=MEMBER, dry_run=dry_run))

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self.res.update(self.rt("clusters"), meta["namespace"], meta["name"], obj,
                               WriteOptions(user=MEMBER))

    def stored(self, name: str, ns: str = "acme-a") -> dict[str, Any] | None:
        try:
            return self.res.get(self.rt("clusters"), ns, name)
        except ApiError:
            return None

    async def synced(self) -> None:
        """Until the informers hold what the store holds (an informer's revision moves only
        with its own resource's events, so compare the objects)."""
        for resource in (CLUSTERS, "core/namespaces", "iaas.scs.community/servers",
                         "tenancy.scs.community/tenants"):
            informer = self.informers.informer(resource)
            for _ in range(500):
                if _versions(informer.list()) == _versions(self.store.list(resource).items):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(f"the {resource} informer did not catch up")


def _versions(items: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(o["metadata"].get("namespace", ""), o["metadata"]["name"],
             o["metadata"]["resourceVersion"]) for o in items}


Scenario = Callable[[World], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, **quotas: int) -> None:
    async def main() -> None:
        world = World(tmp_path)
        world.tenant("acme", quotas=quotas)
        world.hub.start()
        world.informers.start(world.hub)
        try:
            await world.synced()
            await scenario(world)
        finally:
            await world.informers.stop()
            await world.hub.stop()
            world.store.close()
    asyncio.run(main())


def refused(call: Callable[[], Any]) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def pool(name: str, flavor: str = "SCS-4V-8", replicas: int = 2) -> dict[str, Any]:
    return {"name": name, "flavor": flavor, "replicas": replicas}


def test_a_pool_over_the_cores_quota_is_refused_with_its_field_and_nothing_stored(
        tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.res.create(w.rt("servers"), "acme-b", {"metadata": {"name": "vm"}, "spec": {
            "flavor": "SCS-4V-8", "image": "ubuntu-24.04", "networks": [{"name": "n"}]}},
            WriteOptions(user=MEMBER))
        w.cluster("c1", [pool("general")])  # 2 (control plane) + 8 cores; with vm: 14
        await w.synced()
        before = w.store.current_revision()
        error = refused(lambda: w.cluster("c2", [SMALL_POOL, {
            "name": "burst", "flavor": "SCS-2V-4", "autoscaling": {"min": 1, "max": 3}}]))
        assert error.code == 403 and error.reason == "Forbidden"
        assert 'exceeded quota of tenant "acme", requested: cores=10, used: cores=14, ' \
               "limited: cores=20" in error.message
        assert [c.field for c in error.causes] == ["spec.nodePools[1].autoscaling.max"]
        assert "3 nodes × SCS-2V-4" in error.causes[0].message
        assert w.store.current_revision() == before and w.stored("c2") is None
        w.cluster("c2", [SMALL_POOL])  # 4 cores fit: 18
    run(tmp_path, scenario, cores=20)


def test_scaling_up_is_checked_scaling_down_always_passes(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        c1 = w.cluster("c1", [pool("general", "SCS-2V-4", 2)])  # 6 cores, 12 GiB
        await w.synced()
        c1["spec"]["nodePools"][0]["replicas"] = 4  # 10 cores, 20 GiB > 16 GiB
        error = refused(lambda: w.update(c1))
        assert error.code == 403 and "requested: ramMiB=8192, used: ramMiB=12288, limited: " \
            "ramMiB=16384" in error.message
        assert [c.field for c in error.causes] == ["spec.nodePools[0].replicas"]
        assert w.stored("c1")["spec"]["nodePools"][0]["replicas"] == 2  # type: ignore[index]
        c1["spec"]["nodePools"][0]["replicas"] = 3  # 16 GiB: exactly the limit
        c1 = w.update(c1)
        await w.synced()
        w.res.update(w.rt("tenants"), "", "acme", {**w.res.get(w.rt("tenants"), "", "acme"),
                     "spec": {"displayName": "acme", "quotas": {"ramMiB": 8192}}},
                     WriteOptions())
        await w.synced()
        c1["spec"]["nodePools"][0]["replicas"] = 2  # still over the lowered quota: passes
        w.update(c1)
    run(tmp_path, scenario, ramMiB=16384)


def test_every_exceeded_quota_is_named_once_per_field(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        error = refused(lambda: w.cluster("c1", [pool("big", "SCS-8V-32", 3)]))
        assert "requested: cores=26,ramMiB=102400, used: cores=0,ramMiB=0, limited: " \
               "cores=8,ramMiB=8192 (at spec.nodePools[0].replicas)" in error.message
        assert [c.field for c in error.causes] == ["spec.nodePools[0].replicas"] * 2
    run(tmp_path, scenario, cores=8, ramMiB=8192)


def test_racing_creates_see_each_other_before_the_informer_does(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.cluster("c1", [SMALL_POOL])
        # no await: the informers have not seen c1 yet, the reservation counts it
        assert w.informers.informer(CLUSTERS).get("acme-a", "c1") is None
        error = refused(lambda: w.cluster("c2", [SMALL_POOL], ns="acme-b"))
        assert "requested: clusters=1, used: clusters=1, limited: clusters=1" in error.message
        assert [c.field for c in error.causes] == ["metadata.name"]
        await w.synced()
        assert not w.usage._reserved  # the informer shows c1: its reservation is gone
        refused(lambda: w.cluster("c2", [SMALL_POOL], ns="acme-b"))  # the informer's count
    run(tmp_path, scenario, clusters=1)


def test_scale_ups_in_quick_succession_each_count_before_the_informer_has_them(
        tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        c1 = w.cluster("c1", [pool("general", "SCS-2V-4", 1)])  # 4 cores
        await w.synced()
        for replicas in (2, 3):  # 6, then 8 cores: no await in between
            c1["spec"]["nodePools"][0]["replicas"] = replicas
            c1 = w.update(c1)
        c1["spec"]["nodePools"][0]["replicas"] = 4  # 10 > 9
        error = refused(lambda: w.update(c1))
        assert "requested: cores=2, used: cores=8, limited: cores=9" in error.message
    run(tmp_path, scenario, cores=9)


def test_a_write_that_fails_after_admission_holds_no_quota(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.cluster("c1", [pool("general", replicas=1)])  # 6 cores
        await w.synced()
        conflict = refused(lambda: w.cluster("c1", [pool("general", replicas=1)]))
        assert conflict.code == 409  # admitted, then the store refused it
        w.cluster("c2", [pool("general", replicas=1)])  # 12: the failed c1 is not counted
        await w.synced()
        w.res.delete(w.rt("clusters"), "acme-a", "c1", DeleteOptions())
        await w.synced()
        w.cluster("c3", [pool("general", replicas=1)])  # the deleted cluster freed it
        gone = w.cluster("nowhere", [SMALL_POOL], ns="acme-b", dry_run=True)
        assert gone["metadata"]["name"] == "nowhere"
        w.cluster("c4", [SMALL_POOL], ns="acme-b")  # a dry run reserved nothing: 12 + 4
        refused(lambda: w.cluster("c5", [SMALL_POOL]))  # c4 counts before the informer has it
        w.now += 60
        await w.synced()
        refused(lambda: w.cluster("c5", [SMALL_POOL]))  # and once it has it
    run(tmp_path, scenario, cores=16)


def test_a_reservation_counts_until_the_informer_shows_the_write_or_it_expires(
        tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        seen: list[int] = []
        ident = (CLUSTERS, "acme-a", "ghost")  # admitted, but never stored

        def check(others: Demand, counted: Demand) -> None:
            seen.append(others.cores + counted.cores)

        other = (CLUSTERS, "acme-b", "other")
        w.usage.admit("acme", ident, 0, Demand(1, 8, 0), check, reserve=True)
        w.usage.admit("acme", other, 0, Demand(), check, False)
        w.now += 9
        w.usage.admit("acme", other, 0, Demand(), check, False)
        w.now += 2
        w.usage.admit("acme", other, 0, Demand(), check, False)
        assert seen == [0, 8, 8, 0]
    run(tmp_path, scenario)


def test_an_unknown_flavor_is_refused_only_where_cores_or_ram_are_limited(
        tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        error = refused(lambda: w.cluster("c1", [SMALL_POOL, pool("odd", "m1.large")]))
        assert error.code == 422
        assert [c.field for c in error.causes] == ["spec.nodePools[1].flavor"]
        assert "not an SCS flavor name" in error.causes[0].message
        w.tenant("free")
        await w.synced()
        w.cluster("c1", [pool("odd", "m1.large")], ns="free-a")  # nothing to count it against
    run(tmp_path, scenario, cores=100)


def test_a_tenant_and_namespace_the_informers_have_not_seen_yet_are_read_from_the_store(
        tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.tenant("late", quotas={"clusters": 0}, federation={
            "issuerURL": "https://idp.example.org", "clientID": "scs"})
        assert w.usage.tenant_of("late-a") == (False, None)  # no await: not delivered yet
        error = refused(lambda: w.cluster("c", [SMALL_POOL], ns="late-a"))
        assert error.code == 403 and 'tenant "late"' in error.message
        w.cluster("c", [SMALL_POOL], ns="acme-a")  # acme is not limited
        await w.synced()
        assert w.usage.tenant_of("late-a") == (True, "late")
        w.res.update(w.rt("tenants"), "", "late", {**w.res.get(w.rt("tenants"), "", "late"),
                     "spec": {"displayName": "late", "federation": {
                         "issuerURL": "https://idp.example.org", "clientID": "scs"}}},
                     WriteOptions())
        await w.synced()
        created = w.cluster("c", [SMALL_POOL], ns="late-b")  # the quota is lifted
        assert created["spec"]["oidc"]["usernamePrefix"] == "late:"
    run(tmp_path, scenario)


def test_oidc_defaults_to_the_tenants_identity_provider(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.tenant("fed", federation={"issuerURL": "https://idp.example.org/realms/fed",
                                    "clientID": "scs", "claimMappings": {
                                        "username": "preferred_username", "groups": "roles"}})
        await w.synced()
        created = w.cluster("c1", [SMALL_POOL], ns="fed-a")
        assert created["spec"]["oidc"] == {
            "issuerURL": "https://idp.example.org/realms/fed", "clientID": "scs",
            "usernameClaim": "preferred_username", "groupsClaim": "roles",
            "usernamePrefix": "fed:", "groupsPrefix": "fed:"}
        own = {"issuerURL": "https://other.example.org", "clientID": "k8s"}
        kept = w.cluster("c2", [SMALL_POOL], ns="fed-a", oidc=own)
        assert kept["spec"]["oidc"]["issuerURL"] == "https://other.example.org"
        assert kept["spec"]["oidc"]["usernamePrefix"] == "oidc:"  # the field's own default
        assert "oidc" not in w.cluster("c3", [SMALL_POOL])["spec"]  # acme has no IdP
        del created["spec"]["oidc"]
        assert "oidc" not in w.update(created)["spec"]  # only a new cluster is defaulted
    run(tmp_path, scenario)


def test_an_idp_that_does_not_fit_a_cluster_is_not_defaulted() -> None:
    assert oidc_of_tenant("t", {"issuerURL": "https://idp.example", "clientID": "x" * 300}) \
        is None
    assert oidc_of_tenant("t", {"issuerURL": "https://idp.example", "clientID": "c"}) == {
        "issuerURL": "https://idp.example", "clientID": "c", "usernameClaim": "email",
        "groupsClaim": "groups", "usernamePrefix": "t:", "groupsPrefix": "t:"}


def test_admission_touches_no_other_tenants_reservations(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded work: however many writes other tenants have in flight (or failed after
    admission), a tenant's admission reads only its own namespaces' reservations; expired
    ones still go."""
    touched: list[str] = []

    class Watched(cluster_quota.Reservation):
        def __getattribute__(self, name: str) -> Any:
            if not name.startswith("__"):
                touched.append(object.__getattribute__(self, "tag"))
            return object.__getattribute__(self, name)

    def reservation(base: int, demand: Demand, expires: float) -> Watched:
        held = Watched(base, demand, expires)
        object.__setattr__(held, "tag", ident[1])
        return held

    monkeypatch.setattr(cluster_quota, "Reservation", reservation)
    now = [0.0]
    usage = ComputeUsage(Informers(Catalog(builtin_kinds())), clock=lambda: now[0])

    def nothing(others: Demand, counted: Demand) -> None:
        pass

    for i in range(200):
        ident = (CLUSTERS, f"other-{i % 4}", f"c{i}")
        usage.admit("other", ident, 0, Demand(1, 2, 0), nothing, reserve=True)
    ident = (CLUSTERS, "acme-a", "mine")
    touched.clear()
    usage.admit("acme", ident, 0, Demand(1, 2, 0), nothing, reserve=True)
    assert set(touched) <= {"acme-a"}, f"read {len(touched)} reservations of others"
    now[0] += cluster_quota.RESERVATION_SECONDS
    ident = (CLUSTERS, "acme-a", "later")
    usage.admit("acme", ident, 0, Demand(), nothing, reserve=False)
    assert not usage._reserved, "expired reservations of every tenant are dropped"


def test_a_pool_of_an_uncountable_flavor_stored_before_the_quota_may_shrink_not_grow(
        tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.tenant("free")
        await w.synced()
        c1 = w.cluster("c1", [pool("odd", "m1.large", 2)], ns="free-a")  # nothing limits it
        w.res.update(w.rt("tenants"), "", "free", {**w.res.get(w.rt("tenants"), "", "free"),
                     "spec": {"displayName": "free", "quotas": {"cores": 100}}},
                     WriteOptions())
        await w.synced()
        c1["spec"]["nodePools"][0]["replicas"] = 50  # uncounted nodes would pass any quota
        error = refused(lambda: w.update(c1))
        assert error.code == 422 and [c.field for c in error.causes] == \
            ["spec.nodePools[0].flavor"]
        c1["spec"]["nodePools"][0]["replicas"] = 1
        w.update(c1)  # scaling down passes
    run(tmp_path, scenario)
