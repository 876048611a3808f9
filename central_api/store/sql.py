"""The MVCC log on SQL, shared by the SQLite and PostgreSQL stores.

Subclasses supply a transaction (``_write_tx`` serialises writers, ``_read_tx`` gives one
consistent snapshot) and the DDL; the queries here are portable SQL with ``?`` placeholders
(the PostgreSQL cursor rewrites them). Writers take the single ``meta`` row first
(``UPDATE ... RETURNING``), which serialises them, so revisions commit strictly in order and a
watcher that read up to revision N can never later see a commit below N.

Stamps: the same ``meta`` update that hands out the revision takes the time
(:func:`central_api.machinery.clock.now`, read after the writers' lock) and keeps
``meta.stamp = max(now, previous stamp)``: stamps never decrease with the revision, across
threads, processes sharing one PostgreSQL and clocks that step back. ``kv.stamp`` holds the
revision's stamp in whole microseconds (NULL in rows written before stamps existed: 0.0, i.e.
unknown, on :attr:`~central_api.store.base.Event.stamp`). It costs no extra statement.
"""

from __future__ import annotations

import abc
import builtins
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

LIVE = "superseded IS NULL"
BY_KEY = "FROM kv WHERE resource = ? AND namespace = ? AND name = ? AND superseded IS NULL"
AT_REVISION = "revision <= ? AND (superseded IS NULL OR superseded > ?) AND event != 2"


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

    # -- writes ----------------------------------------------------------------------------
    def create(self, key: Key, obj: dict[str, Any],
               require: Requirement | None = None) -> dict[str, Any]:
        with self._write_tx() as cur:
            if require is None:
                live = self._live_revision(cur, key)
            else:  # one round trip for both lookups: writers wait for this one
                other, check = require
                raw, live = cur.execute(
                    "SELECT (SELECT value " + BY_KEY + "), (SELECT revision " + BY_KEY + ")",
                    (other.resource, other.namespace, other.name,
                     key.resource, key.namespace, key.name)).fetchone()
                check(None if raw is None else self._decode(other.resource, bytes(raw)))
            if live is not None:
                raise KeyExists(key)
            revision, stamp = self._next_revision(cur)
            self._append(cur, key, revision, stamp, "ADDED", obj)
        self._notify()
        return obj

    def update(self, key: Key, obj: dict[str, Any],
               expected_revision: int | None) -> dict[str, Any]:
        with self._write_tx() as cur:
            live = self._live_revision(cur, key)
            if live is None:
                raise KeyNotFound(key)
            if expected_revision is not None and live != expected_revision:
                raise RevisionConflict(key)
            revision, stamp = self._next_revision(cur)
            self._supersede(cur, live, revision)
            self._append(cur, key, revision, stamp, "MODIFIED", obj)
        self._notify()
        return obj

    def delete(self, key: Key, expected_revision: int | None = None) -> dict[str, Any]:
        with self._write_tx() as cur:
            row = cur.execute(
                "SELECT revision, value " + BY_KEY,
                (key.resource, key.namespace, key.name)).fetchone()
            if row is None:
                raise KeyNotFound(key)
            live, raw = row
            if expected_revision is not None and live != expected_revision:
                raise RevisionConflict(key)
            obj = self._decode(key.resource, bytes(raw))
            revision, stamp = self._next_revision(cur)
            self._supersede(cur, live, revision)
            self._append(cur, key, revision, stamp, "DELETED", obj, superseded=revision)
        self._notify()
        return obj

    def _live_revision(self, cur: Cursor, key: Key) -> int | None:
        row = cur.execute(
            "SELECT revision " + BY_KEY, (key.resource, key.namespace, key.name)).fetchone()
        return None if row is None else int(row[0])

    def _next_revision(self, cur: Cursor) -> tuple[int, int]:
        """The next revision and its stamp (microseconds), in one statement."""
        now = to_micros(clock.now())
        revision, stamp = cur.execute(
            "UPDATE meta SET revision = revision + 1, "
            "stamp = CASE WHEN stamp > ? THEN stamp ELSE ? END WHERE id = 1 "
            "RETURNING revision, stamp", (now, now)).fetchone()
        return int(revision), int(stamp)

    @staticmethod
    def _supersede(cur: Cursor, live: int, revision: int) -> None:
        cur.execute("UPDATE kv SET superseded = ? WHERE revision = ?", (revision, live))

    def _append(self, cur: Cursor, key: Key, revision: int, stamp: int, event: str,
                obj: dict[str, Any], superseded: int | None = None) -> None:
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
        cur.execute(
            "INSERT INTO kv (revision, resource, namespace, name, event, superseded, value, "
            "stamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (revision, key.resource, key.namespace, key.name, EVENT_CODES[event],  # type: ignore[index]
             superseded, self._encode(key.resource, obj), stamp))

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
        with self._write_tx() as cur:
            current, compacted = cur.execute(
                "SELECT revision, compacted FROM meta WHERE id = 1").fetchone()
            target = min(int(revision), int(current))
            if target <= compacted:
                return 0
            # Read rowcount before the next statement: the cursor (execute returns it) is reused.
            removed = int(getattr(cur.execute(
                "DELETE FROM kv WHERE superseded IS NOT NULL AND superseded <= ?", (target,)),
                "rowcount", 0) or 0)
            cur.execute("UPDATE meta SET compacted = ? WHERE id = 1", (target,))
            return removed


def _seconds(stamp: int | None) -> float:
    """A stored stamp (microseconds; NULL before stamps existed) as seconds (0.0: unknown)."""
    return 0.0 if stamp is None else int(stamp) / MICROS
