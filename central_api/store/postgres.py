"""The PostgreSQL store: the same MVCC log as SQLite, shared by several server processes.

Why the transactions look the way they do:

* **Writes** run at READ COMMITTED but first lock the single ``meta`` row
  (``SELECT ... FOR UPDATE``). That serialises writers across *all* processes before
  :class:`~central_api.store.sql.SqlStore` reads the live row it is about to replace, exactly
  like SQLite's ``BEGIN IMMEDIATE``. Without it, two processes could both read "live revision 5",
  and the loser would hit the live-row unique index instead of getting a clean
  RevisionConflict/KeyNotFound. Since each READ COMMITTED statement sees everything committed
  before it, the checks after the lock see the latest state, revisions are handed out gap-free
  (a rolled-back write also rolls back the counter) and commit strictly in order.
* **Reads** run at REPEATABLE READ, READ ONLY: one snapshot for the ``meta`` row and the ``kv``
  rows, so a list page and its resourceVersion always agree.
* Every successful write transaction sends ``NOTIFY kv_changes`` (delivered at commit), so
  :meth:`PostgresStore.wait_for_change` wakes watch hubs in other processes within milliseconds
  instead of making them poll.

Connections come from a small thread-safe pool. After PostgreSQL restarts, the pooled
connections are dead: a transaction whose ``BEGIN`` fails on a reused connection is retried once
on a fresh one (nothing has happened yet, so that is safe) and the rest of the idle pool is
dropped. A transaction that fails after it started raises; the next call reconnects.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg.pq import TransactionStatus

from .base import Key, KeyExists, StoreError, StoreUnavailable
from .ledger import POSTGRES_SCHEMA as LEDGER_SCHEMA
from .ledger import RELATIONS as LEDGER_RELATIONS
from .sql import INSERT, Cursor, Plan, SqlStore

SCHEMA_LOCK_ID = 0x5C5_C3A7_0001
"""``pg_advisory_xact_lock`` key: two processes starting at once must not race on the DDL
(``CREATE ... IF NOT EXISTS`` is not safe against concurrent creators in PostgreSQL)."""

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        revision BIGINT NOT NULL,
        compacted BIGINT NOT NULL,
        stamp BIGINT NOT NULL DEFAULT 0
    )""",
    "INSERT INTO meta (id, revision, compacted) VALUES (1, 1, 0) ON CONFLICT (id) DO NOTHING",
    # COLLATE "C": list order and continue tokens compare names bytewise, like SQLite and
    # Python, whatever locale the database was created with.
    """CREATE TABLE IF NOT EXISTS kv (
        revision BIGINT PRIMARY KEY,
        resource TEXT COLLATE "C" NOT NULL,
        namespace TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        event SMALLINT NOT NULL,
        superseded BIGINT,
        value BYTEA NOT NULL,
        stamp BIGINT
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS kv_live ON kv (resource, namespace, name)
        WHERE superseded IS NULL""",
    "CREATE INDEX IF NOT EXISTS kv_history ON kv (resource, namespace, name, revision)",
    "CREATE INDEX IF NOT EXISTS kv_superseded ON kv (superseded) WHERE superseded IS NOT NULL",
    # databases created before revision stamps existed (old rows keep NULL: unknown)
    "ALTER TABLE meta ADD COLUMN IF NOT EXISTS stamp BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE kv ADD COLUMN IF NOT EXISTS stamp BIGINT",
    *LEDGER_SCHEMA,
)
SCHEMA_COMPLETE = " AND ".join(
    ["SELECT (SELECT count(*) FROM pg_attribute WHERE attname = 'stamp' AND NOT attisdropped "
     "AND attrelid IN (to_regclass('meta'), to_regclass('kv'))) = 2"]
    + [f"to_regclass('{name}') IS NOT NULL" for name in (
        "meta", "kv", "kv_live", "kv_history", "kv_superseded", *LEDGER_RELATIONS)])
"""True when every object of :data:`SCHEMA` exists (then no DDL runs at all)."""

CHANNEL = "kv_changes"
LIVE_INDEX = "kv_live"
BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED"
LOCK_WRITERS = "SELECT revision, stamp FROM meta WHERE id = 1 FOR UPDATE"
BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
READ_LIVE = (
    'SELECT kv.resource, kv.namespace, kv.name, kv.revision, CASE WHEN k.v THEN kv.value END '
    'FROM unnest(%s::text[], %s::text[], %s::text[], %s::bool[]) AS k(r, n, m, v) '
    'JOIN kv ON kv.resource = k.r COLLATE "C" AND kv.namespace = k.n COLLATE "C" '
    'AND kv.name = k.m COLLATE "C" WHERE kv.superseded IS NULL')
