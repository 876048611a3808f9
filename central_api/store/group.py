"""Group commit: concurrent writes share one transaction and one sync of the log.

Why: a commit's sync (SQLite's WAL write and fsync, PostgreSQL's WAL flush and round trips)
costs more than the write itself, and writers are serialised anyway (one revision counter).
Writes that queue while a batch commits go into the next batch together, so the sync is paid
once per batch instead of once per write, and no write is acknowledged before the COMMIT of
its batch succeeded.

Two ways in, one queue:

* :meth:`GroupCommit.submit` (threads): the caller queues its write and takes the writers'
  lock; whoever holds it commits everything queued (leader/follower), so a thread whose write
  a leader already committed just returns. A lone writer commits its own write at once, with
  no thread hand-over.
* :meth:`GroupCommit.submit_async` (the event loop): the write is queued for the committer
  thread, which commits what has gathered and resolves the batch's futures with one
  ``call_soon_threadsafe`` per loop and batch — one thread hop per batch, not per write, and
  the loop never waits for a sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from .base import EventType, Key, Requirement, StoreError

MAX_BATCH = 256
"""Writes per transaction at most: bounds how long one batch holds the writers' lock."""


@dataclass(eq=False, slots=True)
class Write:
    """One queued write and, once its batch is done, its outcome."""

    event: EventType
    key: Key
    obj: dict[str, Any] | None
    """The new object (None for a delete: the store reads the last state)."""
    expected: int | None = None
    """The revision the live version must have (None: any)."""
    require: Requirement | None = None
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    done: bool = False
    future: asyncio.Future[dict[str, Any]] | None = field(default=None, repr=False)

    def outcome(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return cast(dict[str, Any], self.result)


Batch = Callable[[list[Write]], None]
"""Runs one transaction for the writes: sets ``result`` or ``error`` on each, and raises
(failing all of them) if the transaction as a whole fails, e.g. its COMMIT."""


class GroupCommit:
    """The queue of writes of one store and the writers' lock that commits them."""

    def __init__(self, run: Batch, notify: Callable[[], None],
                 lock: threading.Lock | None = None) -> None:
        self._run = run
        self._notify = notify
        self.lock = lock or threading.Lock()
        """Held while a batch commits; the store may share it with its other writes."""
        self._pending: deque[Write] = deque()
        self._wake = threading.Condition()
        self._idle = True
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, write: Write) -> dict[str, Any]:
        """Queue ``write`` and return once its batch committed (or raise its error)."""
        self._pending.append(write)
        done: list[Write] = []
        with self.lock:
            if not write.done:
                done = self._drain(until=write)
        self._finish(done)
        return write.outcome()

    async def submit_async(self, write: Write) -> dict[str, Any]:
        """Queue ``write`` for the committer thread; resolves once its batch committed."""
        write.future = asyncio.get_running_loop().create_future()
        with self._wake:
            if self._closed:
                raise StoreError("store is closed")
            self._pending.append(write)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, daemon=True,
                                                name="group-commit")
                self._thread.start()
            if self._idle:
                self._wake.notify()
        return await write.future

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the writers' lock for a transaction of another kind (a compaction step, the
        ledger's writes), after committing what is queued: a lock is not fair, so a thread
        running such transactions back to back would otherwise keep writes waiting for all
        of them (a compaction of 20,000 versions stalled creates for 270 ms)."""
        with self.lock:
            done = self._drain()
            yield
        self._finish(done)

    def close(self) -> None:
        """Stop the committer thread after it committed what is queued."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _serve(self) -> None:
        while True:
            with self._wake:
                self._idle = True
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return
                self._idle = False
            with self.lock:
                done = self._drain()
            self._finish(done)

    def _drain(self, until: Write | None = None) -> list[Write]:
        """Commit queued writes in batches (holding :attr:`lock`): all of them, or until
        ``until`` is done (a thread's leader does not serve the queue forever). Returns the
        writes done, for :meth:`_finish` once the lock is released (a listener may write)."""
        done: list[Write] = []
        while self._pending and not (until is not None and until.done):
            batch = [self._pending.popleft()
                     for _ in range(min(MAX_BATCH, len(self._pending)))]
            try:
                self._run(batch)
            except BaseException as exc:  # the transaction failed: so did every write in it
                for write in batch:
                    write.error, write.result = exc, None
            for write in batch:
                write.done = True
            done += batch
        return done

    def _finish(self, done: list[Write]) -> None:
        """Wake the write listeners (the watch hub) if a write committed, then the waiting
        coroutines: a client that got its answer finds the hub already told."""
        if any(write.error is None for write in done):
            self._notify()
        _resolve(done)


def _resolve(writes: list[Write]) -> None:
    """Hand the outcomes to the waiting coroutines: one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Write]] = {}
    for write in writes:
        if write.future is not None:
            by_loop.setdefault(write.future.get_loop(), []).append(write)
    for loop, mine in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, mine)


def _settle(writes: list[Write]) -> None:
    for write in writes:
        future = write.future
        if future is None or future.done():  # cancelled: the caller went away
            continue
        if write.error is not None:
            future.set_exception(write.error)
        else:
            future.set_result(write.outcome())
