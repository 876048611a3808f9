"""The controller runtime in-process: registry + watch hub + sandbox, no HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from central_api.controllers.client import Kind, LocalClient
from central_api.controllers.iaas import FINALIZER, iaas_reconcilers
from central_api.controllers.leader import LEASE_NAMESPACE, LEASES, LeaderElector
from central_api.controllers.manager import Manager
from central_api.controllers.metrics import ControllerMetrics
from central_api.controllers.reconcilers import all_reconcilers
from central_api.controllers.runner import InternalControllers
from central_api.controllers.runtime import Controller
from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.kinds.common import Condition
from central_api.kinds.iaas import IaasObject
from central_api.providers.base import Provider
from central_api.providers.keystone import KeystoneIdentity
from central_api.providers.sandbox import SandboxSettings, inject_fault, sandbox_provider
from central_api.registry.resources import ListOptions, Resources, WriteOptions
from central_api.registry.watch import WatchHub
from central_api.store.sqlite import SqliteStore

NETWORKS = Kind("iaas.scs.community", "v1alpha1", "networks")
SUBNETS = Kind("iaas.scs.community", "v1alpha1", "subnets")


def network(name: str) -> dict[str, Any]:
    return {"apiVersion": "iaas.scs.community/v1alpha1", "kind": "Network",
            "metadata": {"name": name, "namespace": "default"}, "spec": {}}


def subnet(name: str, net: str) -> dict[str, Any]:
    return {"apiVersion": "iaas.scs.community/v1alpha1", "kind": "Subnet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"networkRef": {"name": net}, "cidr": "10.1.0.0/24"}}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def with_controllers(tmp_path: Path,
                     scenario: Callable[[LocalClient, SqliteStore], Awaitable[None]],
                     controllers: Callable[[LocalClient, Provider],
                                           Coroutine[Any, Any, None]] | None = None) -> None:
    """Run ``scenario`` against a registry with controllers on the sandbox: by default the
    Manager with every IaaS reconciler, or what ``controllers`` returns."""
    async def main() -> None:
        store = SqliteStore(tmp_path / "state.db")
        resources = Resources(store, Catalog(builtin_kinds()))
        namespaces = resources.catalog.require("", "v1", "namespaces")
        for name in ("default", LEASE_NAMESPACE):
            resources.create(namespaces, "", {"metadata": {"name": name}}, WriteOptions())
        hub = WatchHub(store)
        hub.start()
        client = LocalClient(resources, hub)
        provider = sandbox_provider(store, SandboxSettings(speed=0))
        run = controllers(client, provider) if controllers else Manager(
            client, iaas_reconcilers(client, provider), resync_seconds=1).run()
        task = asyncio.create_task(run)
        try:
            await scenario(client, store)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await hub.stop()
            store.close()

    asyncio.run(main())


def condition(obj: dict[str, Any] | None, type_: str) -> Condition | None:
    """The condition as the reconcilers see it: through the kind's declared type."""
    return IaasObject.model_validate(obj).status.condition(type_) if obj else None


async def ready(client: LocalClient, kind: Kind, name: str) -> bool:
    found = condition(await client.get(kind, "default", name), "Ready")
    return found is not None and found.status == "True"


def test_declared_objects_become_ready_with_finalizer_and_backend_id(tmp_path: Path) -> None:
    async def scenario(client: LocalClient, store: SqliteStore) -> None:
        await client.create(NETWORKS, network("net"))
        await client.create(SUBNETS, subnet("sub", "net"))
        await eventually(lambda: ready(client, SUBNETS, "sub"))
        obj = await client.get(SUBNETS, "default", "sub")
        assert obj is not None
        assert FINALIZER in obj["metadata"]["finalizers"]
        assert obj["status"]["backendID"] and obj["status"]["networkID"]
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]

    with_controllers(tmp_path, scenario)


def test_a_missing_reference_is_reported_then_resolved(tmp_path: Path) -> None:
    async def scenario(client: LocalClient, store: SqliteStore) -> None:
        await client.create(SUBNETS, subnet("sub", "later"))

        async def waiting() -> bool:
            found = condition(await client.get(SUBNETS, "default", "sub"),
                              "ReferencesResolved")
            return found is not None and found.reason == "ReferenceNotFound"

        await eventually(waiting)
        await client.create(NETWORKS, network("later"))
        await eventually(lambda: ready(client, SUBNETS, "sub"))

    with_controllers(tmp_path, scenario)


def test_provider_errors_are_retried_until_the_object_converges(tmp_path: Path) -> None:
    async def scenario(client: LocalClient, store: SqliteStore) -> None:
        inject_fault(store, "flaky", kind="Network", operation="create",
                     error="BackendUnavailable", times=2)
        await client.create(NETWORKS, network("net"))
        await eventually(lambda: ready(client, NETWORKS, "net"))

    with_controllers(tmp_path, scenario)


def test_deleting_removes_the_backend_before_the_object(tmp_path: Path) -> None:
    async def scenario(client: LocalClient, store: SqliteStore) -> None:
        await client.create(NETWORKS, network("net"))
        await eventually(lambda: ready(client, NETWORKS, "net"))
        await client.delete(NETWORKS, "default", "net")

        async def gone() -> bool:
            return await client.get(NETWORKS, "default", "net") is None

        await eventually(gone)
        assert store.list("sandbox/networks").items == []

    with_controllers(tmp_path, scenario)