"""The live revision of each key of a batch, and the value of those flagged ``v``."""
NOTIFY_COMMIT = "SELECT pg_notify('kv_changes', revision::text) FROM meta WHERE id = 1; COMMIT"
"""The notification carries the committed revision (read under the writers' lock), so a
listener knows how far the store is without asking (see ``wait_for_change``)."""

log = logging.getLogger(__name__)

_LITERAL = re.compile(r"('(?:[^']|'')*')")


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """``?`` placeholders -> psycopg's ``%s``; literal ``%`` -> ``%%`` (psycopg would read it
    as a placeholder). A ``?`` inside a quoted SQL string literal is left alone."""
    parts = _LITERAL.split(sql.replace("%", "%%"))
    return "".join(part if i % 2 else part.replace("?", "%s") for i, part in enumerate(parts))


class PgCursor:
    """A psycopg cursor behind sql.py's :class:`~central_api.store.sql.Cursor` protocol."""

    __slots__ = ("begun", "raw")

    def __init__(self, cur: psycopg.Cursor[Any], begun: Any = None) -> None:
        self.raw = cur
        self.begun = begun
        """The row the transaction's last BEGIN statement returned (None: no rows)."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> PgCursor:
        # Always pass a params tuple, so psycopg always unescapes "%%" the same way.
        self.raw.execute(translate(sql), params)  # type: ignore[arg-type]
        return self

    def fetchone(self) -> Any:
        return self.raw.fetchone()

    def fetchall(self) -> list[Any]:
        return self.raw.fetchall()

    @property
    def rowcount(self) -> int:
        return self.raw.rowcount


def _usable(conn: psycopg.Connection[Any]) -> bool:
    return not (conn.closed or conn.broken)


class PostgresStore(SqlStore):
    """The store contract on PostgreSQL 15+; any number of processes may share one database.

    ``url`` is a libpq URL (``postgresql://user:pw@host:5432/db?sslmode=...``). ``pool_size``
    caps this instance's connections (a caller waits up to ``pool_timeout`` seconds for one),
    plus one extra connection for LISTEN once :meth:`wait_for_change` is first used.
    """

    blocking = True
    commits_wait = True

    def __init__(self, url: str, *, pool_size: int = 10, pool_timeout: float = 30.0) -> None:
        super().__init__()
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        params = psycopg.conninfo.conninfo_to_dict(url)
        params.setdefault("application_name", "scs-central-api")
        params.setdefault("connect_timeout", 10)
        # Notice a vanished database host within about a minute, not the OS default of hours
        # (matters most for the otherwise silent LISTEN connection).
        for option, value in (("keepalives", 1), ("keepalives_idle", 30),
                              ("keepalives_interval", 10), ("keepalives_count", 3)):
            params.setdefault(option, value)
        self._conninfo = psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]
        self._pool_timeout = pool_timeout
        self._slots = threading.BoundedSemaphore(pool_size)
        self._idle: list[psycopg.Connection[Any]] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        # wait_for_change: a listener thread bumps _generation on every notification (and on
        # every (re)connect, since notifications may have been missed while disconnected).
        self._cond = threading.Condition()
        self._generation = 0
        self._listening = False
        # the newest committed revision, from the notifications' payloads; trusted only
        # while the LISTEN connection that heard them (``_session``) stays up
        self._latest = 0
        self._latest_known = False
        self._session = 0
        self._listener: threading.Thread | None = None
        self._create_schema()

    # -- connections -----------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        # autocommit: transactions are explicit BEGIN/COMMIT statements, so the isolation
        # level is chosen per transaction and BEGIN doubles as the liveness check.
        return psycopg.connect(self._conninfo, autocommit=True)

    def _acquire(self) -> tuple[psycopg.Connection[Any], bool]:
        """A connection and whether it is freshly opened (a reused one may be stale)."""
        if self._closed:
            raise StoreError("store is closed")
        if not self._slots.acquire(timeout=self._pool_timeout):
            raise StoreError(f"no database connection free within {self._pool_timeout}s")
        try:
            while True:
                with self._pool_lock:
                    conn = self._idle.pop() if self._idle else None
                if conn is None:
                    return self._connect(), True
                if _usable(conn):
                    return conn, False
                conn.close()
        except BaseException:
            self._slots.release()
            raise

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        try:
            keep = (not self._closed and _usable(conn)
                    and conn.info.transaction_status == TransactionStatus.IDLE)
            if keep:
                with self._pool_lock:
                    self._idle.append(conn)
            else:
                if not _usable(conn):
                    self._drop_idle()  # the server probably went away: they are dead too
                conn.close()
        finally:
            self._slots.release()

    def _drop_idle(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @contextmanager
    def _transaction(self, *begin: str, end: str = "COMMIT"
                     ) -> Iterator[tuple[psycopg.Connection[Any], PgCursor]]:
        """Run ``begin`` statements, yield, run ``end`` (COMMIT); ROLLBACK on error.
        Reconnects once if the BEGIN fails on a reused connection that turned out to be dead.

        The ``begin`` statements go to the server as one query string (the simple query
        protocol allows several statements without parameters), and so does ``end``: every
        round trip is a wait with the event loop blocked, and this saves two per write."""
        while True:
            try:
                conn, fresh = self._acquire()
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"database unavailable: {exc}") from exc
            try:
                started = conn.execute("; ".join(begin))  # type: ignore[arg-type]
                break
            except BaseException as exc:
                dead = not _usable(conn)
                self._rollback(conn)
                self._release(conn)
                if isinstance(exc, psycopg.OperationalError) and not (dead and not fresh):
                    raise StoreUnavailable(f"database unavailable: {exc}") from exc
                if not (dead and not fresh and isinstance(exc, psycopg.OperationalError)):
                    raise
                log.info("database connection lost (%s); reconnecting", exc)
        try:
            while started.nextset():  # the result of the last begin statement, if any
                pass
            begun = started.fetchone() if started.description else None
            yield conn, PgCursor(conn.cursor(binary=True), begun)
            if end:
                conn.execute(end)  # type: ignore[arg-type]
        except psycopg.OperationalError as exc:
            self._rollback(conn)
            raise StoreUnavailable(f"database unavailable: {exc}") from exc
        except BaseException:
            self._rollback(conn)
            raise
        finally:
            self._release(conn)

    @staticmethod
    def _rollback(conn: psycopg.Connection[Any]) -> None:
        """Best effort: a connection that cannot even roll back is closed (not reused)."""
        if _usable(conn) and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()

    @contextmanager
    def _write_tx(self) -> Iterator[Cursor]:
        with self._transaction(BEGIN_WRITE, LOCK_WRITERS, end=NOTIFY_COMMIT) as (_conn, cur):
            try:
                yield cur
            except psycopg.errors.UniqueViolation as exc:
                # Cannot happen while writers hold the meta lock, but if the live index is
                # ever what stops a duplicate, the caller must still see the contract's error.
                if exc.diag.constraint_name == LIVE_INDEX:
                    raise KeyExists(str(exc.diag.message_detail or exc)) from exc
                raise

    @contextmanager
    def _batch_tx(self) -> Iterator[tuple[Cursor, int, int]]:
        """BEGIN and the writers' lock in one round trip, which also reads the revision and
        stamp; the batch's rows, the notification and the COMMIT go in one pipeline
        (:meth:`_write_plan`), so a batch costs three round trips whatever its size."""
        with self._transaction(BEGIN_WRITE, LOCK_WRITERS, end="") as (conn, cur):
            try:
                revision, stamp = cur.begun
                yield cur, int(revision), int(stamp)
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.constraint_name == LIVE_INDEX:  # see _write_tx
                    raise KeyExists(str(exc.diag.message_detail or exc)) from exc
                raise
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("COMMIT")  # no write passed its checks: nothing to notify

    def _read_live(self, cur: Cursor, keys: set[Key], with_values: set[Key]
                   ) -> dict[Key, tuple[int, bytes | None]]:
        """One statement for the whole batch (each lookup was a round trip of its own)."""
        wanted = keys | with_values
        if not wanted:
            return {}
        columns: list[list[Any]] = [[], [], [], []]
        for key in wanted:
            for column, value in zip(columns, (key.resource, key.namespace, key.name,
                                               key in with_values), strict=True):
                column.append(value)
        rows = cast(PgCursor, cur).raw.execute(READ_LIVE, columns).fetchall()
        return {Key(r[0], r[1], r[2]): (int(r[3]), None if r[4] is None else bytes(r[4]))
                for r in rows}

    def _write_plan(self, cur: Cursor, plan: Plan) -> None:
        """Every statement of the batch and its COMMIT in one pipeline: one round trip."""
        raw = cast(PgCursor, cur).raw
        with raw.connection.pipeline():
            if plan.superseded:
                raw.executemany("UPDATE kv SET superseded = %s WHERE revision = %s",
                                plan.superseded)
            raw.executemany(translate(INSERT), [tuple(row) for row in plan.rows])
            raw.execute("UPDATE meta SET revision = %s, stamp = %s WHERE id = 1",
                        (plan.revision, plan.stamp))
            raw.execute("SELECT pg_notify('kv_changes', %s)", (str(plan.revision),))
            raw.execute("COMMIT")

    @contextmanager
    def _read_tx(self) -> Iterator[Cursor]:
        with self._transaction(BEGIN_READ) as (_conn, cur):
            yield cur

    @contextmanager
    def _side_tx(self) -> Iterator[Cursor]:
        """The ledger's writes: READ COMMITTED, no writers' lock, no notification (they
        serialise among themselves on the rows they update)."""
        with self._transaction(BEGIN_WRITE) as (_conn, cur):
            yield cur

    def _create_schema(self) -> None:
        """Create the tables unless they exist. Skipping the DDL when everything is there lets
        the server run as a role without CREATE on the schema (PostgreSQL 15's default for
        ``public``) once an administrator or a first privileged start created them."""
        with self._transaction("BEGIN") as (conn, _cur):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
            row = conn.execute(SCHEMA_COMPLETE).fetchone()
            if row is not None and row[0]:
                return
            for statement in SCHEMA:
                conn.execute(statement)  # type: ignore[arg-type]

    # -- cross-process wake-ups ------------------------------------------------------------
    def wait_for_change(self, revision: int, timeout: float) -> int:
        """Block until a revision greater than ``revision`` may exist, or ``timeout`` passes;
        returns the newest revision known to be committed (at least ``revision``).

        Why: a watch hub learns about writes of its own process from :meth:`add_write_listener`,
        but with several API server processes on one database it would otherwise have to poll
        for the others' writes. Every write transaction sends ``NOTIFY kv_changes`` with its
        revision; a listener thread (one extra connection, opened on first use, reconnecting on
        its own) records the newest and wakes the waiters. Returns immediately if the store is
        already past ``revision``. Only the first wait after LISTEN (re)connects asks the
        database for its revision (commits before LISTEN send nothing this process hears);
        after that the notifications tell — asking on every notification cost more than the
        writes themselves under load. Spurious returns are allowed (e.g. after the listener
        reconnected, when notifications may have been lost), so callers re-check with
        ``events_since``. While the database is unreachable this simply waits out ``timeout``.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        self._start_listener()
        with self._cond:
            self._cond.wait_for(lambda: self._listening or self._closed,
                                max(0.0, deadline - time.monotonic()))
            if not self._listening:
                return revision
            generation, session = self._generation, self._session
            if self._latest_known and self._latest > revision:
                return self._latest
            known = self._latest_known
        if not known:
            # Checked after LISTEN is active and the generation is taken: a commit after this
            # point bumps the generation, so no wake-up can fall between check and wait.
            try:
                current = self.current_revision()
            except psycopg.OperationalError:
                current = 0  # unreachable: the listener's reconnect wakes us (or the timeout)
            with self._cond:
                if current and self._session == session:
                    self._latest = max(self._latest, current)
                    self._latest_known = True
            if current > revision:
                return current
        with self._cond:
            self._cond.wait_for(lambda: self._generation != generation or self._closed,
                                max(0.0, deadline - time.monotonic()))
            return max(revision, self._latest)

    def _start_listener(self) -> None:
        with self._cond:
            if self._listener is None and not self._closed:
                self._listener = threading.Thread(target=self._listen, daemon=True,
                                                  name="pg-store-listener")
                self._listener.start()

    def _wake(self, listening: bool, payload: str | None = None) -> None:
        """A notification (``payload``: its revision) or a LISTEN (re)connect (None)."""
        with self._cond:
            if payload is None:  # (re)connected or lost: what happened meanwhile is unknown
                self._session += 1
                self._latest_known = False
            elif payload.isdigit():
                self._latest = max(self._latest, int(payload))
            else:  # a notification without revision (an older server process): ask again
                self._latest_known = False
            self._listening = listening
            self._generation += 1
            self._cond.notify_all()

    def _listen(self) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True)
            except psycopg.Error:
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            try:
                with conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._wake(True)
                    backoff = 0.05
                    while not self._closed:
                        for notify in conn.notifies(timeout=0.5):
                            self._wake(True, notify.payload)
            except psycopg.Error as exc:
                log.info("LISTEN connection lost (%s); reconnecting", exc)
            except Exception:
                log.exception("LISTEN connection failed; reconnecting")
                time.sleep(backoff)
            self._wake(False)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._group.close()
        self._closed = True
        self._drop_idle()
        with self._cond:
            self._cond.notify_all()
            listener = self._listener
        if listener is not None:
            listener.join(timeout=2)
