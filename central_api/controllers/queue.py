"""A de-duplicating work queue with per-key exponential backoff (client-go's workqueue).

Keys, not events, are queued: ten changes to one object while it waits become one
reconcile. A key being processed is never handed to a second worker; if it changes meanwhile
it is queued again when the first worker is done. Failures back off per key
(base · 2^failures, capped, with jitter so a fleet of failing objects does not retry in lock
step); success forgets the key's failures.

Periodic resyncs queue at low priority (``add(key, resync=True)``): a change someone just
made is reconciled before the thousands of unchanged objects a resync re-checks, so a slow
backend delays drift repair, never a new object. A key already waiting as a resync moves up
when it changes.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Hashable

BASE_DELAY = 0.05
MAX_DELAY = 300.0


class WorkQueue:
    def __init__(self, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[Hashable] = deque()
        self._resyncs: deque[Hashable] = deque()
        self._queued: dict[Hashable, bool] = {}
        """Waiting keys → whether they wait as a resync (low priority)."""
        self._processing: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: Hashable, resync: bool = False) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        waiting_as_resync = self._queued.get(key)
        if waiting_as_resync is None:
            self._queued[key] = resync
            (self._resyncs if resync else self._queue).append(key)
        elif waiting_as_resync and not resync:
            self._queued[key] = False  # its resync entry is skipped when reached
            self._queue.append(key)
        self._ready.set()

    def add_after(self, key: Hashable, delay: float) -> None:
        """Queue ``key`` in ``delay`` seconds (an earlier pending timer wins)."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + delay
        if existing is not None and existing.when() <= when:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: Hashable) -> float:
        """Queue after this key's backoff; returns the delay chosen."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        jitter = random.uniform(0.8, 1.2)  # noqa: S311  # nosec B311 - jitter, not crypto
        delay = min(self.max_delay, self.base_delay * (2 ** min(failures, 32)) * jitter)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> Hashable:
        while True:
            key = self._next()
            if key is not None:
                self._processing.add(key)
                return key
            self._ready.clear()
            await self._ready.wait()

    def _next(self) -> Hashable | None:
        while self._queue:
            key = self._queue.popleft()
            if self._queued.pop(key, None) is False:
                return key
        while self._resyncs:
            key = self._resyncs.popleft()
            if self._queued.get(key) is True:
                del self._queued[key]
                return key
        return None

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def shutdown(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
