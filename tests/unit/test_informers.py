"""Shared informers on the real SQLite store and watch hub: what their readers observe."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.registry import watch
from central_api.registry.informers import Handlers, Informers
from central_api.registry.resources import DeleteOptions, Resources, WriteOptions
from central_api.registry.watch import WatchHub
from central_api.store.base import Page
from central_api.store.sqlite import SqliteStore

LEASES = "coordination.k8s.io/leases"


class Recorder:
    """Handlers that write down what they are told, in order."""

    def __init__(self, name: str, log: list[tuple[str, ...]]) -> None:
        self.name = name
        self.log = log
        self.handlers = Handlers(
            on_add=lambda obj: log.append((name, "add", obj["metadata"]["name"],
                                           obj["spec"]["holderIdentity"])),
            on_update=lambda old, new: log.append((name, "update", new["metadata"]["name"],
                                                   new["spec"]["holderIdentity"])),
            on_delete=lambda obj: log.append((name, "delete", obj["metadata"]["name"])))


class Cluster:
    """A registry on SQLite with its watch hub and an informer factory, for one test."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.resources = Resources(store, Catalog(builtin_kinds()))
        self.leases = self.resources.catalog.require("coordination.k8s.io", "v1", "leases")
        namespaces = self.resources.catalog.require("", "v1", "namespaces")
        for name in ("a", "b"):
            self.resources.create(namespaces, "", {"metadata": {"name": name}}, WriteOptions())
        self.hub = WatchHub(store, poll_seconds=0.05)
        self.informers = Informers(self.resources.catalog)

    def put(self, namespace: str, name: str, value: str) -> None:
        body = {"metadata": {"name": name, "namespace": namespace},
                "spec": {"holderIdentity": value}}
        try:
            current = self.resources.get(self.leases, namespace, name)
        except Exception:
            self.resources.create(self.leases, namespace, body, WriteOptions())
            return
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.resources.update(self.leases, namespace, name, body, WriteOptions())

    def delete(self, namespace: str, name: str) -> None:
        self.resources.delete(self.leases, namespace, name, DeleteOptions())


def run(store: SqliteStore, scenario: Callable[[Cluster], Awaitable[None]]) -> None:
    async def main() -> None:
        cluster = Cluster(store)
        cluster.hub.start()
        try:
            await scenario(cluster)
        finally:
            await cluster.informers.stop()
            await cluster.hub.stop()
            store.close()

    asyncio.run(main())


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def replayed(log: list[tuple[str, ...]]) -> dict[str, str]:
    """What a consumer that follows only the handlers believes exists (name → value)."""
    seen: dict[str, str] = {}
    for _, change, name, *value in log:
        if change == "delete":
            assert seen.pop(name, None) is not None, f"deleted {name} was never added"
        else:
            assert (name in seen) == (change == "update"), f"{change} of {name} out of order"
            seen[name] = value[0] if value else "?"
    return seen


def names(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects)


