"""The watch hub on the real SQLite store, where its reading of the event log can go wrong."""

from __future__ import annotations

import asyncio
from pathlib import Path

from central_api.registry.watch import WatchHub
from central_api.store.base import Key
from central_api.store.sqlite import SqliteStore

LEASES = "coordination.k8s.io/leases"


def lease(store: SqliteStore, name: str) -> None:
    store.create(Key(LEASES, "default", name), {"metadata": {"name": name,
                                                             "namespace": "default"}})


def test_history_compacted_before_the_hub_read_it_restarts_every_watch(
        tmp_path: Path) -> None:
    """Another replica compacts events this one never read (it was stopped meanwhile): its
    watches end so their clients list again, and the hub carries on with new events instead
    of failing on the lost history forever."""
    store = SqliteStore(tmp_path / "state.db")

    async def scenario() -> None:
        hub = WatchHub(store, poll_seconds=0.05)
        old = hub.subscribe(LEASES, None, hub.revision)
        for name in ("a", "b", "c"):
            lease(store, name)
            store.update(Key(LEASES, "default", name), {"metadata": {"name": name}}, None)
        store.compact(store.current_revision())
        hub.start()
        try:
            assert await asyncio.wait_for(old.queue.get(), 5) is None  # ended: list again
            assert hub.revision == store.current_revision()
            new = hub.subscribe(LEASES, None, hub.revision)
            lease(store, "d")
            event = await asyncio.wait_for(new.queue.get(), 5)
            assert event is not None and event.key.name == "d"
        finally:
            await hub.stop()

    try:
        asyncio.run(scenario())
    finally:
        store.close()
