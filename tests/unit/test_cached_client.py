"""Controllers in-process read through the shared informers: the real SQLite store, registry,
watch hub and sandbox provider, no HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from central_api.controllers import client as client_module
from central_api.controllers.client import ClientListerWatcher, Kind, LocalClient
from central_api.controllers.iaas import iaas_reconcilers
from central_api.controllers.metrics import ControllerMetrics
from central_api.controllers.runtime import Controller
from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.kinds.iaas import IaasObject
from central_api.providers.sandbox import SandboxSettings, sandbox_provider
from central_api.registry.informers import Informer, Informers
from central_api.registry.resources import Resources, WriteOptions
from central_api.registry.watch import WatchHub
from central_api.store.sqlite import SqliteStore
from tests.unit.test_controller_runtime import CountingReconciler

NETWORKS = Kind("iaas.scs.community", "v1alpha1", "networks")
NETWORKS_RESOURCE = "iaas.scs.community/networks"


def network(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "iaas.scs.community/v1alpha1", "kind": "Network",
            "metadata": {"name": name, "namespace": "default", "labels": labels}, "spec": {}}


class Process:
    """One process's registry, watch hub and shared informers, and a client over them."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.resources = Resources(store, Catalog(builtin_kinds()))
        namespaces = self.resources.catalog.require("", "v1", "namespaces")
        self.resources.create(namespaces, "", {"metadata": {"name": "default"}},
                              WriteOptions())
        self.networks = self.resources.catalog.require("iaas.scs.community", "v1alpha1",
                                                       "networks")
        self.hub = WatchHub(store)
        self.informers = Informers(self.resources.catalog)
        self.client = LocalClient(self.resources, self.hub, self.informers)

    async def synced_informer(self) -> Informer:
        informer = self.client.informer(NETWORKS)
        await self.informers.wait_synced(5)
        return informer


def run(tmp_path: Path, scenario: Callable[[Process], Awaitable[None]]) -> None:
    async def main() -> None:
        # NORMAL: commits do not wait for a disk sync, so the client writes on the loop and
        # its informer has not seen a write when the write returns (what these tests need).
        process = Process(SqliteStore(tmp_path / "state.db", synchronous="NORMAL"))
        process.hub.start()
        process.informers.start(process.hub)
        try:
            await scenario(process)
        finally:
            # Let the hub take the last write first: on Python 3.11 a wake-up arriving with
            # the cancellation makes WatchHub.stop wait forever (asyncio.wait_for keeps the
            # result and drops the cancel).
            await asyncio.sleep(0.05)
            await process.informers.stop()
            await process.hub.stop()
            process.store.close()

    asyncio.run(main())


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def test_a_read_right_after_the_clients_own_write_sees_that_write(tmp_path: Path) -> None:
    async def scenario(process: Process) -> None:
        informer = await process.synced_informer()
        client = process.client
        created = await client.create(NETWORKS, network("net"))
        assert informer.get("default", "net") is None  # the event is not in yet
        found = await client.get(NETWORKS, "default", "net")
        assert found is not None
        assert found["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

        found["status"] = {"backendID": "b-1"}
        written = await client.update_status(NETWORKS, found)
        again = await client.get(NETWORKS, "default", "net")
        assert again is not None and again["status"]["backendID"] == "b-1"
        items, revision = await client.list(NETWORKS, "default")
        assert [o["metadata"]["resourceVersion"] for o in items] == \
            [written["metadata"]["resourceVersion"]]
        assert int(revision) >= int(written["metadata"]["resourceVersion"])

        await client.delete(NETWORKS, "default", "net")
        assert await client.get(NETWORKS, "default", "net") is None
        assert informer.get("default", "net") is None, "answered from the cache"

    run(tmp_path, scenario)


def test_a_cache_that_falls_behind_the_own_write_is_bypassed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "READ_AFTER_WRITE_WAIT", 0.05)

    async def scenario(process: Process) -> None:
        informer = await process.synced_informer()
        await informer.stop()  # the cache stays where it is
        created = await process.client.create(NETWORKS, network("net"))
        found = await process.client.get(NETWORKS, "default", "net")
        assert found is not None
        assert found["metadata"]["uid"] == created["metadata"]["uid"]
        assert informer.get("default", "net") is None

    run(tmp_path, scenario)


