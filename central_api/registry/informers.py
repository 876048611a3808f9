"""Shared informers: one in-memory copy of a resource per process, kept current by its watch.

Why: authorization (RBAC, tenants), the issuer registry, the CRD catalog and the in-process
controllers all need the current objects of a few kinds on every request or pass. Each used
to keep its own copy with its own invalidation (a write hook here, a five-second re-read
there), so a change made through one replica reached the others late or not at all, and
controllers read the store for every key. As with client-go's ``SharedInformerFactory``,
one :class:`Informer` per resource lists once at a revision, then follows the watch from
that revision, and tells registered handlers about every add, update and delete; everyone
reads the same objects, and every replica learns every change from the same stream.

Memory stays bounded by what is asked for: only resources someone requests an informer for
are cached (the RBAC kinds, Tenants, Namespaces, CRDs, the controllers' kinds), never every
user's Secrets.

Handlers run on the event loop, in the order they were added, for each change in revision
order; they must be cheap (mark something stale, queue a key), since the next change waits
for them. Reads (:meth:`Informer.get`, :meth:`Informer.list`) are safe from worker threads:
admission runs in threads on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..kinds.catalog import Catalog
from ..store.base import Compacted
from ..store.offload import off_loop
from .watch import WatchHub

log = logging.getLogger("central_api.informers")

Object = dict[str, Any]
RELIST_DELAY = 1.0


class Expired(Exception):
    """The watch cannot go on from the informer's revision (compacted, or it fell behind):
    the informer lists again."""


class ListerWatcher(Protocol):
    """Where an informer's objects come from (client-go's ListerWatcher)."""

    async def list(self) -> tuple[list[Object], int]:
        """Every object, and the revision the list was read at."""

    def watch(self, revision: int) -> AsyncIterator[tuple[str, Object, int]]:
        """(type, object, revision) of every change after ``revision``; raises Expired."""


@dataclass(frozen=True)
class Handlers:
    """Callbacks for one consumer of an informer (client-go's ResourceEventHandlerFuncs)."""

    on_add: Callable[[Object], None] | None = None
    on_update: Callable[[Object, Object], None] | None = None
    """Called with (old, new)."""
    on_delete: Callable[[Object], None] | None = None


def on_any_change(callback: Callable[[], None]) -> Handlers:
    """Handlers that call ``callback`` for every change (for caches derived from a resource)."""
    return Handlers(on_add=lambda _: callback(), on_update=lambda _, __: callback(),
                    on_delete=lambda _: callback())


def _ident(obj: Object) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


class Informer:
    """The current objects of one resource by namespace and name, and who to tell of changes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.revision = 0
        """The revision the copy is current at."""
        self.synced = asyncio.Event()
        """Set once the first list is in (readers before that see nothing)."""
        self._objects: dict[str, dict[str, Object]] = {}
        self._lock = threading.Lock()
        self._handlers: list[Handlers] = []
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- reads -------------------------------------------------------------------------------
    @property
    def has_synced(self) -> bool:
        return self.synced.is_set()

    def get(self, namespace: str, name: str) -> Object | None:
        """The object (shared: do not modify it), None if it does not exist."""
        with self._lock:
            return self._objects.get(namespace, {}).get(name)

    def list(self, namespace: str | None = None) -> list[Object]:
        """The objects of one namespace ("" for cluster-scoped ones), or all of them."""
        with self._lock:
            if namespace is not None:
                return list(self._objects.get(namespace, {}).values())
            return [obj for objects in self._objects.values() for obj in objects.values()]

    # -- handlers ----------------------------------------------------------------------------
    def add_handlers(self, handlers: Handlers) -> None:
        """Register ``handlers``; once synced, they are first told of every current object
        as an add, so a late consumer starts from the same state as an early one."""
        self._handlers.append(handlers)
        if self.has_synced and handlers.on_add is not None:
            for obj in self.list():
                self._call(handlers.on_add, obj)

    def remove_handlers(self, handlers: Handlers) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(handlers)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, source: ListerWatcher) -> None:
        """Follow ``source`` (once; later calls change nothing)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(source), name=f"informer-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_for(self, revision: int, timeout: float) -> bool:
        """Wait until the copy includes ``revision`` (e.g. a write just made); False if it
        did not within ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.revision < revision:
                    await self._progress.wait()
        return self.revision >= revision

    async def _run(self, source: ListerWatcher) -> None:
        """List, then watch from the list's revision; list again whenever the watch cannot
        continue. Any failure of the source is retried: an informer outlives them all."""
        while True:
            try:
                items, revision = await source.list()
                self._replace(items, revision)
                async for event_type, obj, event_revision in source.watch(revision):
                    self._apply(event_type, obj, event_revision)
            except asyncio.CancelledError:
                raise
            except Expired as exc:
                log.info("informer %s: %s; listing again", self.name, exc)
            except Exception as exc:
                log.warning("informer %s failed (%s); listing again", self.name, exc)
                await asyncio.sleep(RELIST_DELAY)

    # -- changes -----------------------------------------------------------------------------
    def _replace(self, items: builtins.list[Object], revision: int) -> None:
        """Take a fresh list; handlers see the difference to the previous copy."""
        with self._lock:
            old = self._objects
            self._objects = {}
            for obj in items:
                namespace, name = _ident(obj)
                self._objects.setdefault(namespace, {})[name] = obj
        for obj in items:
            namespace, name = _ident(obj)
            previous = old.get(namespace, {}).pop(name, None)
            self._notify(previous, obj)
        for objects in old.values():
            for gone in objects.values():
                self._notify(gone, None)
        self._advance(revision)
        self.synced.set()

    def _apply(self, event_type: str, obj: Object, revision: int) -> None:
        if event_type in ("ADDED", "MODIFIED", "DELETED"):
            previous = self._store(event_type, obj)
            if event_type == "DELETED":
                self._notify(previous or obj, None)
            else:
                self._notify(previous, obj)
        self._advance(revision)  # a BOOKMARK only moves the revision on

    def _store(self, event_type: str, obj: Object) -> Object | None:
        """Record one change; returns the object it replaces."""
        namespace, name = _ident(obj)
        with self._lock:
            objects = self._objects.setdefault(namespace, {})
            previous = objects.get(name)
            if event_type == "DELETED":
                objects.pop(name, None)
                if not objects:
                    del self._objects[namespace]
            else:
                objects[name] = obj
        return previous

    def _notify(self, old: Object | None, new: Object | None) -> None:
        for handlers in list(self._handlers):
            if new is None and old is not None and handlers.on_delete is not None:
                self._call(handlers.on_delete, old)
            elif old is None and new is not None and handlers.on_add is not None:
                self._call(handlers.on_add, new)
            elif old is not None and new is not None and handlers.on_update is not None:
                if old.get("metadata", {}).get("resourceVersion") != \
                        new["metadata"].get("resourceVersion"):
                    self._call(handlers.on_update, old, new)

    def _call(self, callback: Callable[..., None], *args: Object) -> None:
        """One consumer's failing handler must not stop the others or the informer."""
        try:
            callback(*args)
        except Exception:
            log.exception("informer %s: a handler failed", self.name)

    def _advance(self, revision: int) -> None:
        self.revision = max(self.revision, revision)
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()


class HubListerWatcher:
    """One storage resource from the store and the process's watch hub.

    The list is read in a worker thread when the store waits on the network (PostgreSQL),
    as every other read is; objects are presented in the storage version's apiVersion and
    kind (a shallow copy: the hub's event objects are shared by every watcher)."""

    def __init__(self, hub: WatchHub, resource: str, catalog: Catalog) -> None:
        self.hub = hub
        self.resource = resource
        self.catalog = catalog

    async def list(self) -> tuple[list[Object], int]:
        store = self.hub.store
        page = await off_loop(store, store.list, self.resource)
        return [self._present(obj) for obj in page.items], page.revision

    async def watch(self, revision: int) -> AsyncIterator[tuple[str, Object, int]]:
        try:
            sub = await self.hub.asubscribe(self.resource, None, revision)
        except Compacted as exc:
            raise Expired(str(exc)) from None
        try:
            while (event := await sub.wait()) is not None:
                yield event.type, self._present(event.object), event.revision
            raise Expired("the watch fell behind" if sub.overflowed else "the watch ended")
        finally:
            self.hub.unsubscribe(sub)

    def _present(self, obj: Object) -> Object:
        rt = self.catalog.by_storage_resource(self.resource)
        if rt is None:
            return obj
        return {**obj, "apiVersion": rt.api_version, "kind": rt.kind}


class Informers:
    """The process's informers, one per storage resource (client-go's SharedInformerFactory).

    Consumers ask for informers while the process is assembled, before the watch hub runs;
    :meth:`start` starts those, and any asked for later starts at once."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.hub: WatchHub | None = None
        self._informers: dict[str, Informer] = {}

    def informer(self, resource: str) -> Informer:
        """The informer of a storage resource (``rbac.authorization.k8s.io/roles``)."""
        found = self._informers.get(resource)
        if found is None:
            found = self._informers[resource] = Informer(resource)
            if self.hub is not None:
                found.start(HubListerWatcher(self.hub, resource, self.catalog))
        return found

    def lookup(self, resource: str) -> Informer | None:
        """The informer of ``resource`` if someone asked for one, without creating it."""
        return self._informers.get(resource)

    @property
    def started(self) -> bool:
        return self.hub is not None

    def start(self, hub: WatchHub) -> None:
        self.hub = hub
        for resource, informer in self._informers.items():
            informer.start(HubListerWatcher(hub, resource, self.catalog))

    async def wait_synced(self, timeout: float = 60.0) -> None:
        """Wait until every informer has listed (before a replica serves: an unsynced RBAC
        informer would deny every request). Raises TimeoutError."""
        async with asyncio.timeout(timeout):
            for informer in list(self._informers.values()):
                await informer.synced.wait()

    async def stop(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
        self.hub = None
