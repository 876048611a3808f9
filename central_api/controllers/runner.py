"""Runs the server's own background loops: garbage collector, tenant access, compaction.

Every replica observes every event (the garbage collector's owner graph and the storage
usage must stay current), but only the holder of the Lease
``scs-system/scs-internal-controllers`` acts on them: two replicas deleting the same
dependents or creating the same RoleBinding would only fight with conflicts. Compaction is
idempotent and stays in every replica.

The garbage collector keeps its own subscription to every resource rather than an informer
per kind: it needs only each object's owner references and size, and informers for every
kind would hold a copy of the whole store (every user's Secrets included) in memory. The
caches of whole objects (RBAC, tenants, issuers, CRDs, the controllers' kinds) are the
shared informers (:mod:`central_api.registry.informers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from ..auth.storage_quota import StorageUsage
from ..registry.resources import Resources
from ..registry.watch import Subscription, WatchHub
from ..store.ledger import Ledger
from ..store.offload import off_loop_write
from .client import LocalClient
from .garbage_collector import GarbageCollector
from .leader import LeaderElector
from .manager import default_identity
from .tenant_access import TenantAccessController
from .tenant_usage import TenantUsageReporter

log = logging.getLogger("central_api.controllers")
T = TypeVar("T")

RESYNC_SECONDS = 2.0
COMPACT_EVERY_SECONDS = 60.0
ACCESS_RESYNC_SECONDS = 30.0
TENANCY_RESOURCES = frozenset({"tenancy.scs.community/tenants", "core/namespaces"})
LEASE_NAME = "scs-internal-controllers"
HISTORY_SECONDS = 300.0
"""How long watch history is kept; kube-apiserver keeps five minutes as well."""


class Compactor:
    """Compacts the store to the revision it had ``history`` seconds ago — but never past
    ``hold()`` (the metering accountant's cursor, :meth:`Ledger.min_cursor`, while metering
    is on): usage is a fold over the revision log, and a revision compacted before the
    accountant read it would be usage lost. None from ``hold`` holds nothing."""

    def __init__(self, resources: Resources, history: float = HISTORY_SECONDS,
                 hold: Callable[[], int | None] | None = None) -> None:
        self.store = resources.store
        self.history = history
        self.hold = hold
        self.samples: deque[tuple[float, int]] = deque()

    def tick(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        self.samples.append((now, self.store.current_revision()))
        target = 0
        while self.samples and self.samples[0][0] <= now - self.history:
            target = self.samples.popleft()[1]
        held = self.hold() if self.hold is not None and target else None
        if held is not None and held < target:
            target = held
        return self.store.compact(target) if target else 0


class InternalControllers:
    def __init__(self, resources: Resources, hub: WatchHub,
                 usage: StorageUsage | None = None, *, metering: bool = False) -> None:
        self.resources = resources
        self.hub = hub
        self.gc = GarbageCollector(resources)
        self.usage = usage or StorageUsage()
        """Objects and bytes per tenant, for the storage quota's admission and status."""
        self.usage_report = TenantUsageReporter(resources, self.usage)
        self.tenant_access = TenantAccessController(resources)
        self.compactor = Compactor(
            resources, hold=Ledger(resources.store).min_cursor if metering else None)
        self.elector = LeaderElector(LocalClient(resources, hub), LEASE_NAME,
                                     default_identity())
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Subscribe first, then index the store (off the loop on PostgreSQL): a change
        committed meanwhile is both in the index and queued, and replaying it is harmless
        (the indexes replace what they held for a key), where the other order lost it."""
        sub = self.hub.subscribe("", None, self.hub.revision)
        await self._off_loop(self._rebuild)
        self._tasks = [asyncio.create_task(self._collect(sub), name="garbage-collector"),
                       asyncio.create_task(self._compact(), name="compactor"),
                       asyncio.create_task(self.elector.run(_hold), name="internal-leader")]

    async def _off_loop(self, work: Callable[[], T]) -> T:
        """Run a pass in a worker thread when the store waits on the network (PostgreSQL) or
        its commits wait for a disk sync (passes write: garbage collection, compaction).
        Safe: the indexes it reads change only in this task, which waits for it."""
        return await off_loop_write(self.resources.store, work)

    def _rebuild(self) -> None:
        """Index every stored object again: at start, and after the watch fell behind."""
        self.usage.clear()
        self.gc.rebuild(also=self.usage.index)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _collect(self, sub: Subscription) -> None:
        tenancy_changed, last_access_sync = True, 0.0
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RESYNC_SECONDS):  # not wait_for: see WatchHub
                        event = await sub.queue.get()
                    while event is not None:
                        self.gc.observe(event)
                        self.usage.observe(event)
                        tenancy_changed |= event.key.resource in TENANCY_RESOURCES
                        event = sub.queue.get_nowait() if not sub.queue.empty() else None
                    if sub.overflowed:
                        self.hub.unsubscribe(sub)
                        sub = self.hub.subscribe("", None, self.hub.revision)
                        await self._off_loop(self._rebuild)
                if not self.elector.leading:
                    last_access_sync = 0.0  # a new leader syncs tenant access at once
                    self.usage_report.forget()
                    continue
                for work, what in ((self.gc.process, "garbage collection pass"),
                                   (self.usage_report.sync, "tenant usage report")):
                    try:
                        await self._off_loop(work)
                    except Exception:
                        log.exception("%s failed; retrying", what)
                if tenancy_changed or time.monotonic() - last_access_sync > ACCESS_RESYNC_SECONDS:
                    tenancy_changed, last_access_sync = False, time.monotonic()
                    try:
                        await self._off_loop(self.tenant_access.sync)
                    except Exception:
                        log.exception("tenant access pass failed; retrying")
        finally:
            self.hub.unsubscribe(sub)

    async def _compact(self) -> None:
        while True:
            await asyncio.sleep(COMPACT_EVERY_SECONDS)
            try:
                removed = await self._off_loop(self.compactor.tick)
                if removed:
                    log.info("compacted %d superseded versions", removed)
            except Exception:
                log.exception("compaction failed; retrying")


async def _hold() -> None:
    """The leader's task: nothing to run, leadership is only checked (``elector.leading``)."""
    await asyncio.Event().wait()
