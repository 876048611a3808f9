"""The MVCC log on SQL, shared by the SQLite and PostgreSQL stores.

Subclasses supply the transactions (``_batch_tx`` for the object writes, ``_write_tx`` for
other writes under the same lock, ``_read_tx`` for one consistent snapshot) and the DDL; the
queries here are portable SQL with ``?`` placeholders (the PostgreSQL cursor rewrites them).
Object writes are group-committed (:mod:`.group`): a batch takes the writers' lock across
processes (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's lock on the ``meta`` row), reads the
current revision, hands consecutive revisions to the writes that pass their checks and
stores the last one in ``meta``, so revisions commit strictly in order and a watcher that
read up to revision N can never later see a commit below N.

Stamps: a batch takes the time (:func:`central_api.machinery.clock.now`, read after the
writers' lock) and keeps ``meta.stamp = max(now, previous stamp)`` for all its writes:
stamps never decrease with the revision, across threads, processes sharing one PostgreSQL
and clocks that step back. ``kv.stamp`` holds the revision's stamp in whole microseconds
(NULL in rows written before stamps existed: 0.0, i.e. unknown, on
:attr:`~central_api.store.base.Event.stamp`). It costs no extra statement.
"""

from __future__ import annotations

import abc
import builtins
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..machinery import clock
from .base import (
    EVENT_CODES,
    EVENT_NAMES,
    MICROS,
    Compacted,
    Event,
    Key,
    KeyExists,
    KeyNotFound,
    Page,
    Requirement,
    RevisionConflict,
    Store,
    to_micros,
)
from .group import GroupCommit, Write

