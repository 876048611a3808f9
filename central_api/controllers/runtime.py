"""The controller runtime: watch → queue → ``reconcile(object) -> Result`` (controller-runtime).

A :class:`Controller` follows one kind through its informer (the process's shared one
in-process), queues the keys of changed objects, and runs a bounded number of workers. Each
worker reads the object (from the cache, never behind the controller's own writes: see
:class:`.client.LocalClient`), keeps the reconciler's finalizer on live objects, and calls
``reconcile`` or, once the object is being deleted, ``finalize`` until the backend resources
are gone — only then is the finalizer removed, so nothing leaks. Reconcilers get the object
as an instance of its kind's declared model and set status on it; the runtime writes back
what they changed (:mod:`.typed`). Errors back off per key; a periodic resync re-queues
everything, which is how drift in the backend is noticed and repaired.

Watch events that change nothing a reconciler acts on — the status it wrote itself, its own
finalizer, managed fields — queue nothing: without that filter every pass would trigger a
second, identical one, doubling the backend calls (controller-runtime's
``GenerationChangedPredicate``, plus labels, annotations and deletion, which mean work here:
the offboarding confirmation is an annotation).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..kinds.common import Reconciled
from ..registry.informers import Handlers, Informer
from .client import Client, Kind
from .metrics import ControllerMetrics
from .queue import WorkQueue
from .typed import InvalidObject, load, write_status

log = logging.getLogger("central_api.controllers")

Key = tuple[str, str]
KeyMap = Callable[[dict[str, Any]], Iterable[Key]]
M = TypeVar("M", bound=Reconciled)


@dataclass(frozen=True)
class Result:
    requeue_after: float | None = None
    """Reconcile again after this many seconds (e.g. while the backend builds)."""


class Reconciler(Protocol[M]):
    """Converges one kind; ``model`` is its declaration, the type the runtime passes."""

    kind: Kind
    model: type[M]
    finalizer: str

    async def reconcile(self, obj: M) -> Result:
        """Converge the backend to ``obj``, setting what it observed in ``obj.status``."""

    async def finalize(self, obj: M) -> bool:
        """Delete the backend resources of ``obj``; True once they are gone."""


async def reconcile_once(client: Client, reconciler: Reconciler[M], raw: dict[str, Any]
                         ) -> Result:
    """One pass over a stored object: typed in, the status it set written back, also when
    the pass fails (its conditions say why)."""
    obj = load(reconciler.model, raw)
    try:
        return await reconciler.reconcile(obj)
    finally:
        await write_status(client, reconciler.kind, raw, obj)


async def finalize_once(client: Client, reconciler: Reconciler[M], raw: dict[str, Any]
                        ) -> bool:
    """One finalize pass; the status is written while the object still waits (it is gone
    once the finalizer goes, and a write would only conflict with removing it)."""
    obj = load(reconciler.model, raw)
    done = False
    try:
        done = await reconciler.finalize(obj)
        return done
    finally:
        if not done:
            await write_status(client, reconciler.kind, raw, obj)


class Controller:
    def __init__(self, client: Client, reconciler: Reconciler[Any], metrics: ControllerMetrics,
                 workers: int = 4, resync_seconds: float = 30.0,
                 finalize_poll_seconds: float = 1.0) -> None:
        self.client = client
        self.reconciler = reconciler
        self.kind = reconciler.kind
        self.metrics = metrics
        self.workers = workers
        # A reconciler whose backend is expensive to check (Keystone) may resync less often.
        self.resync_seconds = getattr(reconciler, "resync_seconds", None) or resync_seconds
        self.finalize_poll = finalize_poll_seconds
        self.queue = WorkQueue()
        self.handlers = Handlers(on_add=self._added, on_update=self._updated,
                                 on_delete=self._deleted)
        """What the informer tells this controller, while it runs (i.e. leads)."""

    @property
    def label(self) -> str:
        return self.kind.plural

    async def run(self) -> None:
        """Work on the kind until cancelled; the informer first replays every current
        object as added, so each is reconciled once when this replica starts leading."""
        informer = self.client.informer(self.kind)
        informer.add_handlers(self.handlers)
        related = self._watch_related()
        tasks = [asyncio.create_task(self._resync(informer), name=f"{self.label}-resync")]
        tasks += [asyncio.create_task(self._work(), name=f"{self.label}-worker-{i}")
                  for i in range(self.workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            informer.remove_handlers(self.handlers)
            for other, handlers in related:
                other.remove_handlers(handlers)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.queue.shutdown()

    def _watch_related(self) -> list[tuple[Informer, Handlers]]:
        """Follow the kinds the reconciler's result depends on (its optional ``watches()``:
        kind → the keys of its objects a change of that object concerns), as
        controller-runtime's ``Watches`` with a map function does."""
        found: list[tuple[Informer, Handlers]] = []
        for kind, keys in getattr(self.reconciler, "watches", list)():
            def each(*objs: dict[str, Any], keys: KeyMap = keys) -> None:
                for obj in objs:
                    for key in keys(obj):
                        self._enqueue(key)
            handlers = Handlers(on_add=each, on_update=each, on_delete=each)
            other = self.client.informer(kind)
            other.add_handlers(handlers)
            found.append((other, handlers))
        return found

    # -- informer handlers (on the event loop, in revision order) -----------------------
    def _added(self, obj: dict[str, Any]) -> None:
        self._enqueue(_key(obj))

    def _updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if _intent(old) != _intent(new):  # else only status, finalizers or bookkeeping
            self._enqueue(_key(new))

    def _deleted(self, obj: dict[str, Any]) -> None:
        self.queue.forget(_key(obj))

    def _enqueue(self, key: Key) -> None:
        self.queue.add(key)
        self.metrics.queue_depth.labels(self.label).set(len(self.queue))

    async def _resync(self, informer: Informer) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            for obj in informer.list():
                self.queue.add(_key(obj), resync=True)

    # -- workers -------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            key: Any = await self.queue.get()
            started = time.monotonic()
            try:
                await self._process(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is retried with backoff
                delay = self.queue.add_rate_limited(key)
                reason = getattr(exc, "reason", type(exc).__name__)
                self.metrics.errors.labels(self.label, str(reason)).inc()
                self.metrics.reconciles.labels(self.label, "error").inc()
                log.info("%s %s/%s failed (%s); retry in %.2fs", self.label, key[0], key[1],
                         exc, delay)
            finally:
                self.queue.done(key)
                self.metrics.reconcile_seconds.labels(self.label).observe(
                    time.monotonic() - started)
                self.metrics.queue_depth.labels(self.label).set(len(self.queue))

    async def _process(self, key: Key) -> None:
        obj = await self.client.get(self.kind, *key)
        if obj is None:
            self.queue.forget(key)
            return
        try:
            await self._converge(key, obj)
        except InvalidObject as exc:  # no backoff loop: only a change of the object helps
            log.warning("%s %s/%s skipped: %s", self.label, key[0], key[1], exc)
            self.queue.forget(key)
            self.metrics.errors.labels(self.label, exc.reason).inc()
            self.metrics.reconciles.labels(self.label, "invalid").inc()

    async def _converge(self, key: Key, obj: dict[str, Any]) -> None:
        """Keep the finalizer on a live object and reconcile it; finalize one being
        deleted and drop the finalizer once its backend resources are gone."""
        finalizers = obj["metadata"].get("finalizers") or []
        finalizer = self.reconciler.finalizer
        if obj["metadata"].get("deletionTimestamp"):
            if finalizer not in finalizers:
                return
            if await finalize_once(self.client, self.reconciler, obj):
                obj["metadata"]["finalizers"] = [f for f in finalizers if f != finalizer]
                await self.client.update(self.kind, obj)
                self.queue.forget(key)
                self.metrics.reconciles.labels(self.label, "finalized").inc()
            else:
                self.queue.add_after(key, self.finalize_poll)
            return
        if finalizer and finalizer not in finalizers:  # "": no backend to clean up
            obj["metadata"]["finalizers"] = [*finalizers, finalizer]
            obj = await self.client.update(self.kind, obj)
        result = await reconcile_once(self.client, self.reconciler, obj)
        self.queue.forget(key)
        self.metrics.reconciles.labels(self.label, "success").inc()
        if result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)


def _intent(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What a change must touch to need a reconcile: the spec (through ``generation``, which
    the server bumps on every spec change), labels, annotations, owners and deletion."""
    meta = obj["metadata"]
    return (meta.get("generation"), meta.get("deletionTimestamp"),
            repr(meta.get("labels")), repr(meta.get("annotations")),
            repr(meta.get("ownerReferences")))


def _key(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]
