"""The metering ledger: usage rows, the accountant's fold state, Ceilometer samples and export
cursors, in tables of the store's own database (issue 16, /docs/metering.md).

Why in the store's database: the accountant folds the store's revision log into usage rows,
and "nothing lost, nothing counted twice" across crashes, restarts and leader changes needs
the rows, the open states and the log cursor they were folded up to to commit together —
one transaction, with a compare-and-set on the cursor (:meth:`Ledger.commit_fold`). The same
portable SQL runs on SQLite and PostgreSQL (``?`` placeholders; the tables are created with the
store's schema, see :data:`SQLITE_SCHEMA` and :data:`POSTGRES_SCHEMA`).

The API (stable: H and I build on these names and semantics; more may be added):

* ``Ledger(store)`` — on any :class:`~central_api.store.sql.SqlStore`. Every method blocks
  on the database: from coroutines call it through
  :func:`central_api.store.offload.off_loop` (PostgreSQL) like any store call; with
  ``SCS_LOOP_GUARD=1`` a call on the event loop is reported like the store's own.
* ``cursor(fold="accountant") -> int`` — the log revision the fold has consumed (0: never ran).
* ``open_states(fold="accountant") -> dict[uid, dict]`` — the fold's open states (JSON).
* ``commit_fold(expected_cursor, new_cursor, rows, open_states, fold="accountant")
  -> list[int]`` — in one transaction: checks the cursor is still ``expected_cursor`` (else
  :class:`CursorMoved`, nothing written), appends ``rows`` (anything shaped like
  :class:`UsageLike`, e.g. the accountant's ``Usage``) with new ``seq`` numbers (returned),
  upserts ``open_states`` (uid → JSON dict; None deletes the uid's state) and sets the cursor
  to ``new_cursor``. Rows are validated first (:class:`ValueError`, nothing written): an end
  before the start, or a row crossing a full UTC hour, is refused.
* ``min_cursor() -> int | None`` — the lowest fold cursor (None: no fold ever committed):
  compaction must not pass it.
* ``rows(tenant=, namespace=, kind=, uid=, start=, end=, after_seq=0, limit=500)
  -> list[UsageRow]`` — ordered by ``seq``; ``start``/``end`` (stamps, seconds) select rows
  overlapping ``[start, end)``. ``row(seq) -> UsageRow | None``.
* ``summary(tenant, start, end) -> list[SummaryItem]`` — aggregated in SQL by kind, part
  ("" for the object itself, ``pool`` for every cluster pool, ``control-plane``), flavor and
  volume type over the tenant's rows overlapping ``[start, end)``, each row clipped to the
  range: row count, seconds, and seconds weighted by ``size_gib`` and by ``count``.
  The caller turns these into units (instance-hours, vCPU-hours …). Whole hours come from
  an hourly roll-up (``ledger_hours``) that ``commit_fold`` keeps in the same transaction,
  partial hours at the edges from the rows: milliseconds over a million rows.
  ``rebuild_hours()`` recomputes the roll-up (after rows were loaded around commit_fold).
* ``add_samples(samples) -> (added, duplicates)`` — Ceilometer samples (:class:`Sample`),
  deduplicated by ``message_id`` (in the batch and against what is stored);
  ``samples(tenant=, start=, end=, after_seq=0, limit=500) -> list[StoredSample]``;
  ``sample_summary(tenant, start, end) -> list[SampleSummaryItem]`` (by counter and unit).
* ``export_cursor(sink) -> int`` (0: nothing exported) and
  ``advance_export(sink, expected, new)`` (:class:`CursorMoved` unless at ``expected``).

Decisions (tell the others):

* Times are integer microseconds in the database (``start_us``, ``end_us``) — exact sums and
  hour boundaries; :class:`UsageRow` gives them as stamps (float seconds) and ``seconds``
  (their difference, rounded to the microsecond).
* ``seq`` is handed out from a counter row locked until commit, so seqs become visible in
  order: a reader that saw seq N never later finds a new row below N (the billing export's
  cursor relies on that; a PostgreSQL sequence would not promise it).
* Cursors only move forward: ``new_cursor < expected_cursor`` is a :class:`ValueError`.
* ``limit`` of ``rows``/``samples`` is clamped to 1..10,000. A sample's ``seq`` is an identity
  (PostgreSQL may make it visible out of order): page samples by it, do not export by it.
* Writes go in multi-row statements of 100 rows (one round trip each on PostgreSQL).
* On PostgreSQL ledger writes do not take the object writers' lock (nor wake watches); on
  SQLite they share its one writer, as every write does.
"""

