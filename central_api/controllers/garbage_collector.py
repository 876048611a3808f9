"""Garbage collection and namespace termination (kube-controller-manager's job in Kubernetes).

Driven by the watch hub: every event updates an index of owner UID → dependents, and queues
the work it implies. A periodic resync re-checks everything pending, so nothing is lost when a
step fails (a conflict, a dependent that still has finalizers): it is simply retried.

- Background deletion: once an owner is gone, dependents without another live owner are
  deleted; dependents with one are left alone (the dangling reference is dropped).
- Foreground deletion: an owner carrying ``foregroundDeletion`` waits until its dependents
  are gone, then the finalizer is removed.
- Orphan: ``orphan`` removes the owner reference from dependents, then the finalizer.
- A terminating namespace has everything in it deleted, then its ``kubernetes`` finalizer
  removed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..kinds.core import NAMESPACE_FINALIZER
from ..machinery.errors import ApiError
from ..registry.resources import (
    FOREGROUND,
    ORPHAN,
    DeleteOptions,
    ListOptions,
    Resources,
    WriteOptions,
)
from ..store.base import Event, Key

log = logging.getLogger("central_api.gc")


class GarbageCollector:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.dependents: dict[str, set[Key]] = defaultdict(set)
        self.owners_of: dict[Key, set[str]] = {}
        self.live_uids: dict[str, Key] = {}
        self.pending_owners: set[str] = set()
        """UIDs of owners that are gone or finalizing and may still have dependents."""
        self.finalizing: set[Key] = set()
        self.terminating_namespaces: set[str] = set()

    # -- index -----------------------------------------------------------------------------
    def rebuild(self, also: Callable[[Key, dict[str, Any]], None] | None = None) -> None:
        """Index every stored object (at start, and after a watch overflow); ``also`` is
        shown each object too, so another index of every object costs no second scan."""
        self.dependents.clear()
        self.owners_of.clear()
        self.live_uids.clear()
        for resource in {rt.storage_resource for rt in self.resources.catalog.all()}:
            for obj in self.resources.store.iter_list(resource, None, 0, None, 1000):
                meta = obj["metadata"]
                key = Key(resource, meta.get("namespace", ""), meta["name"])
                self._index(key, obj)
                if also is not None:
                    also(key, obj)
        self.pending_owners |= {uid for uid in self.dependents if uid not in self.live_uids}

    def _index(self, key: Key, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self._unindex(key)
        if uid := meta.get("uid"):
            self.live_uids[uid] = key
        owners = {ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("uid")}
        self.owners_of[key] = owners
        for owner in owners:
            self.dependents[owner].add(key)
        if meta.get("deletionTimestamp"):
            if {FOREGROUND, ORPHAN} & set(meta.get("finalizers") or []):
                self.finalizing.add(key)
            if key.resource == "core/namespaces":
                self.terminating_namespaces.add(key.name)

    def _unindex(self, key: Key) -> None:
        for owner in self.owners_of.pop(key, set()):
            self.dependents[owner].discard(key)
            if not self.dependents[owner]:
                del self.dependents[owner]

    def observe(self, event: Event) -> None:
        if event.type == "DELETED":
            self._unindex(event.key)
            uid = event.object["metadata"].get("uid")
            if uid:
                self.live_uids.pop(uid, None)
                if uid in self.dependents:
                    self.pending_owners.add(uid)
            self.finalizing.discard(event.key)
            return
        self._index(event.key, event.object)

    # -- work ------------------------------------------------------------------------------
    def process(self) -> None:
        for key in list(self.finalizing):
            self._attempt(self._finalize_owner, key)
        for uid in list(self.pending_owners):
            self._attempt(self._collect_dependents, uid)
        for namespace in list(self.terminating_namespaces):
            self._attempt(self._terminate_namespace, namespace)

    def _attempt(self, step: Any, arg: Any) -> None:
        try:
            step(arg)
        except ApiError as exc:
            log.debug("garbage collection step %s(%s) will be retried: %s", step.__name__,
                      arg, exc)

    def _get(self, key: Key) -> tuple[Any, dict[str, Any]] | None:
        rt = self.resources.catalog.by_storage_resource(key.resource)
        if rt is None:
            return None
        try:
            return rt, self.resources.get(rt, key.namespace, key.name)
        except ApiError:
            return None

    def _delete(self, key: Key, propagation: str = "Background") -> None:
        found = self._get(key)
        if found is not None:
            rt, obj = found
            if not obj["metadata"].get("deletionTimestamp"):
                self.resources.delete(rt, key.namespace, key.name,
                                      DeleteOptions(propagation=propagation))

    def _collect_dependents(self, owner_uid: str) -> None:
        if owner_uid in self.live_uids:
            self.pending_owners.discard(owner_uid)
            return
        for key in list(self.dependents.get(owner_uid, ())):
            others = self.owners_of.get(key, set()) - {owner_uid}
            if any(uid in self.live_uids for uid in others):
                self._drop_owner_reference(key, owner_uid)
            else:
                self._delete(key)
        if not self.dependents.get(owner_uid):
            self.pending_owners.discard(owner_uid)

    def _drop_owner_reference(self, key: Key, owner_uid: str) -> None:
        found = self._get(key)
        if found is None:
            return
        rt, obj = found
        refs = [r for r in obj["metadata"].get("ownerReferences") or []
                if r.get("uid") != owner_uid]
        obj["metadata"]["ownerReferences"] = refs
        if not refs:
            del obj["metadata"]["ownerReferences"]
        self.resources.update(rt, key.namespace, key.name, obj, WriteOptions(
            field_manager="scs-garbage-collector", field_validation="Ignore"))

    def _finalize_owner(self, key: Key) -> None:
        found = self._get(key)
        if found is None:
            self.finalizing.discard(key)
            return
        rt, obj = found
        finalizers = obj["metadata"].get("finalizers") or []
        uid = obj["metadata"]["uid"]
        if ORPHAN in finalizers:
            for dependent in list(self.dependents.get(uid, ())):
                self._drop_owner_reference(dependent, uid)
            if not self.dependents.get(uid):
                self.resources.remove_finalizer(rt, obj, ORPHAN)
        elif FOREGROUND in finalizers:
            for dependent in list(self.dependents.get(uid, ())):
                self._delete(dependent, "Foreground")
            if not self.dependents.get(uid):
                self.resources.remove_finalizer(rt, obj, FOREGROUND)
        else:
            self.finalizing.discard(key)

    def _terminate_namespace(self, name: str) -> None:
        found = self._get(Key("core/namespaces", "", name))
        if found is None:
            self.terminating_namespaces.discard(name)
            return
        ns_type, namespace = found
        remaining = 0
        for resource in self.resources.catalog.namespaced_storage_resources():
            rt = self.resources.catalog.by_storage_resource(resource)
            if rt is None:
                continue  # its CRD went away meanwhile
            for obj in self.resources.list(rt, name, ListOptions())["items"]:
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self._attempt(self._delete, Key(resource, name, obj["metadata"]["name"]))
        if remaining == 0:
            self._release_namespace(ns_type, namespace)

    def _release_namespace(self, ns_type: Any, namespace: dict[str, Any]) -> None:
        def drop_spec_finalizer(obj: dict[str, Any]) -> None:
            spec = obj.setdefault("spec", {})
            spec["finalizers"] = [f for f in spec.get("finalizers") or []
                                  if f != NAMESPACE_FINALIZER]

        self.resources.remove_finalizer(ns_type, namespace, NAMESPACE_FINALIZER,
                                        mutate=drop_spec_finalizer)
