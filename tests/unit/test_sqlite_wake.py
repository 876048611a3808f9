"""The peer wake: a commit of one worker's store calls the write listeners of the other
workers' stores on the same SQLite file (which they never hear otherwise), once, without
echoing back."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from central_api.store.base import Key
from central_api.store.sqlite import SqliteStore
from central_api.store.wake import PeerWake

KEY = Key("core/configmaps", "default", "one")
VALUE = {"metadata": {"name": "one", "namespace": "default"}}


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.event.set()


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SqliteStore, SqliteStore]]:
    path = tmp_path / "state.db"
    here, there = SqliteStore(path), SqliteStore(path)
    yield here, there
    here.close()
    there.close()


def test_a_commit_of_another_worker_wakes_the_listeners_once(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    here, there = stores
    group = secrets.token_hex(4)
    heard_here, heard_there = Calls(), Calls()
    here.add_write_listener(heard_here)
    there.add_write_listener(heard_there)
    wakes = [PeerWake(here, group, 0, 2).start(), PeerWake(there, group, 1, 2).start()]
    try:
        there.create(KEY, VALUE)
        assert heard_here.event.wait(5)
        assert [e.key for e in here.events_since(1)] == [KEY]
        assert not threading.Event().wait(0.2) and heard_there.count == 1  # no echo back
        assert heard_here.count == 1
    finally:
        for wake in wakes:
            wake.stop()


def test_without_the_wake_no_listener_hears_another_worker(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    """Why the wake exists: listeners hear only their own store's commits."""
    here, there = stores
    heard = Calls()
    here.add_write_listener(heard)
    there.create(KEY, VALUE)
    assert not heard.event.wait(0.2)


def test_a_worker_that_is_down_is_skipped(stores: tuple[SqliteStore, SqliteStore]) -> None:
    """Its index is not bound (not started yet, or restarting): the commit goes on."""
    here, _ = stores
    wake = PeerWake(here, secrets.token_hex(4), 0, 3).start()
    try:
        here.create(KEY, VALUE)
    finally:
        wake.stop()
    assert not wake._thread.is_alive()
