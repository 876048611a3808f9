"""Billing export on a real server to a real HTTP sink that fails on purpose: batches in
``seq`` order with ``Idempotency-Key: <sink>-<first>-<last>``, retried with backoff until a
2xx, never reordered, and — across a ``kill -9`` between the POST and the cursor advance —
the same batch re-sent with the same key after the restart.

The rows are written into the server's ledger from the test process (a fold of its own
name, as the accountant commits its rows), so the export is tested without waiting for
hours of usage to close."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from central_api.kinds.metering import Meter, Usage
from tests.polling import poll
from tests.server import ScsServer

from .sink import FailingSink
from .support import ServerLedger, server_ledger

SINK = "billing"
FOLD = "export-test"
HOUR = 1_893_553_200  # 2030-01-02T03:00:00Z
_minute = itertools.count()


def write_rows(ledger: ServerLedger, n: int) -> list[int]:
    """``n`` one-minute rows committed in one fold step; their seqs."""
    rows = []
    for _ in range(n):
        minute = next(_minute) % 59
        start = (HOUR + 60 * minute) * 1_000_000
        rows.append(Usage("acme", "acme-prod", "Server", f"vm-{minute}", str(uuid.uuid4()),
                        Meter(flavor="SCS-2V-4"), start, start + 60_000_000))
    cursor = ledger.ledger.cursor(FOLD)
    return list(ledger.ledger.commit_fold(cursor, cursor + 1, rows, {}, fold=FOLD))


def start_server(tmp_path: Path, sink: FailingSink, batch_size: int) -> ScsServer:
    token = tmp_path / "sink-token"
    token.write_text("s3cret-billing-token\n")
    server = ScsServer(config={"identity": {"type": "none"}, "metering": {"sinks": [
        {"name": SINK, "url": sink.url, "batchSize": batch_size, "tokenFile": str(token)}]}})
    return server.start()


@pytest.fixture
def sink() -> Iterator[FailingSink]:
    found = FailingSink()
    yield found
    found.stop()


def accepted_seqs(sink: FailingSink) -> list[int]:
    return [seq for r in sink.accepted() for seq in r.seqs]


@pytest.mark.slow
def test_batches_arrive_in_order_once_the_sink_recovers(tmp_path: Path,
                                                        sink: FailingSink) -> None:
    sink.plan = ["503", "503-retry-0", "drop", "500"]
    server = start_server(tmp_path, sink.start(), batch_size=3)
    ledger = server_ledger(server)
    try:
        seqs = write_rows(ledger, 4) + write_rows(ledger, 3)
        poll(lambda: accepted_seqs(sink) == seqs or None, 90, 0.2, "all rows exported")
    finally:
        ledger.close()
        server.cleanup()
    keys = [f"{SINK}-{seqs[0]}-{seqs[2]}", f"{SINK}-{seqs[3]}-{seqs[5]}",
            f"{SINK}-{seqs[6]}-{seqs[6]}"]
    assert [r.key for r in sink.accepted()] == keys
    # the four failures were all the first batch: nothing after it before it was accepted
    assert [(r.key, r.answered) for r in sink.received] == [
        (keys[0], 503), (keys[0], 503), (keys[0], 0), (keys[0], 500), (keys[0], 200),
        (keys[1], 200), (keys[2], 200)]
    first = sink.accepted()[0]
    assert first.body["idempotencyKey"] == first.key
    assert first.authorization == "Bearer s3cret-billing-token"
    row = first.body["rows"][0]
    assert (row["tenant"], row["kind"], row["flavor"], row["seconds"]) == (
        "acme", "Server", "SCS-2V-4", 60.0)
    assert row["startTime"].endswith("Z") and row["end"] - row["start"] == 60.0


@pytest.mark.slow
def test_kill_between_post_and_cursor_advance_resends_the_same_batch(
        tmp_path: Path, sink: FailingSink) -> None:
    sink.plan = ["hold"]
    server = start_server(tmp_path, sink.start(), batch_size=5)
    ledger = server_ledger(server)
    try:
        first = write_rows(ledger, 2)
        assert sink.holding.wait(60), "the first batch was never posted"
        server.kill()  # the sink has the POST; the cursor has not moved
        sink.release.set()
        later = write_rows(ledger, 2)  # while down: must not join the batch in flight
        server.start()
        poll(lambda: accepted_seqs(sink) == first + later or None, 90, 0.2,
             "every row exported after the restart")
    finally:
        ledger.close()
        server.cleanup()
    key = f"{SINK}-{first[0]}-{first[1]}"
    assert [(r.key, r.seqs, r.answered) for r in sink.received] == [
        (key, first, -1), (key, first, 200), (f"{SINK}-{later[0]}-{later[1]}", later, 200)]
