"""Usage-summary latency over a million ledger rows, on SQLite and PostgreSQL (issue 16).

    .venv/bin/python -m bench.ledger_summary [--rows 1000000] [--backend sqlite --backend postgres]

Loads ``--rows`` usage rows straight into the ledger tables (bulk inserts; loading is not what
is measured), half of them one large tenant's (a month of hourly rows), the rest spread over
500 small tenants, then times :meth:`Ledger.summary` — the SQL aggregation the UsageSummary
API and ``scs usage`` run — for the large tenant over the month (every one of its rows
aggregated), over one day, and for a small tenant over the month. Prints the median and the
slowest of seven runs each; it asserts no timing (machines differ), it reports.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from bench.common import PostgresServer
from central_api.store import open_store
from central_api.store.ledger import ROW_COLUMNS, Ledger

US = 1_000_000
HOUR = 3600 * US
T0 = 1767225600 * US
"""2026-01-01T00:00:00Z."""
DAYS = 30
KINDS = (("Server", "", "SCS-2V-4", "", 0, 1), ("Server", "", "SCS-4V-16", "", 0, 1),
         ("Volume", "", "", "ssd", 100, 1), ("FloatingIP", "", "", "", 0, 1),
         ("Cluster", "pool/workers", "SCS-4V-8", "", 0, 3),
         ("Cluster", "control-plane", "SCS-2V-4", "", 0, 1))


def generate(count: int, seed: int = 16) -> Iterator[tuple[object, ...]]:
    rng = random.Random(seed)  # noqa: S311 - test data
    for seq in range(1, count + 1):
        tenant = "big" if seq % 2 else f"small-{rng.randrange(500)}"
        kind, part, flavor, vtype, size, nodes = KINDS[rng.randrange(len(KINDS))]
        hour = T0 + rng.randrange(DAYS * 24) * HOUR
        start = hour + (0 if rng.random() < 0.8 else rng.randrange(HOUR - US))
        yield (seq, tenant, tenant, kind, f"obj-{seq % 5000}", f"uid-{seq % 5000}", part,
               flavor, vtype, size, nodes, start, hour + HOUR, "derived")


def load_sqlite(path: Path, count: int) -> str:
    open_store(str(path)).close()  # the schema
    with sqlite3.connect(path) as db:
        db.executemany(f"INSERT INTO ledger_rows ({ROW_COLUMNS}) VALUES "  # noqa: S608
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", generate(count))
        db.execute("ANALYZE")
    _roll_up(f"sqlite://{path}")
    return f"sqlite://{path}"


def load_postgres(pg: PostgresServer, count: int) -> str:
    with psycopg.connect(pg.url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE ledger_bench")
    url = pg.url_for("ledger_bench")
    open_store(url).close()
    with psycopg.connect(url) as db:
        with db.cursor().copy(f"COPY ledger_rows ({ROW_COLUMNS}) FROM STDIN") as copy:  # type: ignore[arg-type]
            for row in generate(count):
                copy.write_row(row)
        db.commit()
        db.autocommit = True
        db.execute("VACUUM ANALYZE ledger_rows")
    _roll_up(url)
    return url


def _roll_up(url: str) -> None:
    """The hourly roll-up commit_fold keeps, for rows loaded around it."""
    store = open_store(url)
    try:
        started = time.perf_counter()
        Ledger(store).rebuild_hours()
        print(f"(roll-up of {url.split(':')[0]} rebuilt in {time.perf_counter() - started:.1f} s)",
              flush=True)
    finally:
        store.close()


Timing = tuple[str, int, float, float]
"""(case, rows aggregated or returned, median ms, max ms)."""


def measure(url: str, backend: str, count: int) -> list[Timing]:
    store = open_store(url)
    found: list[Timing] = []
    ledger = Ledger(store)
    cases = (("big tenant, 30 days", "big", T0, T0 + DAYS * 24 * HOUR),
             ("big tenant, 1 day", "big", T0 + 10 * 24 * HOUR, T0 + 11 * 24 * HOUR),
             ("big tenant, 29 days from 00:30", "big", T0 + HOUR // 2,
              T0 + 29 * 24 * HOUR + HOUR // 2),
             ("small tenant, 30 days", "small-7", T0, T0 + DAYS * 24 * HOUR))
    try:
        for name, tenant, lo, hi in cases:
            ledger.summary(tenant, lo / US, hi / US)  # warm the cache
            times, rows = [], 0
            for _ in range(7):
                started = time.perf_counter()
                items = ledger.summary(tenant, lo / US, hi / US)
                times.append(time.perf_counter() - started)
                rows = sum(i.rows for i in items)
            found.append((f"summary, {name}", rows, statistics.median(times) * 1000,
                          max(times) * 1000))
        pages = (("rows page, all", {}), ("rows page, tenant big", {"tenant": "big"}),
                 ("rows page, namespace small-7", {"namespace": "small-7"}))
        for name, filters in pages:
            times = []
            for i in range(7):
                started = time.perf_counter()
                ledger.rows(after_seq=count // 2 + i * 1000, limit=500, **filters)
                times.append(time.perf_counter() - started)
            found.append((f"{name} (500 after seq {count // 2:,})", 500,
                          statistics.median(times) * 1000, max(times) * 1000))
    finally:
        store.close()
    return found


def run(rows: int, backends: list[str]) -> dict[str, list[Timing]]:
    """Every case on every backend (a PostgreSQL of its own), loaded with ``rows`` rows."""
    results: dict[str, list[Timing]] = {}
    with tempfile.TemporaryDirectory(prefix="scs-ledger-bench-") as work:
        for backend in backends:
            if backend == "sqlite":
                url = load_sqlite(Path(work) / "ledger.db", rows)
                results[backend] = measure(url, backend, rows)
                continue
            pg = PostgresServer()
            try:
                pg.start()
                results[backend] = measure(load_postgres(pg, rows), backend, rows)
            finally:
                pg.cleanup()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"),
                        default=[])
    args = parser.parse_args(argv)
    print("| store | ledger rows | case | rows | median ms | max ms |")
    print("|---|---:|---|---:|---:|---:|")
    for backend, timings in run(args.rows, args.backend or ["sqlite", "postgres"]).items():
        for name, rows, median, slowest in timings:
            print(f"| {backend} | {args.rows:,} | {name} | {rows:,} | {median:.1f} | "
                  f"{slowest:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
