"""The embedded default store: one SQLite file in WAL mode.

WAL lets readers run beside the single writer. Durability: ``synchronous=FULL`` is the default
(:data:`DEFAULT_SYNCHRONOUS`), so the WAL is synced to disk at every COMMIT and an
acknowledged write survives a power cut, not only a crash of the process. That sync (about
2.4 ms on the benchmark machine's disk) is why writes are group-committed
(:mod:`.group`): concurrent writes share one COMMIT and one sync, so under load the cost is
per batch, not per write (store level, 8 creates in flight: 4,300/s with FULL against 8,300/s
with NORMAL; one at a time: 410/s against 5,000/s). ``?synchronous=NORMAL`` in the store URL
trades that for speed: a ``kill -9`` still loses no acknowledged write, a power cut may lose
the last commits. Coroutines must not wait for such a commit on the event loop
(:attr:`Store.commits_wait`): the HTTP creates go to the group committer, controllers' writes
to a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .ledger import SQLITE_SCHEMA as LEDGER_SCHEMA
from .sql import Cursor, SqlStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    compacted INTEGER NOT NULL,
    stamp INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO meta (id, revision, compacted) VALUES (1, 1, 0);
CREATE TABLE IF NOT EXISTS kv (
    revision INTEGER PRIMARY KEY,
    resource TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    event INTEGER NOT NULL,
    superseded INTEGER,
    value BLOB NOT NULL,
    stamp INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_live ON kv (resource, namespace, name)
    WHERE superseded IS NULL;
CREATE INDEX IF NOT EXISTS kv_history ON kv (resource, namespace, name, revision);
CREATE INDEX IF NOT EXISTS kv_superseded ON kv (superseded) WHERE superseded IS NOT NULL;
"""

MIGRATIONS: tuple[tuple[str, str, str], ...] = (
    ("meta", "stamp", "ALTER TABLE meta ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0"),
    ("kv", "stamp", "ALTER TABLE kv ADD COLUMN stamp INTEGER"),
)
"""(table, column, DDL adding it) for databases created before the column existed: revision
stamps came later; old rows keep NULL (an unknown stamp)."""

SYNCHRONOUS_MODES = {"OFF", "NORMAL", "FULL", "EXTRA"}
DEFAULT_SYNCHRONOUS = "FULL"
"""Every acknowledged write is on disk (see the module docstring)."""


class SqliteStore(SqlStore):
    """One writer connection (behind a lock) and one reader connection per thread."""

    CHANGES = SqlStore.CHANGES.replace("FROM kv WHERE", "FROM kv NOT INDEXED WHERE")
    """SQLite's planner may pick the ``(resource, namespace)`` index over the rowid range
    (it has no statistics unless ANALYZE ran); ``NOT INDEXED`` leaves only the rowid
    (= revision) range."""

    def __init__(self, path: str | Path, synchronous: str = DEFAULT_SYNCHRONOUS) -> None:
        self._lock = threading.Lock()
        super().__init__(self._lock)
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_MODES)}")
        self.path = str(path)
        self._synchronous = synchronous.upper()
        self.commits_wait = self._synchronous in ("FULL", "EXTRA")
        self._local = threading.local()
        _make_private(self.path)
        self._writer = self._connect()
        self._writer.executescript(SCHEMA)
        self._migrate()
        with self._write_tx() as cur:
            for statement in LEDGER_SCHEMA:
                cur.execute(statement)

    def _migrate(self) -> None:
        """Add the columns an older database lacks (one transaction, at open)."""
        with self._write_tx() as cur:
            for table, column, ddl in MIGRATIONS:
                columns = {row[1] for row in cur.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    cur.execute(ddl)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def _write_tx(self) -> Iterator[Cursor]:
        with self._group.exclusive():
            cur = self._writer.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    @contextmanager
    def _batch_tx(self) -> Iterator[tuple[Cursor, int, int]]:
        """The group committer holds ``_lock``; ``BEGIN IMMEDIATE`` takes the database's
        write lock (waiting up to the busy timeout for other processes on the file)."""
        cur = self._writer.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            revision, stamp = cur.execute(
                "SELECT revision, stamp FROM meta WHERE id = 1").fetchone()
            yield cur, int(revision), int(stamp)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        try:
            cur.execute("COMMIT")
        except BaseException:
            if self._writer.in_transaction:
                cur.execute("ROLLBACK")
            raise

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _read_tx(self) -> Iterator[Cursor]:
        cur = self._reader().cursor()
        cur.execute("BEGIN")
        try:
            yield cur
        finally:
            cur.execute("COMMIT")

    @contextmanager
    def _read_one(self) -> Iterator[Cursor]:
        # autocommit: the one statement runs in its own read transaction (one snapshot)
        yield self._reader().cursor()

    def close(self) -> None:
        self._group.close()
        with self._lock:
            self._writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def _make_private(path: str) -> None:
    """Create the database file 0600, or take group and other access from an existing one
    (and its WAL files, which SQLite creates with the database's mode): it holds every
    object of every tenant."""
    if path == ":memory:" or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(name).st_mode & 0o777
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
