"""The generic half of every sandbox service: the find/create/update/delete protocol.

The order of steps is what makes the simulated cloud behave like a real one and survive
crashes: injected faults first (a dead backend fails before doing anything), then validation
(``InvalidRequest``) and dependencies (``Conflict``), then quota (``QuotaExceeded``), and only
then writes, each of which is idempotent on retry. Kind modules fill in the hooks.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from ...store.base import Store
from ...store.offload import off_loop
from ..base import BackendResource, Conflict, InvalidRequest, NotFound, Scope
from . import addresses, quotas
from .faults import Faults
from .records import Record, Records
from .settings import PREFIX, SandboxSettings

Desired = dict[str, Any]
PROBE_NAMESPACE, PROBE_OWNER = "scs-health-probe", "scs-health-probe"
"""Where a health probe looks (nothing is ever there)."""
T = TypeVar("T")


class Sandbox:
    """What all services of one provider share: the store, settings, records and faults."""

    def __init__(self, store: Store, settings: SandboxSettings) -> None:
        self.store = store
        self.settings = settings
        self.records = Records(store, settings)
        self.faults = Faults(store, settings)
        self.busy = asyncio.Lock()
        """One operation's store work at a time in this process (see ``SandboxService._run``)."""


class SandboxService:
    """Implements :class:`~central_api.providers.base.ResourceService` for one kind."""

    kind: ClassVar[str]
    immutable: ClassVar[tuple[str, ...]] = ()
    """Desired keys that cannot change; a change is InvalidRequest (replace the object)."""
    busy_on_update: ClassVar[bool] = False
    """Updates are refused (Conflict, retryable) while the resource is still PENDING."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store
        self.records = sandbox.records

    # -- the contract ------------------------------------------------------------------------
    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        await self.sandbox.faults.check(self.kind, "find", scope.namespace)
        return await self._run(self._find, scope.namespace, owner_uid)

    async def health(self) -> None:
        """The health probe: a lasting injected outage of the kind fails it; else one
        record lookup, as cheap as a ``find``."""
        await self.sandbox.faults.outage(self.kind)
        await self._run(self._find, PROBE_NAMESPACE, PROBE_OWNER)

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        error = await self.sandbox.faults.check(self.kind, "create", scope.namespace)
        return await self._run(self._create, scope, owner_uid, desired, error)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        error = await self.sandbox.faults.check(self.kind, "update", scope.namespace)
        return await self._run(self._update, scope, resource, desired, error)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        await self.sandbox.faults.check(self.kind, "delete", scope.namespace)
        await self._run(self._delete, scope.namespace, resource)

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        """An operation's store work: in a worker thread on PostgreSQL (like the OpenStack
        provider's calls), one at a time as when it all ran on the event loop, so that no
        other create comes between a quota check and the insert it allowed. Waiting for
        the turn holds no thread."""
        async with self.sandbox.busy:
            return await off_loop(self.store, work, *args)

    def _find(self, ns: str, owner_uid: str) -> BackendResource | None:
        rec = self.records.by_owner(self.kind, ns, owner_uid)
        return None if rec is None else self.view(rec)

    def _create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any], error: str
                ) -> BackendResource:
        ns = scope.namespace
        existing = self.records.by_owner(self.kind, ns, owner_uid)
        if existing is not None:
            return self.view(existing)
        wanted: Desired = copy.deepcopy(dict(desired))
        self.validate(ns, wanted, None)
        usage = self.usage(wanted)
        quotas.check(self.records, self.kind, scope, usage)
        backend_id = self.records.claim_owner(self.kind, ns, owner_uid)
        data = self.allocate(ns, backend_id, wanted, None)
        rec = self.records.insert(self.kind, ns, backend_id, owner_uid, wanted, data, usage,
                                  error)
        return self.view(rec)

    def _update(self, scope: Scope, resource: BackendResource, desired: Mapping[str, Any],
                error: str) -> BackendResource:
        ns = scope.namespace
        rec = self._existing(ns, resource.id)
        if rec.get("deleting"):
            raise Conflict(f"{PREFIX}: {self.kind} {rec['id']} is being deleted")
        wanted: Desired = copy.deepcopy(dict(desired))
        for key in self.immutable:
            # Absent, null and empty are the same: records written before a field existed
            # lack it, and a new field must not turn into a change of every old resource.
            if (wanted.get(key) or None) != (rec["desired"].get(key) or None):
                raise InvalidRequest(f"{PREFIX}: {key} of {self.kind} {rec['id']} cannot be "
                                     "changed; delete and recreate the object instead")
        if self.busy_on_update and self.records.state(rec) == "PENDING":
            raise Conflict(f"{PREFIX}: {self.kind} {rec['id']} is still being created or "
                           "updated; try again shortly")
        self.validate(ns, wanted, rec)
        usage = self.usage(wanted)
        quotas.check(self.records, self.kind, scope, usage, replacing=rec)
        data = self.allocate(ns, rec["id"], wanted, rec)
        self.on_update(rec, wanted, data)
        rec.update(desired=wanted, data=data, usage=usage)
        if error:
            rec["error"] = error
        return self.view(self.records.save(rec))

    def _delete(self, ns: str, resource: BackendResource) -> None:
        rec = self.records.get(self.kind, ns, resource.id)
        if rec is None or rec.get("deleting"):
            return
        self.check_delete(ns, rec)
        self.on_delete(ns, rec)
        addresses.release(self.store, ns, rec["id"])
        addresses.release(self.store, "", rec["id"])
        self.records.mark_deleting(rec)

    # -- hooks -------------------------------------------------------------------------------
    def validate(self, namespace: str, desired: Desired, current: Record | None) -> None:
        """Raise InvalidRequest for a bad request, Conflict for a missing dependency."""

    def usage(self, desired: Desired) -> dict[str, int]:
        return {}

    def allocate(self, namespace: str, backend_id: str, desired: Desired,
                 current: Record | None) -> dict[str, Any]:
        """Claim addresses etc.; must reuse what an interrupted earlier try claimed."""
        return dict(current["data"]) if current else {}

    def on_update(self, rec: Record, desired: Desired, data: dict[str, Any]) -> None:
        """Adjust the record before an update is saved (e.g. a resize makes it busy)."""

    def check_delete(self, namespace: str, rec: Record) -> None:
        """Raise Conflict while something still depends on the resource."""

    def on_delete(self, namespace: str, rec: Record) -> None:
        """Side effects of deleting (detach, disassociate)."""

    def observed(self, rec: Record) -> dict[str, Any]:
        return {}

    # -- helpers -----------------------------------------------------------------------------
    def view(self, rec: Record) -> BackendResource:
        return self.records.view(rec, self.observed(rec))

    def _existing(self, namespace: str, backend_id: str) -> Record:
        rec = self.records.get(self.kind, namespace, backend_id)
        if rec is None:
            raise NotFound(f"{PREFIX}: {self.kind} {backend_id} does not exist in namespace "
                           f"{namespace}")
        return rec

    def require(self, kind: str, namespace: str, backend_id: str, used_by: str,
                active: bool = False) -> Record:
        """A live resource this one depends on; Conflict (retryable) if it is missing."""
        rec = self.records.get(kind, namespace, backend_id) if backend_id else None
        if rec is None or rec.get("deleting"):
            raise Conflict(f"{PREFIX}: {kind} {backend_id!r} needed by this {used_by} does "
                           f"not exist in namespace {namespace}")
        if active and self.records.state(rec) != "ACTIVE":
            raise Conflict(f"{PREFIX}: {kind} {backend_id} is {self.records.state(rec)}, not "
                           "ACTIVE yet")
        return rec

    def in_use(self, what: Record, users: list[Record], how: str) -> None:
        if users:
            names = ", ".join(f"{u['kind']} {u['id']}" for u in users[:5])
            raise Conflict(f"{PREFIX}: {what['kind']} {what['id']} is still {how} {names}; "
                           "delete or detach those first")
