"""Backend resources as store records, and lifecycles derived from time instead of threads.

A record keeps when it was created and how long it takes to become ready; every read derives
the state from the clock (PENDING → ACTIVE, DELETING → gone). Nothing runs in the
background, so a restarted server sees exactly the cloud it left, and a record whose deletion
delay has passed is purged by whoever reads it next.

Crash safety without multi-key transactions: ``create`` first claims the owner index
``<plural>.<owner uid>`` (``KeyExists`` means an earlier attempt already chose the backend id,
which is then reused), then writes the record under that id. A crash between the two writes
leaves an index without a record, which ``find`` treats as "not there" and the retried
``create`` completes, so a retry can never produce a second resource. Purging goes the other
way round (index first), so a half-purged resource is already invisible.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from ...store.base import KeyExists, KeyNotFound, RevisionConflict, Store
from ..base import BackendResource, Conflict, State
from . import addresses
from .keys import owner_key, record_key, resource
from .settings import PREFIX, SandboxSettings

Record = dict[str, Any]


class Records:
    """Typed access to the sandbox records of one store."""

    def __init__(self, store: Store, settings: SandboxSettings) -> None:
        self.store = store
        self.settings = settings

    def now(self) -> float:
        return self.settings.clock()

    # -- lifecycle ---------------------------------------------------------------------------
    def state(self, rec: Record) -> State:
        now = self.now()
        if rec.get("deleting"):
            return "DELETING"
        if now < rec["createdAt"] + rec["readyAfter"] or now < rec.get("busyUntil", 0.0):
            return "PENDING"
        return "ERROR" if rec.get("error") else "ACTIVE"

    def gone(self, rec: Record) -> bool:
        return bool(rec.get("deleting")) and self.now() >= rec["goneAt"]

    def view(self, rec: Record, observed: Mapping[str, Any]) -> BackendResource:
        state = self.state(rec)
        message = ""
        if state == "ERROR":
            message = str(rec["error"])
        elif state == "PENDING" and rec.get("busyUntil", 0.0) > self.now():
            message = f"{PREFIX}: {rec.get('busyReason') or 'updating'}"
        return BackendResource(id=rec["id"], owner_uid=rec["ownerUID"], state=state,
                               message=message, desired=copy.deepcopy(rec["desired"]),
                               observed={**observed, "simulated": True})

    # -- reads -------------------------------------------------------------------------------
    def get(self, kind: str, namespace: str, backend_id: str) -> Record | None:
        """The record, or None if it does not exist (any more)."""
        try:
            rec = self.store.get(record_key(kind, namespace, backend_id))
        except KeyNotFound:
            return None
        if self.gone(rec):
            self.purge(rec)
            return None
        return rec

    def by_owner(self, kind: str, namespace: str, owner_uid: str) -> Record | None:
        try:
            index = self.store.get(owner_key(kind, namespace, owner_uid))
        except KeyNotFound:
            return None
        return self.get(kind, namespace, index["id"])

    def all(self, kind: str, namespace: str | None) -> list[Record]:
        """Every existing record (DELETING included) of ``kind``, purging the expired."""
        out = []
        for rec in self.store.list(resource(kind), namespace).items:
            if self.gone(rec):
                self.purge(rec)
            else:
                out.append(rec)
        return out

    def live(self, kind: str, namespace: str) -> list[Record]:
        """Records of ``kind`` that are not being deleted: what dependencies look at."""
        return [r for r in self.all(kind, namespace) if not r.get("deleting")]

    # -- writes ------------------------------------------------------------------------------
    def claim_owner(self, kind: str, namespace: str, owner_uid: str) -> str:
        """The backend id for ``owner_uid``: a fresh one, or the one an earlier try chose."""
        key = owner_key(kind, namespace, owner_uid)
        try:
            self.store.create(key, {"kind": kind, "id": str(uuid.uuid4()), "ownerUID": owner_uid})
        except KeyExists:
            pass
        return str(self.store.get(key)["id"])

    def insert(self, kind: str, namespace: str, backend_id: str, owner_uid: str,
               desired: Mapping[str, Any], data: Mapping[str, Any],
               usage: Mapping[str, int], error: str = "") -> Record:
        """Write a new record; if an earlier try already wrote it, return that one."""
        rec: Record = {
            "id": backend_id, "kind": kind, "namespace": namespace, "ownerUID": owner_uid,
            "createdAt": self.now(), "readyAfter": self.settings.ready_delay(kind),
            "desired": copy.deepcopy(dict(desired)), "data": dict(data), "usage": dict(usage),
            "error": error, "deleting": False,
        }
        try:
            return self.store.create(record_key(kind, namespace, backend_id), rec)
        except KeyExists:
            return self.store.get(record_key(kind, namespace, backend_id))

    def save(self, rec: Record) -> Record:
        """Write back a changed record; Conflict if someone else changed it meanwhile."""
        key = record_key(rec["kind"], rec["namespace"], rec["id"])
        try:
            return self.store.update(key, rec, int(rec["metadata"]["resourceVersion"]))
        except (RevisionConflict, KeyNotFound):
            raise Conflict(f"{PREFIX}: {rec['kind']} {rec['id']} was changed concurrently; "
                           "try again") from None

    def mark_deleting(self, rec: Record) -> None:
        delay = self.settings.delete_delay(rec["kind"])
        if delay <= 0:
            self.purge(rec)
            return
        rec.update(deleting=True, goneAt=self.now() + delay)
        self.save(rec)

    def purge(self, rec: Record) -> None:
        """Remove a resource for good: owner index, addresses, then the record."""
        ns = rec["namespace"]
        self._drop_owner_index(rec)
        addresses.release(self.store, ns, rec["id"])
        addresses.release(self.store, "", rec["id"])
        if rec["kind"] == "Subnet":
            addresses.release_pool(self.store, ns, rec["id"])
        try:
            self.store.delete(record_key(rec["kind"], ns, rec["id"]))
        except KeyNotFound:
            pass

    def _drop_owner_index(self, rec: Record) -> None:
        """Delete the index entry, unless it already names a newer resource of that owner."""
        key = owner_key(rec["kind"], rec["namespace"], rec["ownerUID"])
        try:
            index = self.store.get(key)
            if index["id"] == rec["id"]:
                self.store.delete(key, int(index["metadata"]["resourceVersion"]))
        except (KeyNotFound, RevisionConflict):
            pass
