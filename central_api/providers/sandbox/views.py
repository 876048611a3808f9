"""In-memory views of one record type in one namespace, kept exact from the store's log.

Why: the quota check (usage summed over a namespace's records) and IP allocation (every
reservation of a namespace) used to list and JSON-decode all of them on every create. At
thousands of Servers in a namespace that was ~70% of reconcile time, and it made every create
cost more than the one before. A view lists once, then before every use applies only the
changes committed since it last looked (:meth:`Store.changes_since`, a range scan over the
newest revisions), so it sees exactly what a fresh list would — including writes of other
API server processes on a shared PostgreSQL. If compaction has removed part of the history
it needs, it starts over from a list.

Views hold derived data only (sums, indexes), not the records, and are shared by everything
that uses the same store in this process.
"""

from __future__ import annotations

import ipaddress
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ...store.base import Compacted, Store

Obj = dict[str, Any]
V = TypeVar("V", bound="View")

_views: weakref.WeakKeyDictionary[Store, dict[tuple[type[View], str, str], View]] = \
    weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


class View:
    """Derived state of the objects of ``resource`` in ``namespace``; subclasses implement
    :meth:`reset` and :meth:`apply`. Use it inside ``with view.current():``."""

    def __init__(self, store: Store, resource: str, namespace: str) -> None:
        self.store = store
        self.resource = resource
        self.namespace = namespace
        self.revision = 0
        self.lock = threading.RLock()

    @classmethod
    def of(cls: type[V], store: Store, resource: str, namespace: str) -> V:
        """The shared view of this class for (store, resource, namespace)."""
        with _registry_lock:
            views = _views.setdefault(store, {})
            key = (cls, resource, namespace)
            view = views.get(key)
            if view is None:
                view = views[key] = cls(store, resource, namespace)
        return cast(V, view)  # the key includes the class

    def refresh(self) -> None:
        """Catch up with the store: the changes since the last look, or a full list."""
        if self.revision:
            try:
                events, revision = self.store.changes_since(self.resource, self.namespace,
                                                            self.revision)
            except Compacted:
                pass
            else:
                for event in events:
                    self.apply(event.key.name, None if event.type == "DELETED"
                               else event.object)
                self.revision = revision
                return
        page = self.store.list(self.resource, self.namespace)
        self.reset()
        for obj in page.items:
            self.apply(self.name_of(obj), obj)
        self.revision = page.revision

    def current(self) -> _Current:
        """Context manager: holds the view's lock and refreshes it first."""
        return _Current(self)

    def reset(self) -> None:
        raise NotImplementedError

    def name_of(self, obj: Obj) -> str:
        """The key name of a listed object (store values do not carry their key)."""
        raise NotImplementedError

    def apply(self, name: str, obj: Obj | None) -> None:
        """The object ``name`` is now ``obj`` (None: it was deleted)."""
        raise NotImplementedError


class _Current:
    def __init__(self, view: View) -> None:
        self.view = view

    def __enter__(self) -> None:
        self.view.lock.acquire()
        try:
            self.view.refresh()
        except BaseException:
            self.view.lock.release()
            raise

    def __exit__(self, *_: object) -> None:
        self.view.lock.release()


class UsageView(View):
    """Sandbox records of one kind: the usage summed over those not being deleted, and the
    records being deleted (whoever looks purges those whose deletion delay has passed)."""

    def reset(self) -> None:
        self.usage: dict[str, dict[str, int]] = {}
        """Usage of every live (not deleting) record, by record name (= backend id)."""
        self.totals: dict[str, int] = {}
        self.deleting: dict[str, Obj] = {}

    def name_of(self, obj: Obj) -> str:
        return str(obj["id"])  # records are stored under their backend id

    def apply(self, name: str, obj: Obj | None) -> None:
        old = self.usage.pop(name, None)
        if old is not None:
            self._add(old, -1)
        self.deleting.pop(name, None)
        if obj is None:
            return
        if obj.get("deleting"):
            self.deleting[name] = obj
            return
        usage = {q: int(n) for q, n in (obj.get("usage") or {}).items()}
        self.usage[name] = usage
        self._add(usage, 1)

    def _add(self, usage: dict[str, int], sign: int) -> None:
        for quota, amount in usage.items():
            self.totals[quota] = self.totals.get(quota, 0) + sign * amount

    def purge_gone(self, gone: Callable[[Obj], bool], purge: Callable[[Obj], None]) -> None:
        for rec in [r for r in self.deleting.values() if gone(r)]:
            purge(rec)


class AddressView(View):
    """The IP reservations of one namespace, indexed by holder and by pool, plus per pool
    where the search for a free address may start (every address before it is taken)."""

    def reset(self) -> None:
        self.items: dict[str, Obj] = {}
        self.by_holder: dict[str, set[str]] = {}
        self.by_pool: dict[str, set[str]] = {}
        self.taken: dict[str, set[str]] = {}
        """Pool → its reserved addresses."""
        self.hints: dict[tuple[str, str, frozenset[str]], tuple[int, int]] = {}
        """(pool, cidr, excluded) → (first host as int, index of the first host that may be
        free): every host before that index is reserved or excluded."""

    def name_of(self, obj: Obj) -> str:
        return f"{obj['pool']}_{obj['ip']}"  # the key that claims the address

    def apply(self, name: str, obj: Obj | None) -> None:
        old = self.items.pop(name, None)
        if old is not None:
            self.by_holder[old["holder"]].discard(name)
            self.by_pool[old["pool"]].discard(name)
            self.taken[old["pool"]].discard(old["ip"])
            self._released(old["pool"], old["ip"])
        if obj is None:
            return
        item = {"pool": obj["pool"], "ip": obj["ip"], "holder": obj["holder"],
                "purpose": obj["purpose"]}
        self.items[name] = item
        self.by_holder.setdefault(item["holder"], set()).add(name)
        self.by_pool.setdefault(item["pool"], set()).add(name)
        self.taken.setdefault(item["pool"], set()).add(item["ip"])

    def _released(self, pool: str, ip: str) -> None:
        """An address became free: searches must look at it again."""
        value = int(ipaddress.ip_address(ip))
        for key, (first, index) in list(self.hints.items()):
            if key[0] == pool and first <= value < first + index:
                self.hints[key] = (first, value - first)

    def holder_items(self, holder: str) -> list[Obj]:
        """The holder's reservations in the order a list returns them (by name)."""
        return [self.items[n] for n in sorted(self.by_holder.get(holder, ()))]

    def pool_items(self, pool: str) -> list[Obj]:
        return [self.items[n] for n in sorted(self.by_pool.get(pool, ()))]
