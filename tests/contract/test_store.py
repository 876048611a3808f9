"""The store contract, run against every back end (SQLite and PostgreSQL).

Both back ends must be interchangeable behind :class:`central_api.store.base.Store`, so every
behaviour the API server relies on (revisions, optimistic concurrency, consistent pagination,
history, watch events, compaction, encryption at rest, concurrency) is one test here,
parametrised over both. PostgreSQL tests get a fresh database per test on one shared server
(marked ``slow``); PostgreSQL-only behaviours (cross-process wake-ups, reconnects, crash
durability) follow at the end.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from central_api.store import open_store
from central_api.store.base import (
    Compacted,
    Key,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    Store,
    StoreUnavailable,
)
from central_api.store.postgres import PostgresStore, translate
from central_api.store.sqlite import SqliteStore
from tests.contract.backends import Backend
from tests.pg import PostgresServer

R = "core/configmaps"


def cm(name: str, namespace: str = "default", **data: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def key(name: str, namespace: str = "default", resource: str = R) -> Key:
    return Key(resource, namespace, name)


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def names(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in items]


# -- writes ----------------------------------------------------------------------------------
def test_create_sets_resource_version_to_a_new_monotonic_revision(store: Store) -> None:
    start = store.current_revision()
    a = store.create(key("a"), cm("a", x="1"))
    b = store.create(key("b"), cm("b"))
    assert start < rv(a) < rv(b)
    assert rv(b) == rv(a) + 1
    assert store.current_revision() == rv(b)
    assert store.get(key("a")) == a
    assert store.get(key("a"))["data"] == {"x": "1"}


def test_create_of_an_existing_key_raises_key_exists(store: Store) -> None:
    store.create(key("a"), cm("a"))
    before = store.current_revision()
    with pytest.raises(KeyExists):
        store.create(key("a"), cm("a", x="again"))
    assert store.current_revision() == before  # a failed write takes no revision
    # the same name in another namespace or resource is a different key
    store.create(key("a", "other"), cm("a", "other"))
    store.create(key("a", resource="core/secrets"), cm("a"))
    # after a delete the name is free again
    store.delete(key("a"))
    assert rv(store.create(key("a"), cm("a", x="new"))) == store.current_revision()


def test_update_with_a_stale_revision_raises_revision_conflict(store: Store) -> None:
    first = store.create(key("a"), cm("a", v="1"))
    second = store.update(key("a"), cm("a", v="2"), expected_revision=rv(first))
    assert rv(second) > rv(first)
    with pytest.raises(RevisionConflict):
        store.update(key("a"), cm("a", v="stale"), expected_revision=rv(first))
    with pytest.raises(RevisionConflict):
        store.delete(key("a"), expected_revision=rv(first))
    assert store.get(key("a"))["data"] == {"v": "2"}
    # without an expected revision the last writer wins
    third = store.update(key("a"), cm("a", v="3"), expected_revision=None)
    assert store.get(key("a")) == third


def test_update_and_delete_of_a_missing_key_raise_key_not_found(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        store.update(key("missing"), cm("missing"), expected_revision=None)
    with pytest.raises(KeyNotFound):
        store.delete(key("missing"))
    with pytest.raises(KeyNotFound):
        store.get(key("missing"))
    store.create(key("gone"), cm("gone"))
    store.delete(key("gone"))
    with pytest.raises(KeyNotFound):
        store.update(key("gone"), cm("gone"), expected_revision=None)
    with pytest.raises(KeyNotFound):
        store.delete(key("gone"))


def test_delete_returns_the_last_state_with_the_deletion_revision(store: Store) -> None:
    created = store.create(key("a"), cm("a", v="1"))
    updated = store.update(key("a"), cm("a", v="2"), expected_revision=rv(created))
    deleted = store.delete(key("a"), expected_revision=rv(updated))
    assert deleted["data"] == {"v": "2"}
    assert rv(deleted) == rv(updated) + 1 == store.current_revision()
    with pytest.raises(KeyNotFound):
        store.get(key("a"))
    assert store.list(R).items == []


# -- reads -----------------------------------------------------------------------------------
def test_list_is_ordered_by_namespace_and_name_and_filters(store: Store) -> None:
    # tricky orderings: case, punctuation, prefixes, non-ASCII (bytewise / code point order)
    keys = [("ns2", "b"), ("ns1", "z"), ("", "cluster"), ("ns1", "a-b"), ("ns1", "a.b"),
            ("ns1", "aB"), ("ns1", "ab"), ("ns1", "B"), ("ns1", "a"), ("ns10", "a"),
            ("ns1", "ä"), ("ns1", "a0")]
    for ns, name in keys:
        store.create(key(name, ns), cm(name, ns))
    store.create(key("a", "ns1", "core/secrets"), cm("a", "ns1"))
    page = store.list(R)
    assert names(page.items) == sorted(keys)
    assert page.revision == store.current_revision()
    assert page.continue_after is None
    assert names(store.list(R, "ns1").items) == sorted(k for k in keys if k[0] == "ns1")
    assert names(store.list(R, "").items) == [("", "cluster")]
    assert store.list(R, "nope").items == []
    assert names(store.list(R, name="a").items) == [("ns1", "a"), ("ns10", "a")]
    assert names(store.list(R, "ns1", name="a").items) == [("ns1", "a")]
    assert names(store.list("core/secrets").items) == [("ns1", "a")]


def test_pagination_sees_one_snapshot_despite_writes_between_pages(store: Store) -> None:
    for i in range(10):
        store.create(key(f"n{i:02}"), cm(f"n{i:02}", v="old"))
    expected = store.list(R).items
    page = store.list(R, limit=3)
    snapshot = page.revision
    assert names(page.items) == [("default", "n00"), ("default", "n01"), ("default", "n02")]
    assert page.continue_after == ("default", "n02")
    seen = list(page.items)
    # writes between the pages: insert inside the remaining range, update, delete, append
    store.create(key("n025"), cm("n025"))
    store.update(key("n05"), cm("n05", v="new"), expected_revision=None)
    store.delete(key("n07"))
    store.create(key("n99"), cm("n99"))
    store.update(key("n00"), cm("n00", v="new"), expected_revision=None)
    while page.continue_after is not None:
        page = store.list(R, limit=3, after=page.continue_after, revision=page.revision)
        assert page.revision == snapshot
        seen += page.items
    assert seen == expected
    assert all(rv(o) <= snapshot for o in seen)
    # iter_list does the same batching
    assert list(store.iter_list(R, None, snapshot, None, 4)) == expected
    latest = names(store.list(R).items)
    assert ("default", "n025") in latest and ("default", "n07") not in latest


def test_list_at_an_old_revision_returns_the_old_state(store: Store) -> None:
    a = store.create(key("a"), cm("a", v="1"))
    b = store.create(key("b"), cm("b", v="1"))
    at_b = store.current_revision()
    store.update(key("a"), cm("a", v="2"), expected_revision=None)
    store.delete(key("b"))
    store.create(key("c"), cm("c"))
    old = store.list(R, revision=at_b)
    assert old.revision == at_b
    assert old.items == [a, b]
    assert store.list(R, revision=rv(a)).items == [a]
    assert [o["data"] for o in store.list(R).items] == [{"v": "2"}, {}]
    # a revision in the future reads the latest state
    assert store.list(R, revision=10**9).revision == store.current_revision()


def test_events_since_returns_added_modified_deleted_in_revision_order(store: Store) -> None:
    start = store.current_revision()
    store.create(key("a"), cm("a", v="1"))
    store.update(key("a"), cm("a", v="2"), expected_revision=None)
    store.create(key("s", resource="core/secrets"), cm("s"))
    store.delete(key("a"))
    events = store.events_since(start)
    assert [(e.type, e.key) for e in events] == [
        ("ADDED", key("a")), ("MODIFIED", key("a")), ("ADDED", key("s", resource="core/secrets")),
        ("DELETED", key("a"))]
    assert [e.revision for e in events] == list(range(start + 1, start + 5))
    assert [e.object["data"] for e in events] == [{"v": "1"}, {"v": "2"}, {}, {"v": "2"}]
    assert all(rv(e.object) == e.revision for e in events)
    assert store.events_since(start, limit=2) == events[:2]
    assert store.events_since(events[1].revision) == events[2:]
    assert store.events_since(store.current_revision()) == []


def test_compaction_drops_superseded_versions_and_old_revisions(store: Store) -> None:
    a = store.create(key("a"), cm("a", v="1"))
    a2 = store.update(key("a"), cm("a", v="2"), expected_revision=None)
    store.create(key("b"), cm("b"))
    deleted = store.delete(key("b"))
    target = rv(deleted)
    c = store.create(key("c"), cm("c"))
    # removed: a's first version, b's version and b's tombstone (all superseded by target)
    assert store.compact(target) == 3
    assert store.compacted_revision() == target
    assert store.compact(target) == 0
    assert store.compact(target - 1) == 0
    with pytest.raises(Compacted) as info:
        store.list(R, revision=rv(a))
    assert (info.value.requested, info.value.compacted) == (rv(a), target)
    with pytest.raises(Compacted):
        store.events_since(rv(a))
    assert store.list(R, revision=target).items == [a2]
    assert [(e.type, e.object) for e in store.events_since(target)] == [("ADDED", c)]
    assert store.list(R).items == [a2, c]
    assert store.get(key("a")) == a2
    # compacting everything keeps the live objects
    store.compact(store.current_revision())
    assert store.list(R).items == [a2, c]
    assert store.compact(10**9) == 0  # clamped to the current revision: nothing left


def test_transformer_encodes_stored_bytes_and_decodes_on_read(
        store: Store, backend: Backend) -> None:
    def xor(raw: bytes) -> bytes:
        return bytes(b ^ 0x5A for b in raw)

    store.set_transformer("core/secrets", (xor, lambda raw: raw[::-1]))
    store.set_transformer("core/secrets", (lambda raw: xor(raw)[::-1], lambda raw: xor(raw[::-1])))
    start = store.current_revision()
    secret = store.create(key("s", resource="core/secrets"), cm("s", password="hunter2-plain"))
    store.update(key("s", resource="core/secrets"), cm("s", password="hunter3-plain"),
                 expected_revision=rv(secret))
    store.create(key("c"), cm("c", note="visible-plain"))
    raw = backend.raw_values()
    assert not any(b"hunter" in value for value in raw)
    assert any(b"visible-plain" in value for value in raw)  # untransformed resources are not
    assert store.get(key("s", resource="core/secrets"))["data"] == {"password": "hunter3-plain"}
    assert store.list("core/secrets").items[0]["data"] == {"password": "hunter3-plain"}
    assert store.list("core/secrets", revision=rv(secret)).items == [secret]
    assert [e.object["data"] for e in store.events_since(start)] == [
        {"password": "hunter2-plain"}, {"password": "hunter3-plain"}, {"note": "visible-plain"}]
    deleted = store.delete(key("s", resource="core/secrets"))
    assert deleted["data"] == {"password": "hunter3-plain"}


# -- concurrency -----------------------------------------------------------------------------
def test_concurrent_writers_get_unique_gap_free_revisions_and_lose_no_update(
        store: Store, backend: Backend) -> None:
    """8 threads increment one counter with optimistic concurrency and create objects. For
    PostgreSQL half of them use a second store instance (what a second server process is)."""
    threads, increments, creates = 8, 20, 5
    stores = [store] if backend.kind == "sqlite" else [store, backend.open()]
    created = store.create(key("counter"), cm("counter", n="0"))
    revisions: list[int] = []
    conflicts = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(index: int) -> None:
        nonlocal conflicts
        mine = stores[index % len(stores)]
        done = 0
        try:
            for i in range(creates):
                obj = mine.create(key(f"t{index}-{i}"), cm(f"t{index}-{i}"))
                with lock:
                    revisions.append(rv(obj))
            while done < increments:
                current = mine.get(key("counter"))
                current["data"]["n"] = str(int(current["data"]["n"]) + 1)
                try:
                    new = mine.update(key("counter"), current, expected_revision=rv(current))
                except RevisionConflict:
                    with lock:
                        conflicts += 1
                    continue
                done += 1
                with lock:
                    revisions.append(rv(new))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    for extra in stores[1:]:
        extra.close()
    assert not errors, errors
    total = threads * (increments + creates)
    assert sorted(revisions) == list(range(rv(created) + 1, rv(created) + 1 + total))
    assert store.get(key("counter"))["data"]["n"] == str(threads * increments)
    assert store.current_revision() == rv(created) + total
    counter_events = [e for e in store.events_since(rv(created), limit=10_000)
                      if e.key == key("counter")]
    assert [int(e.object["data"]["n"]) for e in counter_events] == list(
        range(1, threads * increments + 1))


def test_concurrent_creates_of_one_key_from_two_stores_let_exactly_one_win(
        store: Store, backend: Backend) -> None:
    other = backend.open()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            (store if i % 2 else other).create(key("race"), cm("race", who=str(i)))
            outcomes.append("created")
        except KeyExists:
            outcomes.append("exists")

    workers = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    other.close()
    assert sorted(outcomes) == ["created"] + ["exists"] * 7
    assert len(store.list(R).items) == 1


# -- model-based -----------------------------------------------------------------------------
_resources = itertools.count()


class StoreModel(RuleBasedStateMachine):
    """Random create/update/delete sequences against the store and a dict model.

    Each example uses a fresh resource name, so examples share one store (and one database)
    without seeing each other; every revision the example produced is checked at the end.
    """

    store: Store

    def __init__(self) -> None:
        super().__init__()
        self.resource = f"test/things{next(_resources)}"
        self.model: dict[tuple[str, str], dict[str, Any]] = {}
        self.snapshots: dict[int, list[dict[str, Any]]] = {}

    def _key(self, ns: str, name: str) -> Key:
        return Key(self.resource, ns, name)

    def _expected(self, ns: str, name: str, mode: str) -> int | None:
        if mode == "any" or (ns, name) not in self.model:
            return None
        current = rv(self.model[(ns, name)])
        return current if mode == "current" else current - 1

    def _record(self, revision: int) -> None:
        self.snapshots[revision] = [copy.deepcopy(self.model[k]) for k in sorted(self.model)]

    namespaces = st.sampled_from(["", "a", "b"])
    object_names = st.sampled_from(["x", "y", "x-1", "Z"])
    values = st.text(max_size=5)
    modes = st.sampled_from(["any", "current", "stale"])

    @rule(ns=namespaces, name=object_names, value=values)
    def create(self, ns: str, name: str, value: str) -> None:
        if (ns, name) in self.model:
            with pytest.raises(KeyExists):
                self.store.create(self._key(ns, name), cm(name, ns, v=value))
            return
        obj = self.store.create(self._key(ns, name), cm(name, ns, v=value))
        self.model[(ns, name)] = copy.deepcopy(obj)
        self._record(rv(obj))

    @rule(ns=namespaces, name=object_names, value=values, mode=modes)
    def update(self, ns: str, name: str, value: str, mode: str) -> None:
        expected = self._expected(ns, name, mode)
        if (ns, name) not in self.model:
            with pytest.raises(KeyNotFound):
                self.store.update(self._key(ns, name), cm(name, ns, v=value), expected)
        elif mode == "stale":
            with pytest.raises(RevisionConflict):
                self.store.update(self._key(ns, name), cm(name, ns, v=value), expected)
        else:
            obj = self.store.update(self._key(ns, name), cm(name, ns, v=value), expected)
            self.model[(ns, name)] = copy.deepcopy(obj)
            self._record(rv(obj))

    @rule(ns=namespaces, name=object_names, mode=modes)
    def delete(self, ns: str, name: str, mode: str) -> None:
        expected = self._expected(ns, name, mode)
        if (ns, name) not in self.model:
            with pytest.raises(KeyNotFound):
                self.store.delete(self._key(ns, name), expected)
        elif mode == "stale":
            with pytest.raises(RevisionConflict):
                self.store.delete(self._key(ns, name), expected)
        else:
            last = self.model.pop((ns, name))
            obj = self.store.delete(self._key(ns, name), expected)
            assert obj["data"] == last["data"]
            self._record(rv(obj))

    @invariant()
    def list_matches_the_model(self) -> None:
        assert self.store.list(self.resource).items == [self.model[k] for k in sorted(self.model)]

    def teardown(self) -> None:
        for revision, expected in self.snapshots.items():
            assert self.store.list(self.resource, revision=revision).items == expected
        if self.snapshots:
            first = min(self.snapshots)
            events = [e for e in self.store.events_since(first - 1, limit=100_000)
                      if e.key.resource == self.resource]
            assert [e.revision for e in events] == sorted(self.snapshots)


def test_random_operations_match_a_dict_model(store: Store, backend: Backend) -> None:
    class Machine(StoreModel):
        pass

    Machine.store = store
    run_state_machine_as_test(Machine, settings=settings(
        max_examples=100 if backend.kind == "sqlite" else 40, stateful_step_count=30,
        deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))


# -- open_store ------------------------------------------------------------------------------
def test_open_store_opens_sqlite_from_a_url_or_a_path(tmp_path: Path) -> None:
    by_url = open_store(f"sqlite://{tmp_path}/a.db?synchronous=NORMAL")
    assert isinstance(by_url, SqliteStore) and by_url.path == f"{tmp_path}/a.db"
    assert by_url._synchronous == "NORMAL"
    by_url.close()
    by_path = open_store(str(tmp_path / "b.db"))  # every acknowledged write synced to disk
    assert isinstance(by_path, SqliteStore) and by_path._synchronous == "FULL"
    by_path.close()


@pytest.mark.parametrize("url", ["", "mysql://db/x", "sqlite://relative.db", "sqlite:///",
                                 "sqlite:///x.db?cache=shared", "sqlite:///x.db?synchronous=MAX"])
def test_open_store_rejects_unknown_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


def test_question_marks_become_placeholders_but_not_inside_literals() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE 'x?%' AND d = ?") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x?%%' AND d = %s")
    assert translate("SELECT 5 % 2, 'it''s ?', ?") == "SELECT 5 %% 2, 'it''s ?', %s"


# -- PostgreSQL only -------------------------------------------------------------------------
@pytest.mark.slow
def test_open_store_opens_postgres_for_both_url_schemes(pg_url: str) -> None:
    for url in (pg_url, "postgres://" + pg_url.split("://", 1)[1]):
        opened = open_store(url)
        assert isinstance(opened, PostgresStore)
        assert opened.current_revision() == 1
        opened.close()


@pytest.mark.slow
def test_postgres_schema_creation_is_safe_when_processes_start_at_once(pg_url: str) -> None:
    barrier = threading.Barrier(6)
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            stores.append(PostgresStore(pg_url))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    workers = [threading.Thread(target=start) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors
    stores[0].create(key("a"), cm("a"))
    assert [names(s.list(R).items) for s in stores] == [[("default", "a")]] * 6
    for opened in stores:
        opened.close()


@pytest.mark.slow
def test_postgres_store_runs_as_a_role_without_ddl_rights_once_the_schema_exists(
        pg_url: str) -> None:
    PostgresStore(pg_url).close()  # a privileged first start creates the schema
    role = f"app_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")  # type: ignore[arg-type]
        admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON meta, kv TO {role}")  # type: ignore[arg-type]
    limited = PostgresStore(pg_url.replace("postgres@", f"{role}@", 1))
    try:
        assert rv(limited.create(key("a"), cm("a"))) == 2
        assert limited.compact(2) == 0
    finally:
        limited.close()


@pytest.mark.slow
def test_postgres_live_index_violation_maps_to_key_exists(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.create(key("a"), cm("a"))
    with pytest.raises(KeyExists), store._write_tx() as cur:  # bypass the store's own check
        cur.execute("INSERT INTO kv (revision, resource, namespace, name, event, superseded, "
                    "value) VALUES (?, ?, ?, ?, 0, NULL, ?)", (10**6, R, "default", "a", b"{}"))
    assert store.current_revision() == 2  # rolled back
    store.create(key("b"), cm("b"))
    store.close()


@pytest.mark.slow
def test_postgres_wait_for_change_wakes_on_writes_of_another_process(pg_url: str) -> None:
    waiter, writer = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        revision = waiter.current_revision()
        started = time.monotonic()
        waiter.wait_for_change(revision, timeout=0.3)  # nothing happens: times out
        assert 0.25 <= time.monotonic() - started < 3
        woke: list[float] = []

        def wait() -> None:
            waiter.wait_for_change(revision, timeout=20)
            woke.append(time.monotonic())

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.3)
        assert not woke
        written = time.monotonic()
        writer.create(key("a"), cm("a"))
        thread.join(timeout=20)
        assert woke and woke[0] - written < 1.0
        started = time.monotonic()
        waiter.wait_for_change(revision, timeout=20)  # already behind: returns at once
        assert time.monotonic() - started < 1.0
    finally:
        waiter.close()
        writer.close()


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A private server for the tests that stop or kill it (the shared one stays up)."""
    server = PostgresServer()
    server.start()
    yield server
    server.cleanup()


