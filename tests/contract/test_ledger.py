"""The metering ledger (central_api/store/ledger.py), on SQLite and PostgreSQL.

What metering's exactness rests on: the fold's rows, open states and cursor commit together
or not at all, a moved cursor refuses the commit (two leaders for a moment), ``seq`` numbers
are gap-free and in commit order (the billing export's cursor), samples are kept once per
message id, the summary adds exactly what the rows hold, and compaction waits for the fold.
"""

from __future__ import annotations

import asyncio
import random
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from central_api.controllers.runner import Compactor
from central_api.kinds.metering import Meter, Usage
from central_api.store import open_store
from central_api.store.base import Key, Store
from central_api.store.guard import install
from central_api.store.ledger import CursorMoved, Ledger, Sample, UsageRow
from tests.contract.backends import Backend

US = 1_000_000
HOUR = 3600 * US
T0 = 1767261600 * US
"""2026-01-01T10:00:00Z in microseconds."""


def server(uid: str, start: int, end: int, tenant: str = "acme",
           flavor: str = "SCS-2V-4") -> Usage:
    return Usage(tenant, tenant, "Server", f"vm-{uid}", uid, Meter(flavor=flavor), start, end)


def all_rows(ledger: Ledger, **filters: Any) -> list[UsageRow]:
    out: list[UsageRow] = []
    after = 0
    while page := ledger.rows(after_seq=after, limit=7, **filters):
        out += page
        after = page[-1].seq
    return out


@pytest.fixture
def ledger(store: Store) -> Ledger:
    return Ledger(store)


# -- the fold's commit -----------------------------------------------------------------------
def test_a_fold_commit_writes_rows_states_and_cursor_together(ledger: Ledger) -> None:
    assert (ledger.cursor(), ledger.min_cursor(), ledger.open_states()) == (0, None, {})
    seqs = ledger.commit_fold(0, 42, [server("a", T0, T0 + HOUR), server("b", T0 + 5, T0 + 9)],
                              {"a": {"since": T0 + HOUR}, "b": {"since": 1}})
    assert seqs == [1, 2]
    assert (ledger.cursor(), ledger.min_cursor()) == (42, 42)
    assert ledger.open_states() == {"a": {"since": T0 + HOUR}, "b": {"since": 1}}
    row = ledger.row(1)
    assert row is not None and (row.uid, row.start_us, row.end_us, row.seconds,
                                row.flavor, row.source) == ("a", T0, T0 + HOUR, 3600.0,
                                                             "SCS-2V-4", "derived")
    ledger.commit_fold(42, 50, [], {"b": None, "a": {"since": 7}})
    assert ledger.open_states() == {"a": {"since": 7}}
    assert ledger.cursor() == 50


def test_a_moved_cursor_refuses_the_commit_and_writes_nothing(ledger: Ledger) -> None:
    ledger.commit_fold(0, 10, [server("a", T0, T0 + 60)], {"a": {"n": 1}})
    with pytest.raises(CursorMoved) as refused:
        ledger.commit_fold(5, 12, [server("b", T0, T0 + 60)], {"b": {"n": 2}})
    assert (refused.value.expected, refused.value.actual) == (5, 10)
    assert ledger.cursor() == 10
    assert [r.uid for r in all_rows(ledger)] == ["a"]
    assert ledger.open_states() == {"a": {"n": 1}}