def test_get_and_list_answer_by_namespace_from_the_list_and_the_watch(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.put("a", "listed", "1")
        informer = cluster.informers.informer(LEASES)
        cluster.informers.start(cluster.hub)
        await cluster.informers.wait_synced(5)
        cluster.put("b", "watched", "1")
        await eventually(lambda: informer.get("b", "watched") is not None)

        assert names(informer.list("a")) == ["listed"]
        assert names(informer.list("b")) == ["watched"]
        assert names(informer.list()) == ["listed", "watched"]
        assert informer.list("c") == []
        found = informer.get("a", "listed")
        assert found is not None
        assert (found["apiVersion"], found["kind"]) == ("coordination.k8s.io/v1", "Lease")
        assert informer.get("b", "listed") is None

        cluster.delete("a", "listed")
        await eventually(lambda: informer.get("a", "listed") is None)
        assert informer.list("a") == []

    run(SqliteStore(tmp_path / "state.db"), scenario)


def test_handlers_hear_each_change_in_revision_order_in_the_order_they_were_added(
        tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        log: list[tuple[str, ...]] = []
        informer = cluster.informers.informer(LEASES)
        informer.add_handlers(Recorder("first", log).handlers)
        informer.add_handlers(Recorder("second", log).handlers)
        cluster.informers.start(cluster.hub)
        await cluster.informers.wait_synced(5)

        cluster.put("a", "x", "1")
        cluster.put("a", "x", "2")
        cluster.delete("a", "x")
        await eventually(lambda: len(log) == 6)

        assert log == [("first", "add", "x", "1"), ("second", "add", "x", "1"),
                       ("first", "update", "x", "2"), ("second", "update", "x", "2"),
                       ("first", "delete", "x"), ("second", "delete", "x")]

    run(SqliteStore(tmp_path / "state.db"), scenario)


def test_a_handler_added_late_is_first_told_of_every_current_object(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.put("a", "x", "1")
        cluster.put("b", "y", "1")
        informer = cluster.informers.informer(LEASES)
        cluster.informers.start(cluster.hub)
        await cluster.informers.wait_synced(5)
        log: list[tuple[str, ...]] = []

        informer.add_handlers(Recorder("late", log).handlers)

        assert sorted(log) == [("late", "add", "x", "1"), ("late", "add", "y", "1")]

    run(SqliteStore(tmp_path / "state.db"), scenario)


class CompactedAfterFirstList(SqliteStore):
    """Another replica writes and compacts the store right after this process's first list,
    so the watch from the list's revision is already gone (410 for any other watcher)."""

    cluster: Cluster | None = None

    def list(self, resource: str, *args: Any, **kwargs: Any) -> Page:
        page = super().list(resource, *args, **kwargs)
        cluster, self.cluster = self.cluster, None
        if cluster is not None and resource == LEASES:
            cluster.put("a", "x", "2")
            cluster.put("b", "late", "1")
            cluster.hub.pump()  # the hub has read the changes; this informer has not
            self.compact(self.current_revision())
        return page


def test_the_informer_lists_again_when_its_revision_was_compacted(tmp_path: Path) -> None:
    store = CompactedAfterFirstList(tmp_path / "state.db")

    async def scenario(cluster: Cluster) -> None:
        cluster.put("a", "x", "1")
        log: list[tuple[str, ...]] = []
        informer = cluster.informers.informer(LEASES)
        informer.add_handlers(Recorder("r", log).handlers)
        store.cluster = cluster
        cluster.informers.start(cluster.hub)

        await eventually(lambda: informer.get("b", "late") is not None)

        assert log == [("r", "add", "x", "1"), ("r", "update", "x", "2"),
                       ("r", "add", "late", "1")]
        found = informer.get("a", "x")
        assert found is not None and found["spec"]["holderIdentity"] == "2"
        assert informer.revision == store.current_revision()

    run(store, scenario)


def test_the_informer_lists_again_when_its_watch_falls_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.put("a", "gone", "1")
        cluster.put("a", "kept", "1")
        log: list[tuple[str, ...]] = []
        informer = cluster.informers.informer(LEASES)
        informer.add_handlers(Recorder("r", log).handlers)
        monkeypatch.setattr(watch, "QUEUE_LIMIT", 2)  # the informer's first watch is short
        cluster.informers.start(cluster.hub)
        await cluster.informers.wait_synced(5)
        await asyncio.sleep(0.05)  # the informer subscribes
        monkeypatch.undo()

        # No await in between: the hub queues every change at once and the watch overflows.
        cluster.delete("a", "gone")
        for value in "234":
            cluster.put("a", "kept", value)
        cluster.put("b", "new", "1")
        cluster.hub.pump()
        await eventually(lambda: informer.get("b", "new") is not None)

        assert ("r", "update", "kept", "3") not in log, "the watch did not fall behind"
        assert replayed(log) == {"kept": "4", "new": "1"}
        assert names(informer.list()) == ["kept", "new"]

    run(SqliteStore(tmp_path / "state.db"), scenario)


def test_wait_for_returns_once_the_copy_includes_a_write(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        informer = cluster.informers.informer(LEASES)
        cluster.informers.start(cluster.hub)
        await cluster.informers.wait_synced(5)
        cluster.put("a", "x", "1")
        written = cluster.store.current_revision()

        assert await informer.wait_for(written, timeout=5)
        assert informer.get("a", "x") is not None
        assert not await informer.wait_for(written + 100, timeout=0.05)

    run(SqliteStore(tmp_path / "state.db"), scenario)


def test_only_requested_resources_are_cached(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.informers.informer(LEASES)
        cluster.informers.start(cluster.hub)

        assert cluster.informers.lookup("core/secrets") is None
        assert cluster.informers.lookup(LEASES) is cluster.informers.informer(LEASES)

    run(SqliteStore(tmp_path / "state.db"), scenario)