def _fresh_database(server: PostgresServer) -> str:
    database = f"t_{uuid.uuid4().hex[:20]}"
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    return server.url_for(database)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_postgres_store_reconnects_after_the_server_restarts(
        own_server: PostgresServer, how: str) -> None:
    url = _fresh_database(own_server)
    store, other = PostgresStore(url), PostgresStore(url)
    try:
        # several pooled connections, all of which die with the server
        threads = [threading.Thread(target=store.create, args=(key(f"p{i}"), cm(f"p{i}")))
                   for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        store.wait_for_change(store.current_revision(), timeout=0.1)  # starts the listener
        getattr(own_server, how)()
        with pytest.raises(StoreUnavailable):
            store.create(key("down"), cm("down"))
        own_server.start()
        # the next calls work: dead pooled connections are replaced
        store.create(key("after"), cm("after"))
        assert len(store.list(R).items) == 5
        assert store.get(key("after"))["metadata"]["name"] == "after"
        # and the LISTEN connection came back: another process' write wakes us quickly
        revision = store.current_revision()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until the listener has reconnected
            store.wait_for_change(revision, timeout=0.2)
            if store._listening:
                break
        woke: list[float] = []

        def wait() -> None:
            store.wait_for_change(revision, timeout=20)
            woke.append(time.monotonic())

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.2)
        written = time.monotonic()
        other.create(key("other"), cm("other"))
        thread.join(timeout=20)
        assert woke and woke[0] - written < 1.0
    finally:
        store.close()
        other.close()


