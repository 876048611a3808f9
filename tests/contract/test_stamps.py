"""Revision stamps, on SQLite and PostgreSQL: every revision records when it was written
(the test clock when set), stamps never decrease with the revision — across threads, two
store instances on one PostgreSQL database, clocks that step back and reopening — and
databases created before stamps existed are migrated at open (their old revisions: 0.0)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central_api.machinery import clock
from central_api.store.base import Event, Key, Store
from tests.contract.backends import Backend

R = "core/configmaps"
T0 = 1767261600.0
"""2026-01-01T10:00:00Z"""


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": data}


def key(name: str) -> Key:
    return Key(R, "default", name)


def all_events(store: Store) -> list[Event]:
    out: list[Event] = []
    revision = 0
    while batch := store.events_since(revision, limit=500):
        out += batch
        revision = batch[-1].revision
    return out


@pytest.fixture
def set_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    path = tmp_path / "clock"
    clock.set_clock_file(str(path), T0)
    monkeypatch.setenv(clock.ENV, str(path))
    yield lambda seconds: clock.set_clock_file(str(path), seconds)


def test_each_revision_is_stamped_with_the_clock_to_the_microsecond(
        store: Store, set_time: Any) -> None:
    set_time(T0)
    store.create(key("a"), cm("a"))
    set_time(T0 + 9000.123456)
    store.update(key("a"), cm("a", x="1"), None)
    set_time(T0 + 10800.000001)
    store.delete(key("a"))
    events = all_events(store)
    assert [(e.type, e.stamp) for e in events] == [
        ("ADDED", T0), ("MODIFIED", T0 + 9000.123456), ("DELETED", T0 + 10800.000001)]
    changes, _ = store.changes_since(R, "default", 0)
    assert [e.stamp for e in changes] == [e.stamp for e in events]


def test_stamps_never_decrease_when_the_clock_steps_back(store: Store, set_time: Any) -> None:
    set_time(T0 + 60)
    store.create(key("a"), cm("a"))
    set_time(T0)  # the clock stepped back a minute
    store.create(key("b"), cm("b"))
    set_time(T0 + 61)
    store.create(key("c"), cm("c"))
    assert [e.stamp for e in all_events(store)] == [T0 + 60, T0 + 60, T0 + 61]


def test_a_reopened_store_keeps_its_stamps_and_their_order(
        backend: Backend, set_time: Any) -> None:
    first = backend.open()
    set_time(T0 + 3600)
    first.create(key("a"), cm("a"))
    first.close()
    set_time(T0)  # earlier than the last stamp: the stored last stamp still wins
    second = backend.open()
    second.create(key("b"), cm("b"))
    assert [e.stamp for e in all_events(second)] == [T0 + 3600, T0 + 3600]
    second.close()


def test_concurrent_writers_get_stamps_that_never_decrease_with_the_revision(
        store: Store, backend: Backend) -> None:
    """Real time; several threads, and on PostgreSQL two store instances (two replicas)."""
    stores = [store] if backend.kind == "sqlite" else [store, backend.open()]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            target = stores[n % len(stores)]
            for i in range(40):
                target.create(key(f"w{n}-{i}"), cm(f"w{n}-{i}"))
                target.update(key(f"w{n}-{i}"), cm(f"w{n}-{i}", x="1"), None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for extra in stores[1:]:
        extra.close()
    assert errors == []
    events = all_events(store)
    assert len(events) == 6 * 40 * 2
    stamps = [e.stamp for e in events]
    assert all(s > 1.7e9 for s in stamps)
    assert stamps == sorted(stamps)


OLD_SCHEMA = {
    "sqlite": (
        "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL, "
        "compacted INTEGER NOT NULL)",
        "INSERT INTO meta (id, revision, compacted) VALUES (1, 2, 0)",
        "CREATE TABLE kv (revision INTEGER PRIMARY KEY, resource TEXT NOT NULL, namespace TEXT "
        "NOT NULL, name TEXT NOT NULL, event INTEGER NOT NULL, superseded INTEGER, "
        "value BLOB NOT NULL)",
    ),
    "postgres": (
        "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), revision BIGINT NOT NULL, "
        "compacted BIGINT NOT NULL)",
        "INSERT INTO meta (id, revision, compacted) VALUES (1, 2, 0)",
        'CREATE TABLE kv (revision BIGINT PRIMARY KEY, resource TEXT COLLATE "C" NOT NULL, '
        'namespace TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, '
        "event SMALLINT NOT NULL, superseded BIGINT, value BYTEA NOT NULL)",
    ),
}
"""The schema as it was before revision stamps (indexes left out: opening creates them)."""


def test_a_database_from_before_stamps_is_migrated_at_open(
        backend: Backend, set_time: Any) -> None:
    value = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"old",' \
            b'"namespace":"default","resourceVersion":"2"}}'
    for statement in OLD_SCHEMA[backend.kind]:
        backend.query(statement)
    blob = f"X'{value.hex()}'" if backend.kind == "sqlite" else f"'\\x{value.hex()}'::bytea"
    backend.query("INSERT INTO kv (revision, resource, namespace, name, event, value) "
                  f"VALUES (2, '{R}', 'default', 'old', 0, {blob})")
    store = backend.open()
    try:
        set_time(T0)
        store.create(key("new"), cm("new"))
        events = all_events(store)
        assert [(e.key.name, e.revision, e.stamp) for e in events] == [
            ("old", 2, 0.0), ("new", 3, T0)]
        assert store.get(key("old"))["metadata"]["name"] == "old"
    finally:
        store.close()
    backend.open().close()  # a second open finds everything migrated