from __future__ import annotations

import builtins
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .base import MICROS, Store, StoreError, dumps, loads, to_micros
from .guard import guard_methods, guard_of
from .sql import Cursor, SqlStore

HOUR_US = 3600 * MICROS
ACCOUNTANT = "accountant"
ROWS_COUNTER = "rows"
"""The counter of usage rows' ``seq`` (created with the schema)."""
MAX_LIMIT = 10_000
CHUNK = 100
"""Rows per multi-row statement (at most 14 parameters each; SQLite allows 32,766)."""


GUARDED = ("cursor", "min_cursor", "open_states", "commit_fold", "rows", "row", "summary",
           "rebuild_hours", "add_samples", "samples", "sample_summary", "export_cursor",
           "advance_export")
"""The methods the loop guard (``SCS_LOOP_GUARD=1``) reports when called on an event loop."""


class CursorMoved(StoreError):
    """A compare-and-set on a cursor lost: someone else advanced it (another leader)."""

    def __init__(self, name: str, expected: int, actual: int) -> None:
        super().__init__(f"cursor {name!r} is at {actual}, not {expected}")
        self.name, self.expected, self.actual = name, expected, actual


# -- what goes in and what comes out ---------------------------------------------------------
class MeterLike(Protocol):
    @property
    def part(self) -> str: ...
    @property
    def flavor(self) -> str: ...
    @property
    def volume_type(self) -> str: ...
    @property
    def size_gib(self) -> int: ...
    @property
    def count(self) -> int: ...


