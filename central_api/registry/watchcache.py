"""The watch cache: every object of a resource in memory, held as the bytes it is served as.

Why (issue 21): every GET and LIST walked the store and decoded JSON (a 1 % label-selector
LIST over 100k objects decoded all 100k, 0.8-2.5 s), and every watch read its initial list
from the store. As kube-apiserver's cacher does, one cache per resource lists the store once
and then follows the process's :class:`~.watch.WatchHub`, which reads the store's revision
log, so writes of other processes and replicas reach it exactly as this process's own do.

* An object is held as its served JSON without ``apiVersion`` and ``kind`` (the only thing a
  served version changes, since versions share storage), with the fields the indexes need
  (labels, revision): a GET answers ``prefix + bytes``, a LIST joins them. Bytes are neither
  walked by the garbage collector nor ~5x larger than their JSON, as decoded dicts are.
* Names are kept sorted per namespace (a page seeks with bisect), and an index maps each
  label ``key=value`` to the names carrying it, so an equality selector touches its matches.
* A read names the revision it must reflect (:meth:`WatchCaches.reader`): a consistent read
  takes the store's current revision and waits until the hub has delivered it. A cache that
  cannot answer (still filling, the hub too slow, a continue token at a revision whose state
  the cache no longer holds) says so, and the caller reads the store as before.

The cache is filled on the first read of its resource, in a worker thread, in batches (a
decoded batch is dropped once encoded: 100k decoded objects at once would be ~300 MB).
Events delivered meanwhile are kept and applied after the list's revision, so none is lost
or applied twice. When the hub skips history (compaction overtook it), every cache lists
again.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from ..machinery.selectors import FieldSelector, LabelSelector, Operator
from ..store.base import Compacted, Event, StoreError, dumps
from ..store.offload import off_loop
from .watch import WatchHub

log = logging.getLogger("central_api.watchcache")

FILL_BATCH = 1000
FILL_WAIT = 30.0
"""Seconds a read waits for its cache's first fill before reading the store instead (the
fill of 100k objects takes a few seconds; reads meanwhile would each cost as much)."""
CATCH_UP_WAIT = 1.0
"""Seconds a consistent read waits for the hub to deliver the store's current revision
before it reads the store instead."""
RETRY_SECONDS = 1.0
INDEX_SHARE = 4
"""The label index answers a selector when its candidates are at most 1/4 of the objects in
scope; above that, scanning the sorted names costs less than sorting the candidates."""
INDEXED = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)

Ident = tuple[str, str]
"""(namespace, name); the namespace is "" for cluster-scoped objects."""


class CachedObject(NamedTuple):
    """One object as the cache holds it (a tuple of atoms: untracked by the cyclic GC)."""

    revision: int
    body: bytes
    """The served JSON after ``{"apiVersion":...,"kind":...``: the other members, each
    preceded by a comma, and the closing brace."""
    labels: dict[str, str] | None


def cached(obj: dict[str, Any]) -> CachedObject:
    """Encode a stored object once for every read of this revision."""
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    try:
        encoded = orjson.dumps(rest)
    except TypeError:  # integers beyond 64 bits, which orjson refuses
        encoded = dumps(rest)
    meta = obj.get("metadata") or {}
    labels = meta.get("labels")
    return CachedObject(int(meta.get("resourceVersion") or 0),
                        b"," + encoded[1:] if rest else b"}",
                        dict(labels) if labels else None)  # not the event's, which is shared


def served_prefix(api_version: str, kind: str) -> bytes:
    """The start of every object served in that version: ``prefix + body`` is the object."""
    return b'{"apiVersion":' + orjson.dumps(api_version) + b',"kind":' + orjson.dumps(kind)


@dataclass(slots=True)
class _Namespace:
    objects: dict[str, CachedObject] = field(default_factory=dict)
    names: builtins.list[str] = field(default_factory=list)
    """The names of ``objects``, sorted: pages seek in it."""


@dataclass(frozen=True)
class Selection:
    """What a read selects; ``after`` continues a page."""

    namespace: str | None = None
    name: str | None = None
    label: LabelSelector | None = None
    field: FieldSelector | None = None
    after: Ident | None = None
    limit: int = 0


class WatchCache:
    """The objects of one stored resource at the hub's revision, with their indexes.

    Reads and changes run on the event loop only (the hub delivers there), so a read sees
    one state without locks."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        self.filled = False
        self.changed = 0
        """The revision of the newest change held (or of the fill): the cache's state is the
        state at every revision from here to the hub's."""
        self._spaces: dict[str, _Namespace] = {}
        self._namespaces: builtins.list[str] = []
        self._index: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._pending: builtins.list[Event] | None = None

    def __len__(self) -> int:
        return sum(len(space.objects) for space in self._spaces.values())

    # -- changes -----------------------------------------------------------------------------
    def offer(self, event: Event) -> None:
        """One event of this resource, from the hub, in revision order."""
        if self._pending is not None:
            self._pending.append(event)
        elif self.filled:
            self._apply(event)

    def begin_fill(self) -> None:
        """From now on keep the events the hub delivers until :meth:`finish_fill`."""
        self.filled = False
        self._pending = []

    def load(self, objects: Iterable[tuple[str, str, CachedObject]]) -> None:
        """Hold ``objects`` (ordered by namespace and name) instead of what it held: for a
        cache no reader sees yet (a worker thread builds it)."""
        self._spaces, self._namespaces, self._index = {}, [], {}
        for namespace, name, entry in objects:
            space = self._spaces.get(namespace)
            if space is None:
                space = self._spaces[namespace] = _Namespace()
                self._namespaces.append(namespace)
            space.objects[name] = entry
            space.names.append(name)
            self._index_labels(namespace, name, entry.labels)

    def finish_fill(self, filled: WatchCache, revision: int) -> None:
        """Take the objects of ``filled`` (filled by :meth:`load` from a list read at
        ``revision``), then the events kept since :meth:`begin_fill` newer than it."""
        self._spaces, self._namespaces, self._index = (filled._spaces, filled._namespaces,
                                                       filled._index)
        self.changed = revision
        pending, self._pending = self._pending or [], None
        for event in pending:
            if event.revision > revision:
                self._apply(event)
        self.filled = True

    def _apply(self, event: Event) -> None:
        key = event.key
        if event.type == "DELETED":
            self._remove(key.namespace, key.name)
        else:
            self._put(key.namespace, key.name, cached(event.object))
        self.changed = event.revision

    def _put(self, namespace: str, name: str, entry: CachedObject) -> None:
        space = self._spaces.get(namespace)
        if space is None:
            space = self._spaces[namespace] = _Namespace()
            insort(self._namespaces, namespace)
        old = space.objects.get(name)
        space.objects[name] = entry
        if old is None:
            insort(space.names, name)
        elif old.labels == entry.labels:
            return
        else:
            self._unindex_labels(namespace, name, old.labels)
        self._index_labels(namespace, name, entry.labels)

    def _remove(self, namespace: str, name: str) -> None:
        space = self._spaces.get(namespace)
        old = space.objects.pop(name, None) if space is not None else None
        if space is None or old is None:
            return
        del space.names[bisect_left(space.names, name)]
        self._unindex_labels(namespace, name, old.labels)
        if not space.objects:
            del self._spaces[namespace]
            del self._namespaces[bisect_left(self._namespaces, namespace)]

    def _index_labels(self, namespace: str, name: str, labels: dict[str, str] | None) -> None:
        for pair in (labels or {}).items():
            self._index.setdefault(pair, {}).setdefault(namespace, set()).add(name)

    def _unindex_labels(self, namespace: str, name: str, labels: dict[str, str] | None) -> None:
        for pair in (labels or {}).items():
            spaces = self._index[pair]
            names = spaces[namespace]
            names.discard(name)
            if not names:
                del spaces[namespace]
                if not spaces:
                    del self._index[pair]

    # -- reads -------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> CachedObject | None:
        space = self._spaces.get(namespace)
        return space.objects.get(name) if space is not None else None

    def select(self, what: Selection) -> tuple[builtins.list[tuple[str, str, CachedObject]],
                                               Ident | None]:
        """The selected objects in (namespace, name) order, at most ``limit`` (0: all), and
        the last one's identity when more objects remain in scope (the continue key)."""
        out: builtins.list[tuple[str, str, CachedObject]] = []
        candidates = self._candidates(what)
        for namespace, name in candidates:
            entry = self._spaces[namespace].objects[name]
            if not self._matches(what, namespace, name, entry):
                continue
            out.append((namespace, name, entry))
            if what.limit and len(out) == what.limit:
                more = next(candidates, None) is not None
                return out, (namespace, name) if more else None
        return out, None

    @staticmethod
    def _matches(what: Selection, namespace: str, name: str, entry: CachedObject) -> bool:
        if what.label is not None and not what.label.matches(entry.labels):
            return False
        # Only metadata.name and metadata.namespace are field-selectable (the handlers
        # refuse others), and both are known without decoding the object.
        return what.field is None or what.field.matches(
            {"metadata": {"name": name, "namespace": namespace}})

    def _candidates(self, what: Selection) -> Iterator[Ident]:
        """Identities in order that may match: the pinned name, the label index's matches
        of the most selective equality requirement, or every name in scope."""
        scope = self._scope(what)
        if what.name is not None:
            return ((ns, what.name) for ns, start in scope
                    if what.name in self._spaces[ns].objects and (start is None
                                                                  or what.name > start))
        indexed = self._indexed(what, [ns for ns, _ in scope])
        if indexed is not None:
            return ((ns, name) for ns, start in scope
                    for name in sorted(n for n in indexed.get(ns, ()) if start is None
                                       or n > start))
        return self._scan(scope)

    def _scan(self, scope: builtins.list[tuple[str, str | None]]) -> Iterator[Ident]:
        for namespace, start in scope:
            names = self._spaces[namespace].names
            first = 0 if start is None else bisect_right(names, start)
            for i in range(first, len(names)):
                yield namespace, names[i]

    def _scope(self, what: Selection) -> builtins.list[tuple[str, str | None]]:
        """The namespaces to read, in order, each with the name to continue after."""
        after = what.after
        if what.namespace is not None:
            if what.namespace not in self._spaces:
                return []
            return [(what.namespace, after[1] if after else None)]
        if after is None:
            return [(ns, None) for ns in self._namespaces]
        first = bisect_left(self._namespaces, after[0])
        return [(ns, after[1] if ns == after[0] else None) for ns in self._namespaces[first:]]

    def _indexed(self, what: Selection, namespaces: builtins.list[str]
                 ) -> dict[str, set[str]] | None:
        """Candidate names per namespace from the most selective indexed requirement, or
        None when no requirement is indexed or scanning is cheaper."""
        if what.label is None:
            return None
        best: dict[str, set[str]] | None = None
        best_size = sum(len(self._spaces[ns].objects) for ns in namespaces) // INDEX_SHARE
        for requirement in what.label.requirements:
            if requirement.operator not in INDEXED:
                continue
            found: dict[str, set[str]] = {}
            for value in requirement.values:
                for ns, names in self._index.get((requirement.key, value), {}).items():
                    found[ns] = found[ns] | names if ns in found else names
            size = sum(len(found.get(ns, ())) for ns in namespaces)
            if size <= best_size:
                best, best_size = found, size
        return best


class WatchCaches:
    """The process's watch caches, one per stored resource, created on first read."""

    def __init__(self, hub: WatchHub) -> None:
        self.hub = hub
        self._caches: dict[str, WatchCache] = {}
        self._fills: dict[str, asyncio.Task[None]] = {}
        hub.follow(self)

    # -- from the hub ------------------------------------------------------------------------
    def deliver(self, event: Event) -> None:
        cache = self._caches.get(event.key.resource)
        if cache is not None:
            cache.offer(event)

    def lost(self) -> None:
        """The hub skipped events (compaction overtook it): every cache lists again."""
        for resource, cache in self._caches.items():
            self._start_fill(resource, cache)

    # -- for readers -------------------------------------------------------------------------
    async def reader(self, resource: str, resource_version: str = "",
                     exact: bool = False) -> WatchCache | None:
        """The cache of ``resource`` if it can answer a read at ``resource_version`` ("":
        the store's current revision, as kube's consistent reads; "0": any state; N: not
        older than N, or exactly N with ``exact``); None: read the store."""
        cache = await self._filled(resource)
        if cache is None or resource_version == "0":
            return cache
        if exact:
            needed = int(resource_version)
            return cache if cache.changed <= needed <= self.hub.revision else None
        if resource_version and int(resource_version) <= self.hub.revision:
            return cache
        store = self.hub.store
        current = await off_loop(store, store.current_revision)
        needed = int(resource_version) if resource_version else current
        if needed > current:
            return None  # not reached yet: the store's path answers kube's 504
        return cache if await self.hub.catch_up(needed, CATCH_UP_WAIT) else None

    async def at(self, resource: str, revision: int) -> WatchCache | None:
        """The cache of ``resource`` if it holds the state at ``revision`` (a continue
        token's snapshot): unchanged since then, once the hub has reached it."""
        cache = await self._filled(resource)
        if cache is None or cache.changed > revision:
            return None
        if revision > self.hub.revision and not await self.hub.catch_up(revision,
                                                                        CATCH_UP_WAIT):
            return None
        return cache if cache.changed <= revision else None

    async def _filled(self, resource: str) -> WatchCache | None:
        cache = self._caches.get(resource)
        if cache is None:
            cache = self._caches[resource] = WatchCache(resource)
            self._start_fill(resource, cache)
        if not cache.filled:
            await asyncio.wait([self._fills[resource]], timeout=FILL_WAIT)
        return cache if cache.filled else None

    # -- filling -----------------------------------------------------------------------------
    def _start_fill(self, resource: str, cache: WatchCache) -> None:
        running = self._fills.get(resource)
        if running is not None:
            running.cancel()
        cache.begin_fill()
        self._fills[resource] = asyncio.get_running_loop().create_task(
            self._fill(cache), name=f"watch-cache-{resource}")

    async def _fill(self, cache: WatchCache) -> None:
        """List the resource in a worker thread, retrying until the store answers."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                filled, revision = await loop.run_in_executor(None, self._read_all,
                                                              cache.resource)
            except Compacted:
                continue  # the snapshot was compacted while it was read: read a newer one
            except (StoreError, OSError) as exc:  # the database restarts: keep trying
                log.warning("watch cache %s: listing failed, retrying: %s", cache.resource, exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            cache.finish_fill(filled, revision)
            return

    def _read_all(self, resource: str) -> tuple[WatchCache, int]:
        """Every object of ``resource`` at one revision, encoded batch by batch and indexed
        (a worker thread runs this: for 100k objects it takes seconds)."""
        store = self.hub.store
        objects: builtins.list[tuple[str, str, CachedObject]] = []
        after: Ident | None = None
        revision = 0
        while True:
            page = store.list(resource, None, limit=FILL_BATCH, after=after, revision=revision)
            revision = page.revision
            for obj in page.items:
                meta = obj["metadata"]
                objects.append((meta.get("namespace", ""), meta["name"], cached(obj)))
            if page.continue_after is None:
                break
            after = page.continue_after
        filled = WatchCache(resource)
        filled.load(objects)
        return filled, revision