def test_two_leaders_committing_from_one_cursor_let_exactly_one_win(
        store: Store, backend: Backend) -> None:
    """Threads on one store, and on PostgreSQL also a second store instance (replica)."""
    stores = [store] if backend.kind == "sqlite" else [store, backend.open()]
    Ledger(store).commit_fold(0, 100, [], {})
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def leader(n: int) -> None:
        ledger = Ledger(stores[n % len(stores)])
        barrier.wait()
        try:
            ledger.commit_fold(100, 200 + n, [server(f"u{n}", T0, T0 + 60)], {f"u{n}": {}})
            outcomes.append(f"won {n}")
        except CursorMoved:
            outcomes.append("lost")

    threads = [threading.Thread(target=leader, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for extra in stores[1:]:
        extra.close()
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1 and outcomes.count("lost") == 7
    n = int(winners[0].split()[1])
    ledger = Ledger(store)
    assert ledger.cursor() == 200 + n
    assert [r.uid for r in all_rows(ledger)] == [f"u{n}"]
    assert list(ledger.open_states()) == [f"u{n}"]


POISON = {
    "sqlite": ("CREATE TRIGGER poison BEFORE INSERT ON ledger_states WHEN NEW.uid = 'poison' "
               "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",),
    "postgres": (
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.uid = 'poison' THEN RAISE EXCEPTION 'injected failure'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER poison BEFORE INSERT ON ledger_states FOR EACH ROW "
        "EXECUTE FUNCTION poison()"),
}
"""A real failure inside the database, after the cursor and the rows were written in the
same transaction (the states come last)."""


def test_a_failure_in_the_middle_of_a_fold_commit_leaves_nothing(
        ledger: Ledger, backend: Backend) -> None:
    ledger.commit_fold(0, 10, [server("a", T0, T0 + 60)], {"a": {"n": 1}})
    for statement in POISON[backend.kind]:
        backend.query(statement)
    with pytest.raises(Exception, match="injected failure"):
        ledger.commit_fold(10, 20, [server("b", T0, T0 + 60), server("c", T0, T0 + 60)],
                           {"a": None, "b": {"n": 2}, "poison": {}})
    assert ledger.cursor() == 10
    assert [r.uid for r in all_rows(ledger)] == ["a"]
    assert ledger.open_states() == {"a": {"n": 1}}
    assert ledger.commit_fold(10, 20, [server("d", T0, T0 + 60)], {}) == [2]  # no seq gap


@pytest.mark.parametrize("bad", [
    server("x", T0 + 10, T0 + 5),                   # ends before it starts
    server("x", T0 + HOUR - 5, T0 + HOUR + 5),      # crosses a full hour
    Usage("acme", "acme", "Volume", "v", "x", Meter(size_gib=-1), T0, T0 + 5),
])
def test_a_bad_row_is_refused_before_anything_is_written(ledger: Ledger, bad: Usage) -> None:
    with pytest.raises(ValueError):
        ledger.commit_fold(0, 10, [server("ok", T0, T0 + 60), bad], {"ok": {}})
    assert (ledger.cursor(), all_rows(ledger), ledger.open_states()) == (0, [], {})


def test_a_cursor_never_moves_back(ledger: Ledger) -> None:
    ledger.commit_fold(0, 10, [], {})
    with pytest.raises(ValueError):
        ledger.commit_fold(10, 9, [], {})
    ledger.advance_export("billing", 0, 5)
    with pytest.raises(ValueError):
        ledger.advance_export("billing", 5, 4)


def test_seqs_are_gap_free_and_in_commit_order_across_concurrent_folds(
        store: Store, backend: Backend) -> None:
    """Several folds (their own cursors) commit at once; a reader polling meanwhile must
    never see a seq appear below one it already saw (the export cursor's premise)."""
    stores = [store] if backend.kind == "sqlite" else [store, backend.open()]
    done = threading.Event()
    violations: list[str] = []

    def reader() -> None:
        ledger, seen = Ledger(store), 0
        while not done.is_set():
            present = [r.seq for r in ledger.rows(limit=10_000)]
            missing_below = [s for s in range(1, seen + 1) if s not in set(present)]
            if missing_below:
                violations.append(f"saw {seen}, then {missing_below[:3]} missing")
            seen = max(present, default=seen)

    def fold(n: int) -> None:
        ledger = Ledger(stores[n % len(stores)])
        cursor = 0
        for i in range(15):
            ledger.commit_fold(cursor, cursor + 1, [server(f"{n}-{i}-{j}", T0, T0 + 60)
                                                    for j in range(3)], {}, fold=f"fold{n}")
            cursor += 1

    watcher = threading.Thread(target=reader)
    watcher.start()
    threads = [threading.Thread(target=fold, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    for extra in stores[1:]:
        extra.close()
    assert violations == []
    assert [r.seq for r in all_rows(Ledger(store))] == list(range(1, 4 * 15 * 3 + 1))
    assert Ledger(store).min_cursor() == 15


def test_the_ledger_survives_reopening_the_store(backend: Backend) -> None:
    first = backend.open()
    Ledger(first).commit_fold(0, 9, [server("a", T0, T0 + 60)], {"a": {"n": 1}})
    Ledger(first).advance_export("billing", 0, 1)
    first.close()
    second = backend.open()
    try:
        ledger = Ledger(second)
        assert (ledger.cursor(), ledger.open_states(), ledger.export_cursor("billing")) == (
            9, {"a": {"n": 1}}, 1)
        assert ledger.commit_fold(9, 10, [server("b", T0, T0 + 60)], {}) == [2]
    finally:
        second.close()


# -- reading rows ----------------------------------------------------------------------------
def test_rows_page_by_seq_with_filters(ledger: Ledger) -> None:
    rows = [server(f"u{i}", T0 + i * 60 * US, T0 + (i + 1) * 60 * US,
                   tenant="acme" if i % 3 else "other") for i in range(40)]
    ledger.commit_fold(0, 1, rows[:25], {})
    ledger.commit_fold(1, 2, rows[25:], {})
    assert [r.uid for r in all_rows(ledger)] == [f"u{i}" for i in range(40)]
    assert [r.uid for r in all_rows(ledger, namespace="other")] == [
        f"u{i}" for i in range(40) if i % 3 == 0]
    assert [r.uid for r in all_rows(ledger, tenant="acme", kind="Server")] == [
        f"u{i}" for i in range(40) if i % 3]
    assert all_rows(ledger, kind="Volume") == []
    overlapping = all_rows(ledger, start=(T0 + 120 * US) / US, end=(T0 + 300 * US) / US)
    assert [r.uid for r in overlapping] == ["u2", "u3", "u4"]
    assert ledger.rows(after_seq=38, limit=5)[0].seq == 39
    assert ledger.row(999) is None


def expected_summary(rows: list[Usage], tenant: str, lo: int, hi: int
                     ) -> dict[tuple[str, str, str, str], tuple[int, int, int, int]]:
    out: dict[tuple[str, str, str, str], tuple[int, int, int, int]] = {}
    for row in rows:
        clipped = min(row.end_us, hi) - max(row.start_us, lo)
        if row.tenant != tenant or row.end_us <= lo or row.start_us >= hi:
            continue
        m = row.meter
        group = (row.kind, "pool" if m.part.startswith("pool/") else m.part, m.flavor,
                 m.volume_type)
        n, s, g, c = out.get(group, (0, 0, 0, 0))
        out[group] = (n + 1, s + clipped, g + m.size_gib * clipped, c + m.count * clipped)
    return out


def random_rows(rng: random.Random, count: int) -> list[Usage]:
    rows = []
    for i in range(count):
        hour = T0 + rng.randrange(48) * HOUR
        start = hour + rng.randrange(HOUR)
        end = rng.randrange(start, hour + HOUR + 1)
        kind = rng.choice(["Server", "Volume", "Cluster", "FloatingIP"])
        meter = {"Server": Meter(flavor=rng.choice(["SCS-2V-4", "SCS-4V-16"])),
                 "Volume": Meter(volume_type=rng.choice(["ssd", "hdd"]),
                                 size_gib=rng.randrange(1, 2000)),
                 "Cluster": Meter(part=rng.choice(["control-plane", "pool/a", "pool/b"]),
                                  flavor="SCS-4V-8", count=rng.randrange(1, 9)),
                 "FloatingIP": Meter()}[kind]
        rows.append(Usage(rng.choice(["acme", "beta"]), "ns", kind, f"o{i}", f"u{i}", meter,
                          start, end))
    return rows


def test_summary_adds_exactly_what_the_rows_hold_clipped_to_the_range(
        ledger: Ledger) -> None:
    rng = random.Random(16)
    rows = random_rows(rng, 3000)
    for i in range(0, len(rows), 500):
        ledger.commit_fold(i, i + 500, rows[i:i + 500], {})
    ranges = [(T0, T0 + 48 * HOUR), (T0 + 3 * HOUR, T0 + 4 * HOUR),
              (T0 + 90 * 60 * US + 17, T0 + 30 * HOUR + 5), (T0 - HOUR, T0 + 1)]
    for rebuilt in (False, True):  # the hourly roll-up kept by commits, then recomputed
        if rebuilt:
            ledger.rebuild_hours()
        for tenant in ("acme", "beta"):
            for lo, hi in ranges:
                got = {(i.kind, i.part, i.flavor, i.volume_type):
                       (i.rows, round(i.seconds * US), round(i.gib_seconds * US),
                        round(i.count_seconds * US))
                       for i in ledger.summary(tenant, lo / US, hi / US)}
                assert got == expected_summary(rows, tenant, lo, hi)
    assert ledger.summary("acme", T0 / US, T0 / US) == []
    assert ledger.summary("nobody", T0 / US, (T0 + HOUR) / US) == []


# -- samples and export cursors --------------------------------------------------------------
def sample(message_id: str, volume: float = 1.0, tenant: str = "acme") -> Sample:
    return Sample(message_id, "p-1", tenant, "cpu", "cumulative", "ns", volume,
                  1767261600.25, "vm-1", {"message_id": message_id, "nested": {"ä": [1]}})


def test_samples_are_kept_once_per_message_id(ledger: Ledger) -> None:
    assert ledger.add_samples([sample("m1"), sample("m2"), sample("m1", volume=9)]) == (2, 1)
    assert ledger.add_samples([sample("m2"), sample("m3", tenant="beta")]) == (1, 1)
    assert ledger.add_samples([]) == (0, 0)
    stored = ledger.samples()
    assert [(s.seq > 0, s.sample.message_id, s.sample.volume) for s in stored] == [
        (True, "m1", 1.0), (True, "m2", 1.0), (True, "m3", 1.0)]
    assert stored[0].sample == sample("m1")
    assert [s.sample.message_id for s in ledger.samples(tenant="beta")] == ["m3"]
    assert [s.sample.message_id for s in ledger.samples(after_seq=stored[0].seq, limit=1)] == [
        "m2"]
    summary = ledger.sample_summary("acme", 1767261600, 1767261601)
    assert [(i.counter_name, i.unit, i.samples, i.volume) for i in summary] == [
        ("cpu", "ns", 2, 2.0)]


def test_concurrent_ingest_of_the_same_samples_stores_each_once(
        store: Store, backend: Backend) -> None:
    stores = [store] if backend.kind == "sqlite" else [store, backend.open()]
    counts: list[tuple[int, int]] = []

    def ingest(n: int) -> None:
        counts.append(Ledger(stores[n % len(stores)]).add_samples(
            [sample(f"m{i}") for i in range(200)]))

    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for extra in stores[1:]:
        extra.close()
    assert sum(added for added, _ in counts) == 200
    assert sum(dup for _, dup in counts) == 600
    assert len(Ledger(store).samples(limit=1000)) == 200


def test_a_bad_sample_stores_nothing(ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        ledger.add_samples([sample("m1"), sample("m2", volume=float("nan"))])
    assert ledger.samples() == []


def test_export_cursors_move_by_compare_and_set(ledger: Ledger) -> None:
    assert ledger.export_cursor("billing") == 0
    ledger.advance_export("billing", 0, 10)
    with pytest.raises(CursorMoved):
        ledger.advance_export("billing", 0, 20)
    ledger.advance_export("billing", 10, 20)
    assert (ledger.export_cursor("billing"), ledger.export_cursor("other")) == (20, 0)
    assert ledger.min_cursor() is None  # export cursors hold no compaction


# -- compaction ------------------------------------------------------------------------------
def test_compaction_never_passes_the_accountants_cursor(store: Store, ledger: Ledger) -> None:
    for i in range(10):
        store.create(Key("core/configmaps", "default", f"c{i}"),
                     {"metadata": {"name": f"c{i}", "namespace": "default"}})
        store.update(Key("core/configmaps", "default", f"c{i}"),
                     {"metadata": {"name": f"c{i}", "namespace": "default"}, "data": {}}, None)
    ledger.commit_fold(0, 5, [], {})
    compactor = Compactor(SimpleNamespace(store=store), history=10,  # type: ignore[arg-type]
                          hold=ledger.min_cursor)
    compactor.tick(now=0)
    compactor.tick(now=20)  # the revision seen at 0 is older than the history
    assert store.compacted_revision() == 5
    assert [e.revision for e in store.events_since(5, limit=1)] == [6]
    ledger.commit_fold(5, store.current_revision(), [], {})
    compactor.tick(now=40)
    assert store.compacted_revision() == store.current_revision()
    unheld = Compactor(SimpleNamespace(store=store), history=10)  # type: ignore[arg-type]
    unheld.tick(now=0)
    assert unheld.tick(now=20) == 0


@pytest.mark.slow
def test_the_loop_guard_reports_ledger_calls_on_the_event_loop(pg_url: str) -> None:
    """On PostgreSQL every ledger call is a round trip: like the store's own calls, one made
    on an event loop is reported when the guard is on (SCS_LOOP_GUARD=1)."""
    store = open_store(pg_url)
    try:
        guard = install(store)
        ledger = Ledger(store)

        async def main() -> None:
            ledger.cursor()  # on the loop: reported
            await asyncio.to_thread(ledger.summary, "acme", 0, 1)  # in a thread: fine

        asyncio.run(main())
        assert [site.rsplit(" -> ", 1)[1] for site in guard.calls] == ["cursor"]
    finally:
        store.close()