def test_only_one_of_two_candidates_holds_the_lease(tmp_path: Path) -> None:
    async def scenario(client: LocalClient, store: SqliteStore) -> None:
        a = LeaderElector(client, "test-lease", "a", lease_seconds=2, retry=0.1)
        b = LeaderElector(client, "test-lease", "b", lease_seconds=2, retry=0.1)
        stop = asyncio.Event()

        async def lead() -> None:
            await stop.wait()

        tasks = [asyncio.create_task(a.run(lead)), asyncio.create_task(b.run(lead))]
        await eventually(lambda: _async(a.leading or b.leading))
        await asyncio.sleep(0.5)
        assert a.leading != b.leading
        lease = await client.get(LEASES, LEASE_NAMESPACE, "test-lease")
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == ("a" if a.leading else "b")
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    with_controllers(tmp_path, scenario)


async def _async(value: bool) -> bool:
    return value


class CountingReconciler:
    """Wraps a reconciler and counts its passes (the runtime under test decides them)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.kind, self.finalizer = inner, inner.kind, inner.finalizer
        self.model = inner.model
        self.passes = 0

    async def reconcile(self, obj: IaasObject) -> Any:
        self.passes += 1
        return await self.inner.reconcile(obj)

    async def finalize(self, obj: IaasObject) -> bool:
        return bool(await self.inner.finalize(obj))


def test_own_status_and_finalizer_writes_trigger_no_extra_pass(tmp_path: Path) -> None:
    counted: list[CountingReconciler] = []

    def networks_only(client: LocalClient, provider: Provider) -> Coroutine[Any, Any, None]:
        inner = next(r for r in iaas_reconcilers(client, provider) if r.kind == NETWORKS)
        counted.append(CountingReconciler(inner))
        return Controller(client, counted[0], ControllerMetrics(), resync_seconds=3600).run()

    async def scenario(client: LocalClient, store: SqliteStore) -> None:
        counting = counted[0]
        await client.create(NETWORKS, network("net"))
        await eventually(lambda: ready(client, NETWORKS, "net"))
        await asyncio.sleep(0.5)
        settled = counting.passes
        assert settled <= 2, f"{settled} passes for one create (own writes re-queued it)"

        current = await client.get(NETWORKS, "default", "net")
        assert current is not None
        current["status"]["conditions"][0]["message"] = "someone else's status write"
        await client.update_status(NETWORKS, current)
        await asyncio.sleep(0.5)
        assert counting.passes == settled, "a status-only change queued a pass"

        labelled = await client.get(NETWORKS, "default", "net")
        assert labelled is not None
        labelled["metadata"]["labels"] = {"team": "a"}
        await client.update(NETWORKS, labelled)
        await eventually(_more_than(counting, settled))

    with_controllers(tmp_path, scenario, networks_only)


def _more_than(counting: CountingReconciler, passes: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return counting.passes > passes
    return check


def test_only_the_lease_holder_runs_tenant_access_and_a_successor_takes_over(
        tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteStore(tmp_path / "state.db")
        resources = Resources(store, Catalog(builtin_kinds()))
        namespaces = resources.catalog.require("", "v1", "namespaces")
        tenants = resources.catalog.require("tenancy.scs.community", "v1alpha1", "tenants")
        bindings = resources.catalog.require("rbac.authorization.k8s.io", "v1", "rolebindings")
        resources.create(namespaces, "", {"metadata": {"name": LEASE_NAMESPACE}}, WriteOptions())
        hub = WatchHub(store)
        hub.start()
        first, second = InternalControllers(resources, hub), InternalControllers(resources, hub)

        def onboard(name: str) -> None:
            resources.create(tenants, "", {"metadata": {"name": name}, "spec": {
                "displayName": name, "admins": [f"admin@{name}.example"]}}, WriteOptions())
            resources.create(namespaces, "", {"metadata": {"name": name, "labels": {
                "tenancy.scs.community/tenant": name}}}, WriteOptions())

        async def bound(name: str) -> bool:
            return any(b["metadata"]["name"] == "scs:tenant-admins" for b in
                       resources.list(bindings, name, ListOptions())["items"])

        try:
            await first.start()
            await eventually(_leading(first))
            await second.start()
            onboard("acme")
            await eventually(lambda: bound("acme"))
            assert not second.elector.leading

            await first.stop()          # crashed leader: its lease runs out (8 s)
            onboard("globex")
            await asyncio.sleep(2)
            assert not await bound("globex"), "a replica acted without the lease"
            await eventually(_leading(second), timeout=15)
            await eventually(lambda: bound("globex"), timeout=10)
        finally:
            await second.stop()
            await hub.stop()
            store.close()

    asyncio.run(main())


def _leading(runner: InternalControllers) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return runner.elector.leading
    return check


def test_identity_reconcilers_resync_on_their_own_longer_schedule(tmp_path: Path) -> None:
    """A steady-state pass over a tenant costs a dozen Keystone requests; the IaaS resync
    interval for thousands of tenants would flood Keystone."""
    store = SqliteStore(tmp_path / "state.db")
    try:
        client = LocalClient(Resources(store, Catalog(builtin_kinds())), WatchHub(store))
        identity = KeystoneIdentity({"auth_url": "https://keystone.invalid/v3"})
        reconcilers = all_reconcilers(client, provider=sandbox_provider(store),
                                      identity=identity, identity_resync_seconds=600,
                                      serves_iam=True)
        resyncs = {r.kind.plural: Controller(client, r, ControllerMetrics(),
                                             resync_seconds=30).resync_seconds
                   for r in reconcilers}
    finally:
        store.close()
    assert resyncs["networks"] == resyncs["servers"] == 30
    assert resyncs["tenants"] == resyncs["users"] == resyncs["roleassignments"] == 600