LIVE = "superseded IS NULL"
BY_KEY = "FROM kv WHERE resource = ? AND namespace = ? AND name = ? AND superseded IS NULL"
AT_REVISION = "revision <= ? AND (superseded IS NULL OR superseded > ?) AND event != 2"
INSERT = ("INSERT INTO kv (revision, resource, namespace, name, event, superseded, value, stamp) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
COMPACT_BATCH = 100
"""Rows removed per compaction transaction: a few milliseconds of the writers' lock."""
COMPACT_STEP = ("DELETE FROM kv WHERE revision IN (SELECT revision FROM kv WHERE superseded "
                "IS NOT NULL AND superseded <= ? LIMIT ?)")


class Cursor(Protocol):
    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> builtins.list[Any]: ...


class SqlStore(Store):
    """Implements the store contract on any SQL database with the subclass' transactions."""

    @abc.abstractmethod
    def _write_tx(self) -> AbstractContextManager[Cursor]: ...

    @abc.abstractmethod
    def _read_tx(self) -> AbstractContextManager[Cursor]: ...

    def _side_tx(self) -> AbstractContextManager[Cursor]:
        """A write transaction for tables beside the log (the metering ledger), which hand out
        no revision: a back end may run it without the object writers' lock (PostgreSQL)."""
        return self._write_tx()

    def _read_one(self) -> AbstractContextManager[Cursor]:
        """For a single statement, which is consistent on its own; a back end may skip the
        explicit transaction (SQLite: two statements fewer on every GET)."""
        return self._read_tx()

    def __init__(self, writers_lock: threading.Lock | None = None) -> None:
        """``writers_lock``: the lock batches commit under, if the back end guards more
        with it (SQLite: its one writer connection); else the group has a lock of its own."""
        super().__init__()
        self._group = GroupCommit(self._run_batch, self._notify, writers_lock)

    # -- writes ----------------------------------------------------------------------------
    def create(self, key: Key, obj: dict[str, Any],
               require: Requirement | None = None) -> dict[str, Any]:
        return self._group.submit(Write("ADDED", key, obj, None, require))

    async def create_async(self, key: Key, obj: dict[str, Any],
                           require: Requirement | None = None) -> dict[str, Any]:
        return await self._group.submit_async(Write("ADDED", key, obj, None, require))

    def update(self, key: Key, obj: dict[str, Any],
               expected_revision: int | None) -> dict[str, Any]:
        return self._group.submit(Write("MODIFIED", key, obj, expected_revision))

    def delete(self, key: Key, expected_revision: int | None = None) -> dict[str, Any]:
        return self._group.submit(Write("DELETED", key, None, expected_revision))

    def _run_batch(self, writes: builtins.list[Write]) -> None:
        """One transaction for ``writes``: read what they depend on, check each in order
        (a write sees the writes before it in the batch), then append the rows of those that
        passed. No savepoints are needed: a write that fails its check (KeyExists,
        RevisionConflict, a ``require`` refusal) or cannot be encoded has sent nothing to the
        database, because the rows go only after every write was checked."""
        with self._batch_tx() as (cur, revision, stamp):
            plan = Plan(self, revision, max(stamp, to_micros(clock.now())),
                        self._read_live(cur, _keys(writes, values=False),
                                        _keys(writes, values=True)))
            for write in writes:
                plan.add(write)
            if plan.rows:
                self._write_plan(cur, plan)

    @abc.abstractmethod
    def _batch_tx(self) -> AbstractContextManager[tuple[Cursor, int, int]]:
        """A write transaction holding the writers' lock (across processes), with the
        current revision and stamp; commits when the block ends, rolls back on error."""

    def _read_live(self, cur: Cursor, keys: set[Key], with_values: set[Key]
                   ) -> dict[Key, tuple[int, bytes | None]]:
        """The live revision of each key (and its stored value for ``with_values``)."""
        live: dict[Key, tuple[int, bytes | None]] = {}
        for key in keys | with_values:
            column = "value" if key in with_values else "NULL"
            row = cur.execute(f"SELECT revision, {column} " + BY_KEY,  # noqa: S608  # nosec B608
                              (key.resource, key.namespace, key.name)).fetchone()
            if row is not None:
                live[key] = (int(row[0]), None if row[1] is None else bytes(row[1]))
        return live

    def _write_plan(self, cur: Cursor, plan: Plan) -> None:
        """Supersede the versions the batch replaced, append its rows, advance ``meta``."""
        for revision, live in plan.superseded:
            cur.execute("UPDATE kv SET superseded = ? WHERE revision = ?", (revision, live))
        for row in plan.rows:
            cur.execute(INSERT, tuple(row))
        cur.execute("UPDATE meta SET revision = ?, stamp = ? WHERE id = 1",
                    (plan.revision, plan.stamp))

    # -- reads -----------------------------------------------------------------------------
    def get(self, key: Key) -> dict[str, Any]:
        with self._read_one() as cur:
            row = cur.execute(
                "SELECT value " + BY_KEY, (key.resource, key.namespace, key.name)).fetchone()
        if row is None:
            raise KeyNotFound(key)
        return self._decode(key.resource, bytes(row[0]))

    def list(self, resource: str, namespace: str | None = None, *, limit: int = 0,
             after: tuple[str, str] | None = None, revision: int = 0,
             name: str | None = None) -> Page:
        with self._read_tx() as cur:
            snapshot = self._snapshot(cur, revision)
            rows = self._select(cur, resource, namespace, name, after, snapshot, revision != 0,
                                limit + 1 if limit else 0)
        items = [self._decode(resource, bytes(r[2])) for r in rows]
        more = bool(limit) and len(items) > limit
        if more:
            items = items[:limit]
            last = rows[limit - 1]
            return Page(items, snapshot, (last[0], last[1]))
        return Page(items, snapshot, None)

    def iter_list(self, resource: str, namespace: str | None, revision: int,
                  after: tuple[str, str] | None, batch: int) -> Iterator[dict[str, Any]]:
        while True:
            page = self.list(resource, namespace, limit=batch, after=after, revision=revision)
            yield from page.items
            if page.continue_after is None:
                return
            after, revision = page.continue_after, page.revision

    def _snapshot(self, cur: Cursor, revision: int) -> int:
        current, compacted = cur.execute(
            "SELECT revision, compacted FROM meta WHERE id = 1").fetchone()
        if revision == 0:
            return int(current)
        if revision < compacted:
            raise Compacted(revision, int(compacted))
        return min(revision, int(current))

    @staticmethod
    def _select(cur: Cursor, resource: str, namespace: str | None, name: str | None,
                after: tuple[str, str] | None, snapshot: int, historic: bool,
                limit: int) -> builtins.list[Any]:
        where: builtins.list[str] = ["resource = ?"]
        params: builtins.list[Any] = [resource]
        if namespace is not None:
            where.append("namespace = ?")
            params.append(namespace)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        if after is not None:  # written so both databases seek the index, not rescan it
            if namespace is not None:
                where.append("name > ?")
                params.append(after[1])
            else:
                where.append("(namespace, name) > (?, ?)")
                params += [after[0], after[1]]
        if historic:
            where.append(AT_REVISION)
            params += [snapshot, snapshot]
        else:
            where.append(LIVE)
        # Only constant clauses are joined; every value is a bound parameter.
        conditions = " AND ".join(where)
        sql = f"SELECT namespace, name, value FROM kv WHERE {conditions} ORDER BY namespace, name"  # noqa: S608,E501  # nosec
        if limit:
            sql += f" LIMIT {int(limit)}"
        return list(cur.execute(sql, tuple(params)).fetchall())

    def events_since(self, revision: int, limit: int = 1000) -> builtins.list[Event]:
        with self._read_tx() as cur:
            compacted = int(cur.execute("SELECT compacted FROM meta WHERE id = 1").fetchone()[0])
            if revision < compacted:
                raise Compacted(revision, compacted)
            rows = cur.execute(
                "SELECT revision, resource, namespace, name, event, value, stamp FROM kv "  # noqa: S608,E501
                f"WHERE revision > ? ORDER BY revision LIMIT {int(limit)}",  # nosec B608
                (revision,)).fetchall()
        return [Event(EVENT_NAMES[r[4]], int(r[0]), Key(r[1], r[2], r[3]),
                      self._decode(r[1], bytes(r[5])), _seconds(r[6])) for r in rows]

    CHANGES = ("SELECT revision, name, event, value, stamp FROM kv WHERE revision > ? "
               "AND revision <= ? AND resource = ? AND namespace = ? ORDER BY revision")
    """Must range-scan the revisions (the primary key), not the ``(resource, namespace)``
    index: the point is a cost proportional to the changes, not to the namespace."""

    def changes_since(self, resource: str, namespace: str, revision: int
                      ) -> tuple[builtins.list[Event], int]:
        with self._read_tx() as cur:
            current, compacted = cur.execute(
                "SELECT revision, compacted FROM meta WHERE id = 1").fetchone()
            if revision < compacted:
                raise Compacted(revision, int(compacted))
            rows = cur.execute(self.CHANGES,
                               (revision, int(current), resource, namespace)).fetchall()
        return [Event(EVENT_NAMES[r[2]], int(r[0]), Key(resource, namespace, r[1]),
                      self._decode(resource, bytes(r[3])), _seconds(r[4])) for r in rows], \
            int(current)

    def current_revision(self) -> int:
        with self._read_one() as cur:
            return int(cur.execute("SELECT revision FROM meta WHERE id = 1").fetchone()[0])

    def compacted_revision(self) -> int:
        with self._read_one() as cur:
            return int(cur.execute("SELECT compacted FROM meta WHERE id = 1").fetchone()[0])

    def compact(self, revision: int) -> int:
        """Marks the new compacted revision first (readers of older ones get Compacted from
        then on), then deletes in transactions of at most :data:`COMPACT_BATCH` rows: one large
        DELETE held the writers' lock (every create waited) until the whole history was gone.
        The rows deleted are invisible at every revision still readable."""
        with self._write_tx() as cur:
            current, compacted = cur.execute(
                "SELECT revision, compacted FROM meta WHERE id = 1").fetchone()
            target = min(int(revision), int(current))
            if target <= compacted:
                return 0
            cur.execute("UPDATE meta SET compacted = ? WHERE id = 1", (target,))
        removed = 0
        while True:
            with self._side_tx() as cur:
                # Read rowcount before the next statement: the cursor is reused.
                step = int(getattr(cur.execute(COMPACT_STEP, (target, COMPACT_BATCH)),
                                   "rowcount", 0) or 0)
            removed += step
            if step < COMPACT_BATCH:
                return removed


def _seconds(stamp: int | None) -> float:
    """A stored stamp (microseconds; NULL before stamps existed) as seconds (0.0: unknown)."""
    return 0.0 if stamp is None else int(stamp) / MICROS


def _keys(writes: builtins.list[Write], values: bool) -> set[Key]:
    """The keys a batch reads: each write's own (``values``: only those whose stored value
    is needed, a delete's last state and a ``require``'d object)."""
    if not values:
        return {w.key for w in writes if w.event != "DELETED"}
    return {w.key for w in writes if w.event == "DELETED"} | {
        w.require[0] for w in writes if w.require is not None}


class Plan:
    """The rows of one batch, checked write by write against the live versions read at its
    start and the writes before it in the batch."""

    def __init__(self, store: SqlStore, revision: int, stamp: int,
                 live: dict[Key, tuple[int, bytes | None]]) -> None:
        self.store = store
        self.revision = revision
        self.stamp = stamp
        self.live: dict[Key, tuple[int, bytes | None] | None] = dict(live)
        self.rows: builtins.list[builtins.list[Any]] = []
        self.superseded: builtins.list[tuple[int, int]] = []
        """(new revision, revision it supersedes) for versions stored before the batch."""
        self._new: dict[int, builtins.list[Any]] = {}

    def add(self, write: Write) -> None:
        """Check ``write`` and plan its row, or record why it fails (nothing planned)."""
        try:
            write.result = self._plan(write)
        except Exception as exc:  # noqa: BLE001 - the write's own failure, reported to it
            write.error = exc

    def _plan(self, write: Write) -> dict[str, Any]:
        key, store = write.key, self.store
        if write.require is not None:
            other, check = write.require
            found = self.live.get(other)
            check(None if found is None or found[1] is None
                  else store._decode(other.resource, found[1]))
        current = self.live.get(key)
        if write.event == "ADDED":
            if current is not None:
                raise KeyExists(key)
        elif current is None:
            raise KeyNotFound(key)
        elif write.expected is not None and current[0] != write.expected:
            raise RevisionConflict(key)
        if write.obj is not None:
            obj = write.obj
        else:
            obj = store._decode(key.resource, current[1] or b"")  # type: ignore[index]
        revision = self.revision + 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
        raw = store._encode(key.resource, obj)
        deleted = write.event == "DELETED"
        row = [revision, key.resource, key.namespace, key.name, EVENT_CODES[write.event],
               revision if deleted else None, raw, self.stamp]
        if current is not None:
            earlier = self._new.get(current[0])
            if earlier is not None:
                earlier[5] = revision
            else:
                self.superseded.append((revision, current[0]))
        self.rows.append(row)
        self._new[revision] = row
        self.revision = revision
        self.live[key] = None if deleted else (revision, raw)
        return obj
