"""Billing export: usage rows POSTed to the configured sinks (``metering.sinks``), at least
once, in order, across restarts and leader changes (docs/metering-ingest-export.md).

One loop per sink, in the replica holding the controllers' lease (``Manager.runnables``,
like the status probes). Each pass:

1. reads the sink's two cursors in the ledger: ``exported`` (every row up to this ``seq`` was
   acknowledged) and ``pending`` (the last ``seq`` of the batch being delivered);
2. if ``pending > exported``, a batch was started and not acknowledged (the process died,
   or lost its lease, between POST and cursor advance): the batch is exactly the rows in
   ``(exported, pending]`` again, so it is re-sent with the **same** idempotency key;
   otherwise the next batch is the first ``batchSize`` rows after ``exported`` in ``seq``
   order, and ``pending`` is advanced to its last row *before* it is sent;
3. POSTs it (``Idempotency-Key: <sink>-<first seq>-<last seq>``) until the sink answers
   2xx, waiting between attempts with capped exponential backoff and jitter (or the sink's
   ``Retry-After``, capped alike);
4. advances ``exported`` to the batch's last ``seq``, with a compare-and-set: a second
   leader for a moment (or a restarted one) finds the cursor moved and reads again instead
   of skipping or repeating rows.

Why the pending cursor: without it, a batch cut at "whatever is there now" changes when
rows are added while the process is down, and the re-sent batch would carry another key —
the sink could not tell it from a new one. With it, batch boundaries are fixed before the
first attempt. It is stored as the export cursor named ``<sink>:pending`` (a colon is not
allowed in sink names, so it never meets a real sink's cursor).

Nothing is ever skipped: a sink that answers 4xx (say, a schema it rejects) is retried like
one that is down, loudly logged, until an operator fixes it; rows stay in the ledger.

Rows are exported as the ledger holds them: the accountant writes a row once its part of
an hour is closed (the hour passed, the state changed or the object ended), and rows never
change after that, so each is exported once and final. Rows must become visible in ``seq``
order — true because the one accountant commits them under a compare-and-set of its own
cursor (ledger.py) — otherwise a late lower ``seq`` would fall behind the cursor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import secrets
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from ..config import MeteringConfig, MeteringSink
from ..store.base import Store
from ..store.ledger import CursorMoved
from ..store.offload import off_loop

log = logging.getLogger("central_api.billing_export")

PENDING_SUFFIX = ":pending"
IDLE_SECONDS = 5.0
"""How often a sink with nothing to send looks for new rows."""
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 300.0
POST_TIMEOUT_SECONDS = 30.0
USER_AGENT = "scs-central-api-billing-export/1"


class ExportLedger(Protocol):
    """What the exporter needs of the ledger (``store/ledger.py``)."""

    def rows(self, *, after_seq: int = 0, limit: int = 500) -> Sequence[Any]: ...

    def export_cursor(self, sink: str) -> int: ...

    def advance_export(self, sink: str, expected: int, new: int) -> None: ...


@dataclass(frozen=True)
class Batch:
    sink: str
    after: int
    rows: list[dict[str, Any]]

    @property
    def first(self) -> int:
        return int(self.rows[0]["seq"])

    @property
    def last(self) -> int:
        return int(self.rows[-1]["seq"])

    @property
    def key(self) -> str:
        return f"{self.sink}-{self.first}-{self.last}"

    def body(self) -> dict[str, Any]:
        return {"sink": self.sink, "idempotencyKey": self.key, "firstSeq": self.first,
                "lastSeq": self.last, "rows": self.rows}


def row_json(row: Any) -> dict[str, Any]:
    """A ledger row as the sink receives it: its fields, with ``start``/``end`` (stamps,
    seconds since the epoch) also as RFC 3339 UTC times with microseconds."""
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        found = dataclasses.asdict(row)
    elif hasattr(row, "model_dump"):
        found = row.model_dump()
    else:
        found = dict(row)
    for name in ("start", "end"):
        if isinstance(found.get(name), int | float):
            found[f"{name}Time"] = rfc3339(float(found[name]))
    return found


def rfc3339(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SinkFailed(Exception):
    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def retry_delay(attempt: int, retry_after: float | None, rng: random.Random,
                first: float = FIRST_RETRY_SECONDS, cap: float = MAX_RETRY_SECONDS) -> float:
    """Exponential from ``first``, capped, with jitter (half to all of it) so that many
    replicas' exporters restarted together do not hit a recovering sink in step; a sink's
    ``Retry-After`` replaces the computed delay, capped alike."""
    if retry_after is not None:
        return min(cap, max(0.0, retry_after))
    return min(cap, first * 2 ** min(attempt, 30)) * rng.uniform(0.5, 1.0)


class SinkClient:
    """POSTs batches to one sink; the bearer token is re-read per attempt (rotation)."""

    def __init__(self, sink: MeteringSink) -> None:
        self.sink = sink
        verify: str | bool = sink.ca_file or True
        self.http = httpx.AsyncClient(verify=verify, timeout=POST_TIMEOUT_SECONDS,
                                      follow_redirects=False)

    def _headers(self, batch: Batch) -> dict[str, str]:
        headers = {"Idempotency-Key": batch.key, "User-Agent": USER_AGENT}
        if self.sink.token_file:
            token = Path(self.sink.token_file).read_text().strip()
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def post(self, batch: Batch) -> None:
        """Returns on a 2xx; raises SinkFailed otherwise."""
        try:
            response = await self.http.post(self.sink.url, json=batch.body(),
                                            headers=self._headers(batch))
        except (httpx.HTTPError, OSError) as exc:
            raise SinkFailed(f"{type(exc).__name__}: {exc}") from None
        if 200 <= response.status_code < 300:
            return
        raise SinkFailed(f"HTTP {response.status_code}: {response.text[:200]}",
                         _retry_after(response.headers.get("retry-after", "")))

    async def close(self) -> None:
        await self.http.aclose()


def _retry_after(value: str) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: the computed backoff instead


class SinkExporter:
    """The export loop of one sink (see the module docstring)."""

    def __init__(self, store: Store, ledger: ExportLedger, sink: MeteringSink,
                 idle_seconds: float = IDLE_SECONDS, first_retry: float = FIRST_RETRY_SECONDS,
                 max_retry: float = MAX_RETRY_SECONDS) -> None:
        self.store, self.ledger, self.sink = store, ledger, sink
        self.idle_seconds, self.first_retry, self.max_retry = idle_seconds, first_retry, max_retry
        self.pending_name = sink.name + PENDING_SUFFIX
        self.rng: random.Random = secrets.SystemRandom()  # jitter; bandit flags random.Random

    async def run(self) -> None:
        client = SinkClient(self.sink)
        try:
            while True:
                try:
                    sent = await self.export_once(client)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("billing export to %s: a pass failed; retrying",
                                  self.sink.name)
                    sent = False
                if not sent:
                    await asyncio.sleep(self.idle_seconds)
        finally:
            await client.close()

    async def export_once(self, client: SinkClient) -> bool:
        """Deliver one batch; False when there was none (or another leader moved on)."""
        batch = await off_loop(self.store, self.next_batch)
        if batch is None:
            return False
        await self.deliver(client, batch)
        try:
            await off_loop(self.store, self.ledger.advance_export, self.sink.name,
                           batch.after, batch.last)
        except CursorMoved as exc:  # moved by another leader: read again
            log.info("billing export to %s: cursor moved meanwhile (%s)", self.sink.name, exc)
        return True

    def next_batch(self) -> Batch | None:
        """The batch in flight if one is (same rows, same key), else the next one, whose end
        is recorded as pending before anything is sent."""
        exported = self.ledger.export_cursor(self.sink.name)
        pending = self.ledger.export_cursor(self.pending_name)
        if pending > exported:
            rows = self._rows_through(exported, pending)
            if rows:
                return Batch(self.sink.name, exported, rows)
        rows = [row_json(r) for r in self.ledger.rows(after_seq=exported,
                                                      limit=self.sink.batch_size)]
        if not rows:
            return None
        batch = Batch(self.sink.name, exported, rows)
        self.ledger.advance_export(self.pending_name, pending, batch.last)
        return batch

    def _rows_through(self, after: int, last: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = [row_json(r) for r in self.ledger.rows(after_seq=after, limit=1000)]
            found += [r for r in page if int(r["seq"]) <= last]
            if not page or int(page[-1]["seq"]) >= last:
                return found
            after = int(page[-1]["seq"])

    async def deliver(self, client: SinkClient, batch: Batch) -> None:
        attempt = 0
        while True:
            try:
                await client.post(batch)
                log.info("billing export to %s: delivered %s (%d rows)", self.sink.name,
                         batch.key, len(batch.rows))
                return
            except SinkFailed as exc:
                delay = retry_delay(attempt, exc.retry_after, self.rng, self.first_retry,
                                    self.max_retry)
                log.warning("billing export to %s: batch %s failed (%s); retrying in %.1fs",
                            self.sink.name, batch.key, exc, delay)
                attempt += 1
                await asyncio.sleep(delay)


def billing_exporters(store: Store, ledger: ExportLedger, config: MeteringConfig
                      ) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    """One leader-only loop per configured sink."""
    return [SinkExporter(store, ledger, sink).run for sink in config.sinks]