def test_a_read_waits_only_for_the_clients_own_write_of_that_object(tmp_path: Path) -> None:
    """Four workers write status concurrently: a read must not wait for the others' writes."""
    async def scenario(process: Process) -> None:
        informer = await process.synced_informer()
        await process.client.create(NETWORKS, network("settled"))
        await process.client.get(NETWORKS, "default", "settled")
        await informer.stop()  # the cache stays where it is
        await process.client.create(NETWORKS, network("fresh"))

        started = time.monotonic()
        assert await process.client.get(NETWORKS, "default", "settled") is not None
        assert time.monotonic() - started < client_module.READ_AFTER_WRITE_WAIT / 2

    run(tmp_path, scenario)


def test_a_reader_changing_its_object_leaves_the_cache_as_it_was(tmp_path: Path) -> None:
    async def scenario(process: Process) -> None:
        informer = await process.synced_informer()
        created = await process.client.create(NETWORKS, network("net", team="a"))
        mine = await process.client.get(NETWORKS, "default", "net")
        assert mine is not None
        mine["metadata"]["labels"]["team"] = "changed"
        mine["spec"]["mtu"] = 1
        (listed,), _ = await process.client.list(NETWORKS)
        listed["metadata"]["labels"].clear()

        cached = informer.get("default", "net")
        assert cached is not None
        assert cached["metadata"]["labels"] == {"team": "a"}
        assert cached["spec"] == created["spec"] and "mtu" not in cached["spec"]
        fresh = await process.client.get(NETWORKS, "default", "net")
        assert fresh is not None and fresh["metadata"]["labels"] == {"team": "a"}

    run(tmp_path, scenario)


def test_kinds_without_a_process_informer_are_read_from_the_store(tmp_path: Path) -> None:
    """Secrets are never cached: every user's Secrets would sit in every replica's memory."""
    secrets = Kind("", "v1", "secrets")

    async def scenario(process: Process) -> None:
        await process.client.create(secrets, {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "default"}, "data": {}})
        assert await process.client.get(secrets, "default", "s") is not None
        assert process.informers.lookup("core/secrets") is None

    run(tmp_path, scenario)


def test_the_controller_follows_the_shared_informer_and_not_its_own_status_writes(
        tmp_path: Path) -> None:
    async def scenario(process: Process) -> None:
        provider = sandbox_provider(process.store, SandboxSettings(speed=0))
        inner = next(r for r in iaas_reconcilers(process.client, provider)
                     if r.kind == NETWORKS)
        counting = CountingReconciler(inner)
        controller = Controller(process.client, counting, ControllerMetrics(),
                                resync_seconds=3600)
        task = asyncio.create_task(controller.run())
        try:
            await process.client.create(NETWORKS, network("net"))
            await eventually(lambda: _ready(process, "net"))
            assert process.hub.watchers == 1, "the controller opened a watch of its own"
            await asyncio.sleep(0.3)
            settled = counting.passes
            assert settled <= 2, f"{settled} passes for one create (own writes queued it)"

            stored = process.resources.get(process.networks, "default", "net")
            stored["metadata"]["labels"] = {"team": "b"}  # another writer, not the client
            process.resources.update(process.networks, "default", "net", stored,
                                     WriteOptions())
            await eventually(lambda: counting.passes > settled)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    run(tmp_path, scenario)


def _ready(process: Process, name: str) -> bool:
    found = process.informers.informer(NETWORKS_RESOURCE).get("default", name)
    if found is None:
        return False
    ready = IaasObject.model_validate(found).status.condition("Ready")
    return ready is not None and ready.status == "True"


def test_an_informer_over_a_clients_list_and_watch_follows_the_kind(tmp_path: Path) -> None:
    """What a controller in its own process (``scs controllers``) follows its kind with."""
    async def scenario(process: Process) -> None:
        await process.client.create(NETWORKS, network("listed"))
        informer = Informer("networks")
        informer.start(ClientListerWatcher(process.client, NETWORKS))
        try:
            await eventually(lambda: informer.get("default", "listed") is not None)
            await process.client.create(NETWORKS, network("watched"))
            await eventually(lambda: informer.get("default", "watched") is not None)
            await process.client.delete(NETWORKS, "default", "listed")
            await eventually(lambda: informer.get("default", "listed") is None)
        finally:
            await informer.stop()

    run(tmp_path, scenario)
