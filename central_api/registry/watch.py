"""Watch fan-out: one reader of the store's event log, many subscribers.

A single pump task reads new events from the store (woken by local writes at once, and by a
short poll for writes of other replicas on a shared PostgreSQL) and hands each event to the
queues of matching subscribers. Replaying history for a new watcher and attaching it to the
live stream happen without an ``await`` in between, so no event can fall into the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..store.base import Compacted, Event, Store, StoreError, encoded_size
from ..store.offload import off_loop

log = logging.getLogger("central_api.watch")

QUEUE_LIMIT = 10_000
POLL_SECONDS = 0.5
HISTORY_EVENTS = 10_000
HISTORY_BYTES = 64 * 1024 * 1024
"""Recent events kept in memory for watches that start from a past resourceVersion: they
replay from these shared objects instead of each decoding its own copy of the history from
the store (60 watches over 30 MB of recent writes held 60 copies of it)."""


class Follower(Protocol):
    """Told of every event as the hub delivers it, before any subscription (the watch
    caches): synchronously, so a follower is always at the hub's revision."""

    def deliver(self, event: Event) -> None: ...

    def lost(self) -> None:
        """The hub skipped events (compaction overtook it): start again from a list."""


@dataclass(eq=False)
class Subscription:
    resource: str
    namespace: str | None
    predicate: Callable[[dict[str, Any]], bool] | None
    after: int = 0
    """The revision the watch starts after: a watch ahead of the hub skips what the hub
    delivers up to there, instead of the hub reading the store to catch up first."""
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    overflowed: bool = False
    _matched: set[tuple[str, str]] = field(default_factory=set)

    def offer(self, event: Event) -> None:
        """Queue the event if it is of this watcher's resource and namespace.

        The selector is applied when the event is taken, not here: a watch's initial objects
        are marked as matching page by page while its events already queue up, and a
        transition (an object leaving the selection) is only known once its object has been
        marked."""
        if self.overflowed or not self.wants(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end()

    def end(self) -> None:
        """End the watch now, whatever is queued: the client lists again, as with kube.
        The same queue is drained (not replaced), so a reader already waiting on it wakes."""
        self.overflowed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    def wants(self, event: Event) -> bool:
        """Whether the event is after this watch's start and of its resource and namespace
        (an empty resource subscribes to everything: the garbage collector). Pure, so a
        worker thread reading history may call it."""
        return (event.revision > self.after
                and (not self.resource or event.key.resource == self.resource)
                and (self.namespace is None or event.key.namespace == self.namespace))

    def take(self) -> Event | None:
        """The next queued event as this watcher should see it, without waiting."""
        while not self.queue.empty():
            event = self.queue.get_nowait()
            if event is None:
                return None
            delivered = self._through_predicate(event)
            if delivered is not None:
                return delivered
        return None

    async def wait(self) -> Event | None:
        """The next event as this watcher should see it; None when the watch must end."""
        while True:
            event = await self.queue.get()
            if event is None:
                return None
            delivered = self._through_predicate(event)
            if delivered is not None:
                return delivered

    def _through_predicate(self, event: Event) -> Event | None:
        if self.predicate is None:
            return event
        ident = (event.key.namespace, event.key.name)
        was, now = ident in self._matched, self.predicate(event.object)
        if event.type == "DELETED":
            self._matched.discard(ident)
            return event if now or was else None
        if now:
            self._matched.add(ident)
            return event
        if was:
            self._matched.discard(ident)
            return Event("DELETED", event.revision, event.key, event.object, event.stamp)
        return None

    def seed(self, namespace: str, name: str) -> None:
        """Mark an object as matching already (it was in the initial list)."""
        self._matched.add((namespace, name))


class WatchHub:
    def __init__(self, store: Store, poll_seconds: float = POLL_SECONDS) -> None:
        self.store = store
        self.revision = store.current_revision()
        self._subscriptions: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self._history: deque[tuple[Event, int]] = deque()
        self._history_bytes = 0
        self._history_after = self.revision
        """The history holds every event after this revision."""
        self._followers: list[Follower] = []
        self._progress: asyncio.Event | None = None
        """Set (and dropped) when a round of the pump ends, if someone waits for one."""
        store.add_write_listener(self._on_write)

    def follow(self, follower: Follower) -> None:
        self._followers.append(follower)

    def _on_write(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: the hub has stopped
                loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="watch-hub")
        if hasattr(self.store, "wait_for_change"):
            threading.Thread(target=self._listen_remote, name="watch-hub-listener",
                             daemon=True).start()

    def _listen_remote(self) -> None:
        """Wake the pump when another replica commits (PostgreSQL LISTEN/NOTIFY)."""
        wait = self.store.wait_for_change  # type: ignore[attr-defined]
        seen = self.revision
        while self._task is not None and not self._task.done():
            try:
                # Wait past what the store already reported, not past what the pump has
                # processed: the pump runs later on the loop, and waiting for its revision
                # would return at once again and again until it caught up.
                seen = max(seen, wait(max(seen, self.revision), 1.0) or 0)
            except Exception:  # the store reconnects by itself; keep listening
                time.sleep(1.0)
                continue
            self._on_write()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in self._subscriptions:
            sub.queue.put_nowait(None) if not sub.queue.full() else None

    async def _run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that
            # arrives as the wake-up completes, and stop() then waited forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self.store.blocking:
                    await self._pump_off_loop()
                else:
                    self.pump()
            except Compacted as exc:
                await self._history_lost(exc)
            except StoreError as exc:  # e.g. the database restarts: try again next round
                log.warning("watch pump failed, retrying: %s", exc)
            self._progressed()

    def _progressed(self) -> None:
        progress, self._progress = self._progress, None
        if progress is not None:
            progress.set()

    async def catch_up(self, revision: int, timeout: float) -> bool:
        """Whether the hub has delivered ``revision`` (a write the store has committed),
        waking the pump and waiting at most ``timeout`` seconds: a consistent read from the
        watch caches. A store that answers in place (SQLite) is read at once, here."""
        if self.revision >= revision:
            return True
        if not self.store.blocking:
            with contextlib.suppress(StoreError):  # the pump's own round reports it
                self.pump()
            return self.revision >= revision
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.revision < revision:
                    self._wake.set()  # a round that began before the write may miss it
                    if self._progress is None:
                        self._progress = asyncio.Event()
                    await self._progress.wait()
        return self.revision >= revision

    async def _history_lost(self, exc: Compacted) -> None:
        """The store compacted events this replica had not read yet (it was stopped or
        starved for longer than the history kept): they cannot be delivered, so every watch
        ends and lists again, and the hub goes on from the store's present. Retrying would
        fail the same way forever."""
        log.warning("watch history up to revision %d was compacted before this replica read "
                    "it; every watch restarts from a new list", exc.compacted)
        revision = await off_loop(self.store, self.store.current_revision)
        for sub in list(self._subscriptions):
            sub.end()
        self._history.clear()
        self._history_bytes = 0
        self._history_after = self.revision = revision
        for follower in self._followers:
            follower.lost()

    async def _pump_off_loop(self) -> None:
        """:meth:`pump` with the store read in a worker thread: on PostgreSQL each read is a
        transaction of four round trips, which blocked every request once per write.

        Events are still offered on the loop, and only those after ``self.revision`` at that
        moment: a :meth:`subscribe` meanwhile may have pumped some of them already."""
        loop = asyncio.get_running_loop()
        while True:
            events = await loop.run_in_executor(None, self.store.events_since, self.revision)
            if not events:
                return
            for event in events:
                if event.revision <= self.revision:
                    continue
                self._deliver(event)

    def pump(self) -> None:
        """Deliver every event committed since the last pump."""
        while True:
            events = self.store.events_since(self.revision)
            if not events:
                return
            for event in events:
                self._deliver(event)

    def _deliver(self, event: Event) -> None:
        for follower in self._followers:
            follower.deliver(event)
        for sub in list(self._subscriptions):
            sub.offer(event)
        self.revision = event.revision
        size = encoded_size(event.object)
        self._history.append((event, size))
        self._history_bytes += size
        while len(self._history) > HISTORY_EVENTS or self._history_bytes > HISTORY_BYTES:
            dropped, dropped_size = self._history.popleft()
            self._history_bytes -= dropped_size
            self._history_after = dropped.revision

    def subscribe(self, resource: str, namespace: str | None, from_revision: int,
                  predicate: Callable[[dict[str, Any]], bool] | None = None) -> Subscription:
        """Events after ``from_revision``; raises Compacted if that history is gone.

        The store is read only where memory cannot answer: for history older than memory
        holds, and for the compacted revision when replaying from memory. So a watch from
        the hub's revision or later reads nothing; one from before, on the event loop with a
        blocking store, should use :meth:`asubscribe`."""
        sub = Subscription(resource, namespace, predicate, from_revision)
        covered = max(from_revision, self._history_after)
        older = self._read_history(sub, from_revision, covered)
        if covered == from_revision < self.revision:
            self._refuse_compacted(from_revision, self.store.compacted_revision())
        return self._attach(sub, covered, older)

    async def asubscribe(self, resource: str, namespace: str | None, from_revision: int,
                         predicate: Callable[[dict[str, Any]], bool] | None = None
                         ) -> Subscription:
        """:meth:`subscribe` from the event loop: on a blocking store its reads run in worker
        threads (each a PostgreSQL transaction that held every request meanwhile).

        Gap-free as :meth:`subscribe`: what the threads read ends where the memory's history
        begins at the last check, and the replay from memory and the attach to the live
        stream follow on the loop with no ``await`` in between."""
        if not self.store.blocking:
            return self.subscribe(resource, namespace, from_revision, predicate)
        loop = asyncio.get_running_loop()
        sub = Subscription(resource, namespace, predicate, from_revision)
        older: list[Event] = []
        covered = from_revision
        while covered < self._history_after and len(older) <= QUEUE_LIMIT:
            upto = self._history_after  # memory may drop more meanwhile: read on to there
            older += await loop.run_in_executor(None, self._read_history, sub, covered, upto)
            covered = upto
        if covered == from_revision < self.revision:
            self._refuse_compacted(from_revision, await loop.run_in_executor(
                None, self.store.compacted_revision))
        return self._attach(sub, covered, older)

    def _read_history(self, sub: Subscription, after: int, upto: int) -> list[Event]:
        """``sub``'s events in (``after``, ``upto``] from the store; a worker thread may run
        this (it only reads the store). Stops past what ``sub``'s queue holds: beyond that
        the watch overflows anyway."""
        events: list[Event] = []
        while after < upto and len(events) <= QUEUE_LIMIT:
            batch = self.store.events_since(after)
            if not batch:
                break
            events += [e for e in batch if e.revision <= upto and sub.wants(e)]
            after = batch[-1].revision
        return events

    @staticmethod
    def _refuse_compacted(from_revision: int, compacted: int) -> None:
        """History served from memory still answers as the store does: what compaction
        removed there is gone for every watcher (410), as on every other replica."""
        if from_revision < compacted:
            raise Compacted(from_revision, compacted)

    def _attach(self, sub: Subscription, covered: int, older: list[Event]) -> Subscription:
        """Replay ``older`` (the history up to ``covered``), then memory's events after
        ``covered``, and attach ``sub`` to the live stream: no ``await`` may come between."""
        for event in older:
            sub.offer(event)
        for event, _ in self._history:
            if event.revision > covered:
                sub.offer(event)
        self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    @property
    def watchers(self) -> int:
        return len(self._subscriptions)

    def watchers_by_resource(self) -> dict[str, int]:
        """Open subscriptions per stored resource ("" subscribes to all): ``/metrics``."""
        counts: dict[str, int] = {}
        for sub in self._subscriptions:
            counts[sub.resource] = counts.get(sub.resource, 0) + 1
        return counts
