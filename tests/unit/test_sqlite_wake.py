"""The SQLite wake: a commit through another connection to the same file (as another worker
process makes it) calls this store's write listeners, which its own commits alone never do."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from central_api.store.base import Key
from central_api.store.sqlite import SqliteStore
from central_api.store.wake import SqliteWake

KEY = Key("core/configmaps", "default", "one")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SqliteStore, SqliteStore]]:
    path = tmp_path / "state.db"
    here, there = SqliteStore(path), SqliteStore(path)
    yield here, there
    here.close()
    there.close()


def test_a_commit_of_another_connection_wakes_the_listeners(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    here, there = stores
    woken = threading.Event()
    here.add_write_listener(woken.set)
    wake = SqliteWake(here, here.path).start()
    try:
        assert not woken.wait(0.05)  # nothing committed: nothing to wake for
        there.create(KEY, {"metadata": {"name": "one", "namespace": "default"}})
        assert woken.wait(5)
        assert [e.key for e in here.events_since(1)] == [KEY]
    finally:
        wake.stop()


def test_without_the_wake_no_listener_hears_another_connection(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    """Why the wake exists: listeners hear only their own store's commits."""
    here, there = stores
    woken = threading.Event()
    here.add_write_listener(woken.set)
    there.create(KEY, {"metadata": {"name": "one", "namespace": "default"}})
    assert not woken.wait(0.2)


def test_stop_ends_the_thread(stores: tuple[SqliteStore, SqliteStore]) -> None:
    wake = SqliteWake(stores[0], stores[0].path).start()
    wake.stop()
    assert not wake._thread.is_alive()