class UsageLike(Protocol):
    """A usage row to append: one meter of one object over ``[start_us, end_us)``."""

    @property
    def tenant(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def uid(self) -> str: ...
    @property
    def meter(self) -> MeterLike: ...
    @property
    def start_us(self) -> int: ...
    @property
    def end_us(self) -> int: ...


@dataclass(frozen=True)
class UsageRow:
    """A stored usage row (what the API and the billing export read)."""

    seq: int
    tenant: str
    namespace: str
    kind: str
    name: str
    uid: str
    part: str
    flavor: str
    volume_type: str
    size_gib: int
    count: int
    start: float
    end: float
    seconds: float
    source: str = "derived"

    @property
    def start_us(self) -> int:
        return to_micros(self.start)

    @property
    def end_us(self) -> int:
        return to_micros(self.end)


@dataclass(frozen=True)
class SummaryItem:
    """One group of :meth:`Ledger.summary`: seconds of the rows (clipped to the range), and
    seconds weighted by ``size_gib`` (volume GiB-seconds) and by ``count`` (node-seconds)."""

    kind: str
    part: str
    flavor: str
    volume_type: str
    rows: int
    seconds: float
    gib_seconds: float
    count_seconds: float


@dataclass(frozen=True)
class Sample:
    """A Ceilometer sample to store (``timestamp``: seconds since the epoch)."""

    message_id: str
    project_id: str
    tenant: str
    counter_name: str
    counter_type: str
    unit: str
    volume: float
    timestamp: float
    resource_id: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class StoredSample:
    seq: int
    sample: Sample


@dataclass(frozen=True)
class SampleSummaryItem:
    counter_name: str
    unit: str
    samples: int
    volume: float


# -- schema ----------------------------------------------------------------------------------
def _schema(text: str, integer: str, real: str, blob_text: str) -> tuple[str, ...]:
    ddl = (text.replace("{INT}", integer).replace("{REAL}", real).replace("{TEXT}", blob_text))
    return tuple(s.strip() for s in ddl.split(";") if s.strip())


_DDL = """
CREATE TABLE IF NOT EXISTS ledger_counters (
    name {TEXT} PRIMARY KEY,
    value {INT} NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_rows (
    seq {INT} PRIMARY KEY,
    tenant {TEXT} NOT NULL,
    namespace {TEXT} NOT NULL,
    kind {TEXT} NOT NULL,
    name {TEXT} NOT NULL,
    uid {TEXT} NOT NULL,
    part {TEXT} NOT NULL,
    flavor {TEXT} NOT NULL,
    volume_type {TEXT} NOT NULL,
    size_gib {INT} NOT NULL,
    count {INT} NOT NULL,
    start_us {INT} NOT NULL,
    end_us {INT} NOT NULL,
    source {TEXT} NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_rows_tenant ON ledger_rows (tenant, start_us);
CREATE INDEX IF NOT EXISTS ledger_rows_namespace ON ledger_rows (namespace, seq);
CREATE INDEX IF NOT EXISTS ledger_rows_tenant_seq ON ledger_rows (tenant, seq);
CREATE TABLE IF NOT EXISTS ledger_hours (
    tenant {TEXT} NOT NULL,
    hour_us {INT} NOT NULL,
    kind {TEXT} NOT NULL,
    part {TEXT} NOT NULL,
    flavor {TEXT} NOT NULL,
    volume_type {TEXT} NOT NULL,
    row_count {INT} NOT NULL,
    seconds_us {INT} NOT NULL,
    gib_us {INT} NOT NULL,
    count_us {INT} NOT NULL,
    PRIMARY KEY (tenant, hour_us, kind, part, flavor, volume_type)
);
CREATE TABLE IF NOT EXISTS ledger_folds (
    fold {TEXT} PRIMARY KEY,
    position {INT} NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_states (
    fold {TEXT} NOT NULL,
    uid {TEXT} NOT NULL,
    state {TEXT} NOT NULL,
    PRIMARY KEY (fold, uid)
);
CREATE TABLE IF NOT EXISTS ledger_exports (
    sink {TEXT} PRIMARY KEY,
    position {INT} NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_samples (
    seq {SERIAL},
    message_id {TEXT} NOT NULL UNIQUE,
    project_id {TEXT} NOT NULL,
    tenant {TEXT} NOT NULL,
    counter_name {TEXT} NOT NULL,
    counter_type {TEXT} NOT NULL,
    unit {TEXT} NOT NULL,
    volume {REAL} NOT NULL,
    stamp_us {INT} NOT NULL,
    resource_id {TEXT} NOT NULL,
    raw {TEXT} NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_samples_tenant ON ledger_samples (tenant, stamp_us)
"""

SQLITE_SCHEMA = _schema(_DDL.replace("{SERIAL}", "INTEGER PRIMARY KEY"),
                        "INTEGER", "REAL", "TEXT") + (
    "INSERT OR IGNORE INTO ledger_counters (name, value) VALUES ('rows', 0)",)
POSTGRES_SCHEMA = _schema(
    _DDL.replace("{SERIAL}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    "BIGINT", "DOUBLE PRECISION", 'TEXT COLLATE "C"') + (
    "INSERT INTO ledger_counters (name, value) VALUES ('rows', 0) "
    "ON CONFLICT (name) DO NOTHING",)
RELATIONS = ("ledger_counters", "ledger_rows", "ledger_rows_tenant", "ledger_rows_namespace",
             "ledger_rows_tenant_seq", "ledger_hours", "ledger_folds", "ledger_states",
             "ledger_exports", "ledger_samples", "ledger_samples_tenant")
"""Every table and index above (PostgreSQL skips its DDL when all exist)."""

ROW_COLUMNS = ("seq, tenant, namespace, kind, name, uid, part, flavor, volume_type, size_gib, "
               "count, start_us, end_us, source")
SAMPLE_COLUMNS = ("message_id, project_id, tenant, counter_name, counter_type, unit, volume, "
                  "stamp_us, resource_id, raw")


# -- the ledger ------------------------------------------------------------------------------
class Ledger:
    """The typed API over the ledger tables (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        if not isinstance(store, SqlStore):
            raise TypeError(f"the ledger needs an SQL store, not {type(store).__name__}")
        self.store = store
        guard = guard_of(store)
        if guard is not None:
            guard_methods(guard, self, GUARDED)

    # -- the accountant's fold ---------------------------------------------------------------
    def cursor(self, fold: str = ACCOUNTANT) -> int:
        with self.store._read_one() as cur:
            row = cur.execute("SELECT position FROM ledger_folds WHERE fold = ?",
                              (fold,)).fetchone()
        return 0 if row is None else int(row[0])

    def min_cursor(self) -> int | None:
        with self.store._read_one() as cur:
            row = cur.execute("SELECT MIN(position) FROM ledger_folds").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def open_states(self, fold: str = ACCOUNTANT) -> dict[str, dict[str, Any]]:
        with self.store._read_tx() as cur:
            rows = cur.execute("SELECT uid, state FROM ledger_states WHERE fold = ?",
                               (fold,)).fetchall()
        return {str(uid): loads(_bytes(state)) for uid, state in rows}

    def commit_fold(self, expected_cursor: int, new_cursor: int, rows: Sequence[UsageLike],
                    open_states: Mapping[str, dict[str, Any] | None],
                    fold: str = ACCOUNTANT) -> builtins.list[int]:
        if new_cursor < expected_cursor:
            raise ValueError(f"a cursor never moves back ({expected_cursor} → {new_cursor})")
        values = [_row_values(row) for row in rows]
        states = [(uid, None if s is None else dumps(s).decode()) for uid, s in
                  open_states.items()]
        with self.store._side_tx() as cur:
            _compare_and_set(cur, "ledger_folds", "fold", fold, expected_cursor, new_cursor)
            seqs = _append_rows(cur, values)
            _roll_up(cur, values)
            closed = [(fold, uid) for uid, state in states if state is None]
            _insert_many(cur, "DELETE FROM ledger_states WHERE (fold, uid) IN (VALUES {})",
                         closed)
            _insert_many(cur, "INSERT INTO ledger_states (fold, uid, state) VALUES {} "
                         "ON CONFLICT (fold, uid) DO UPDATE SET state = excluded.state",
                         [(fold, uid, state) for uid, state in states if state is not None])
        return seqs

    # -- reading rows ------------------------------------------------------------------------
    def rows(self, *, tenant: str | None = None, namespace: str | None = None,
             kind: str | None = None, uid: str | None = None, start: float | None = None,
             end: float | None = None, after_seq: int = 0,
             limit: int = 500) -> builtins.list[UsageRow]:
        where, params = ["seq > ?"], [int(after_seq)]
        for column, value in (("tenant", tenant), ("namespace", namespace), ("kind", kind),
                              ("uid", uid)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)  # type: ignore[arg-type]
        if start is not None:
            where.append("end_us > ?")
            params.append(to_micros(start))
        if end is not None:
            where.append("start_us < ?")
            params.append(to_micros(end))
        limit = max(1, min(int(limit), MAX_LIMIT))
        # Only constant clauses are joined; every value is a bound parameter.
        sql = (f"SELECT {ROW_COLUMNS} FROM ledger_rows WHERE {' AND '.join(where)} "  # noqa: S608
               f"ORDER BY seq LIMIT {limit}")  # nosec B608
        with self.store._read_one() as cur:
            found = cur.execute(sql, tuple(params)).fetchall()
        return [_usage_row(r) for r in found]

    def row(self, seq: int) -> UsageRow | None:
        with self.store._read_one() as cur:
            found = cur.execute(f"SELECT {ROW_COLUMNS} FROM ledger_rows WHERE seq = ?",  # noqa: S608  # nosec B608
                                (int(seq),)).fetchone()
        return None if found is None else _usage_row(found)

    def summary(self, tenant: str, start: float, end: float) -> builtins.list[SummaryItem]:
        """Whole hours from the hourly roll-up, the partial hours at either edge from the
        rows (clipped): a month is ~720 roll-up rows per group, whatever the row count."""
        lo, hi = to_micros(start), to_micros(end)
        if hi <= lo:
            return []
        first_full, last_full = -(-lo // HOUR_US) * HOUR_US, hi // HOUR_US * HOUR_US
        totals: dict[tuple[str, str, str, str], list[float]] = {}
        with self.store._read_tx() as cur:
            if first_full < last_full:
                _add(totals, cur.execute(SUMMARY_HOURS, (tenant, first_full, last_full)))
                edges = [(lo, first_full), (last_full, hi)]
            else:
                edges = [(lo, hi)]
            for edge_lo, edge_hi in edges:
                if edge_lo < edge_hi:
                    # a row lies within one hour: its start is at most an hour before edge_lo
                    clip = (edge_hi, edge_hi, edge_lo, edge_lo)
                    _add(totals, cur.execute(SUMMARY_ROWS, clip * 3 + (
                        tenant, edge_lo - HOUR_US, edge_hi, edge_lo)))
        return [SummaryItem(*group, int(t[0]), t[1] / MICROS, t[2] / MICROS, t[3] / MICROS)
                for group, t in sorted(totals.items())]

    def rebuild_hours(self) -> None:
        """Recompute the hourly roll-up from the rows (after rows were loaded in bulk)."""
        with self.store._side_tx() as cur:
            cur.execute("DELETE FROM ledger_hours")
            cur.execute(REBUILD_HOURS)

    # -- Ceilometer samples ------------------------------------------------------------------
    def add_samples(self, samples: Iterable[Sample]) -> tuple[int, int]:
        unique: dict[str, tuple[Any, ...]] = {}
        total = 0
        for sample in samples:
            total += 1
            unique.setdefault(sample.message_id, _sample_values(sample))
        values = list(unique.values())
        if not values:
            return 0, total
        with self.store._side_tx() as cur:
            added = len(_insert_many(
                cur, f"INSERT INTO ledger_samples ({SAMPLE_COLUMNS}) VALUES {{}} "  # noqa: S608  # nosec B608
                "ON CONFLICT (message_id) DO NOTHING RETURNING message_id", values))
        return added, total - added

    def samples(self, *, tenant: str | None = None, start: float | None = None,
                end: float | None = None, after_seq: int = 0,
                limit: int = 500) -> builtins.list[StoredSample]:
        where, params = ["seq > ?"], [int(after_seq)]
        if tenant is not None:
            where.append("tenant = ?")
            params.append(tenant)  # type: ignore[arg-type]
        if start is not None:
            where.append("stamp_us >= ?")
            params.append(to_micros(start))
        if end is not None:
            where.append("stamp_us < ?")
            params.append(to_micros(end))
        limit = max(1, min(int(limit), MAX_LIMIT))
        sql = (f"SELECT seq, {SAMPLE_COLUMNS} FROM ledger_samples "  # noqa: S608  # nosec B608
               f"WHERE {' AND '.join(where)} ORDER BY seq LIMIT {limit}")
        with self.store._read_one() as cur:
            found = cur.execute(sql, tuple(params)).fetchall()
        return [StoredSample(int(r[0]), Sample(
            str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]), float(r[7]),
            int(r[8]) / MICROS, str(r[9]), loads(_bytes(r[10])))) for r in found]

    def sample_summary(self, tenant: str, start: float,
                       end: float) -> builtins.list[SampleSummaryItem]:
        with self.store._read_one() as cur:
            found = cur.execute(
                "SELECT counter_name, unit, COUNT(*), SUM(volume) FROM ledger_samples "
                "WHERE tenant = ? AND stamp_us >= ? AND stamp_us < ? "
                "GROUP BY counter_name, unit ORDER BY counter_name, unit",
                (tenant, to_micros(start), to_micros(end))).fetchall()
        return [SampleSummaryItem(str(c), str(u), int(n), float(v)) for c, u, n, v in found]

    # -- billing export cursors --------------------------------------------------------------
    def export_cursor(self, sink: str) -> int:
        with self.store._read_one() as cur:
            row = cur.execute("SELECT position FROM ledger_exports WHERE sink = ?",
                              (sink,)).fetchone()
        return 0 if row is None else int(row[0])

    def advance_export(self, sink: str, expected: int, new: int) -> None:
        if new < expected:
            raise ValueError(f"an export cursor never moves back ({expected} → {new})")
        with self.store._side_tx() as cur:
            _compare_and_set(cur, "ledger_exports", "sink", sink, expected, new)


# -- the hourly roll-up ----------------------------------------------------------------------
PART = "CASE WHEN part LIKE 'pool/%' THEN 'pool' ELSE part END"
CLIPPED = ("(CASE WHEN end_us < ? THEN end_us ELSE ? END"
           " - CASE WHEN start_us > ? THEN start_us ELSE ? END)")
SUMMARY_ROWS = (
    f"SELECT kind, {PART}, flavor, volume_type, COUNT(*), SUM({CLIPPED}), "  # noqa: S608  # nosec B608
    f"SUM(CAST(size_gib AS DOUBLE PRECISION) * {CLIPPED}), "
    f"SUM(CAST(count AS DOUBLE PRECISION) * {CLIPPED}) FROM ledger_rows "
    "WHERE tenant = ? AND start_us >= ? AND start_us < ? AND end_us > ? "
    f"GROUP BY kind, {PART}, flavor, volume_type")
"""The rows' part of a summary, each clipped to the range (used for partial hours only).
Weighted sums in floating point: size × microseconds summed over many rows would overflow
SQLite's 64-bit integer SUM."""
SUMMARY_HOURS = (
    "SELECT kind, part, flavor, volume_type, SUM(row_count), SUM(seconds_us), "
    "SUM(CAST(gib_us AS DOUBLE PRECISION)), SUM(CAST(count_us AS DOUBLE PRECISION)) "
    "FROM ledger_hours WHERE tenant = ? AND hour_us >= ? AND hour_us < ? "
    "GROUP BY kind, part, flavor, volume_type")
REBUILD_HOURS = (
    "INSERT INTO ledger_hours (tenant, hour_us, kind, part, flavor, volume_type, row_count, "  # noqa: S608  # nosec B608
    "seconds_us, gib_us, count_us) "
    f"SELECT tenant, start_us / {HOUR_US} * {HOUR_US}, kind, {PART}, flavor, volume_type, "
    "COUNT(*), SUM(end_us - start_us), SUM(size_gib * (end_us - start_us)), "
    "SUM(count * (end_us - start_us)) FROM ledger_rows "
    f"GROUP BY tenant, start_us / {HOUR_US} * {HOUR_US}, kind, {PART}, flavor, volume_type")
UPSERT_HOUR = (
    "INSERT INTO ledger_hours (tenant, hour_us, kind, part, flavor, volume_type, row_count, "
    "seconds_us, gib_us, count_us) VALUES {} "
    "ON CONFLICT (tenant, hour_us, kind, part, flavor, volume_type) DO UPDATE SET "
    "row_count = ledger_hours.row_count + excluded.row_count, "
    "seconds_us = ledger_hours.seconds_us + excluded.seconds_us, "
    "gib_us = ledger_hours.gib_us + excluded.gib_us, "
    "count_us = ledger_hours.count_us + excluded.count_us")


def _roll_up(cur: Cursor, values: builtins.list[tuple[Any, ...]]) -> None:
    """Add rows (:func:`_row_values` tuples) to the hourly roll-up: exact integers (a row's
    weights fit 64 bits; an hour's sum of them does for any real fleet)."""
    hours: dict[tuple[Any, ...], list[int]] = {}
    for tenant, _ns, kind, _name, _uid, part, flavor, vtype, gib, count, start, end, _ in values:
        group = (tenant, start // HOUR_US * HOUR_US, kind,
                 "pool" if part.startswith("pool/") else part, flavor, vtype)
        total = hours.setdefault(group, [0, 0, 0, 0])
        seconds = end - start
        total[0] += 1
        total[1] += seconds
        total[2] += gib * seconds
        total[3] += count * seconds
    _insert_many(cur, UPSERT_HOUR, [(*group, *total) for group, total in hours.items()])


def _add(totals: dict[tuple[str, str, str, str], list[float]], found: Any) -> None:
    for kind, part, flavor, vtype, rows, seconds, gib, count in found.fetchall():
        total = totals.setdefault((str(kind), str(part), str(flavor), str(vtype)),
                                  [0, 0, 0.0, 0.0])
        total[0] += int(rows)
        total[1] += int(seconds)
        total[2] += float(gib)
        total[3] += float(count)


# -- helpers ---------------------------------------------------------------------------------
def _compare_and_set(cur: Cursor, table: str, column: str, name: str, expected: int,
                     new: int) -> None:
    """Move the cursor ``name`` from ``expected`` to ``new`` or raise :class:`CursorMoved`.
    The UPDATE's row lock makes a concurrent second writer re-check ``position`` after the
    first commits (PostgreSQL READ COMMITTED), so exactly one of two wins."""
    # ``table`` and ``column`` are constants of this module, never input.
    cur.execute(f"INSERT INTO {table} ({column}, position) VALUES (?, 0) "  # noqa: S608  # nosec B608
                f"ON CONFLICT ({column}) DO NOTHING", (name,))
    done = cur.execute(f"UPDATE {table} SET position = ? "  # noqa: S608  # nosec B608
                       f"WHERE {column} = ? AND position = ? RETURNING position",
                       (new, name, expected)).fetchone()
    if done is None:
        actual = cur.execute(f"SELECT position FROM {table} WHERE {column} = ?",  # noqa: S608  # nosec B608
                             (name,)).fetchone()
        raise CursorMoved(name, expected, int(actual[0]) if actual else 0)


def _append_rows(cur: Cursor, values: builtins.list[tuple[Any, ...]]) -> builtins.list[int]:
    """Insert rows with the next seqs; the counter row stays locked until commit."""
    if not values:
        return []
    last = int(cur.execute("UPDATE ledger_counters SET value = value + ? WHERE name = ? "
                           "RETURNING value", (len(values), ROWS_COUNTER)).fetchone()[0])
    first = last - len(values) + 1
    _insert_many(cur, f"INSERT INTO ledger_rows ({ROW_COLUMNS}) VALUES {{}}",  # noqa: S608  # nosec B608
                 [(seq, *row) for seq, row in enumerate(values, start=first)])
    return list(range(first, last + 1))


def _insert_many(cur: Cursor, sql: str, values: builtins.list[tuple[Any, ...]]
                 ) -> builtins.list[Any]:
    """``sql`` (``{}`` where the VALUES lists go) for ``values`` in multi-row statements of
    :data:`CHUNK` rows: on PostgreSQL one round trip per statement, not per row (a 1,000-row
    fold commit took 190 ms row by row). Returns what the statements RETURNING gave."""
    out: builtins.list[Any] = []
    for i in range(0, len(values), CHUNK):
        chunk = values[i:i + CHUNK]
        marks = ", ".join(["(" + ", ".join(["?"] * len(chunk[0])) + ")"] * len(chunk))
        found = cur.execute(sql.format(marks), tuple(v for row in chunk for v in row))
        if "RETURNING" in sql:
            out += found.fetchall()
    return out


def _row_values(row: UsageLike) -> tuple[Any, ...]:
    """The columns after ``seq``; refuses rows the ledger's queries could not trust."""
    start, end = int(row.start_us), int(row.end_us)
    if end < start:
        raise ValueError(f"usage row of {row.uid} ends ({end}) before it starts ({start})")
    if end > start and start // HOUR_US != (end - 1) // HOUR_US:
        raise ValueError(f"usage row of {row.uid} crosses a full hour ({start}–{end})")
    meter = row.meter
    if int(meter.size_gib) < 0 or int(meter.count) < 0:
        raise ValueError(f"usage row of {row.uid}: negative size or count")
    return (str(row.tenant), str(row.namespace), str(row.kind), str(row.name), str(row.uid),
            str(meter.part), str(meter.flavor), str(meter.volume_type), int(meter.size_gib),
            int(meter.count), start, end, "derived")


def _usage_row(r: Sequence[Any]) -> UsageRow:
    start, end = int(r[11]), int(r[12])
    return UsageRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]),
                    str(r[6]), str(r[7]), str(r[8]), int(r[9]), int(r[10]), start / MICROS,
                    end / MICROS, (end - start) / MICROS, str(r[13]))


def _sample_values(sample: Sample) -> tuple[Any, ...]:
    volume, stamp = float(sample.volume), float(sample.timestamp)
    if not (math.isfinite(volume) and math.isfinite(stamp)):
        raise ValueError(f"sample {sample.message_id}: volume and timestamp must be finite")
    if not sample.message_id:
        raise ValueError("a sample needs a message_id")
    return (sample.message_id, sample.project_id, sample.tenant, sample.counter_name,
            sample.counter_type, sample.unit, volume, to_micros(stamp), sample.resource_id,
            json.dumps(sample.raw, separators=(",", ":"), ensure_ascii=False))


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)