@pytest.mark.slow
def test_postgres_acknowledged_writes_survive_a_crash(own_server: PostgresServer) -> None:
    url = _fresh_database(own_server)
    store = PostgresStore(url)
    acked: dict[str, int] = {}
    lock = threading.Lock()
    crashed = threading.Event()
    attempts = [0]

    def write(index: int) -> None:
        for i in itertools.count():
            name = f"w{index}-{i}"
            with lock:
                attempts[0] += 1
            try:
                obj = store.create(key(name), cm(name, i=str(i)))
            except (psycopg.Error, StoreUnavailable):
                if crashed.is_set():
                    return
                raise
            with lock:
                acked[name] = rv(obj)

    writers = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(4)]
    for writer in writers:
        writer.start()
    time.sleep(1.0)
    crashed.set()
    own_server.kill()
    for writer in writers:
        writer.join(timeout=30)
    assert not any(writer.is_alive() for writer in writers)
    store.close()
    assert len(acked) > 20, "too few writes before the crash to mean anything"
    own_server.start()
    after = PostgresStore(url)
    try:
        present = {o["metadata"]["name"]: rv(o) for o in after.list(R).items}
        missing = set(acked) - set(present)
        assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:5]}"
        assert all(present[name] == revision for name, revision in acked.items())
        # at most the in-flight writes (committed but not acknowledged) are extra
        assert len(present) - len(acked) <= len(writers)
        # the log is intact: revisions are gap-free up to the recovered current revision
        assert sorted(present.values()) == list(range(2, after.current_revision() + 1))
        after.create(key("next"), cm("next"))
    finally:
        after.close()
