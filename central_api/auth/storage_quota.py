"""Per-tenant storage quota: the objects a tenant keeps in the Central API's own store.

Why: every object a member writes costs the store, every watch and every list; without a
bound a member added 60 MB in under two seconds. A tenant's namespaces may hold at most
``apiObjects`` objects of at most ``apiBytes`` bytes together (its Tenant's quotas, else the
operator's defaults), on top of the per-object limit every write has.

The usage is kept exact from the event stream every replica follows (an index of each
object's size, rebuilt with the garbage collector's at start), so admission is a dictionary
lookup rather than a scan of the tenant's objects. Between replicas it may trail a write by
the watch delay, so concurrent writers can overshoot by what they write in that moment —
the same bound kube's ResourceQuota accepts for its cached usage.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ..kinds.kind import ResourceType
from ..machinery.errors import ApiError
from ..machinery.user import MASTERS
from ..registry.resources import WriteOptions
from ..store.base import Event, Key, encoded_size
from .tenants import TenantDirectory, tenant_label

NAMESPACES = "core/namespaces"


@dataclass
class Usage:
    objects: int = 0
    bytes: int = 0

    def as_status(self) -> dict[str, int]:
        return {"objects": self.objects, "bytes": self.bytes}


class StorageUsage:
    """Objects and bytes per namespace and the tenant of each namespace, from the events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sizes: dict[Key, int] = {}
        self._namespaces: dict[str, Usage] = {}
        self._tenant_of: dict[str, str] = {}
        self._namespaces_of: dict[str, set[str]] = {}
        self._changed: set[str] = set()

    def clear(self) -> None:
        with self._lock:
            self._changed |= set(self._namespaces_of)
            for index in (self._sizes, self._namespaces, self._tenant_of, self._namespaces_of):
                index.clear()

    def index(self, key: Key, obj: dict[str, Any]) -> None:
        """Count ``obj`` (stored under ``key``), replacing what was counted for it before."""
        with self._lock:
            if key.resource == NAMESPACES:
                self._assign(key.name, tenant_label(obj))
            if not key.namespace:
                return
            size = encoded_size(obj)
            usage = self._namespaces.setdefault(key.namespace, Usage())
            old = self._sizes.get(key)
            usage.objects += old is None
            usage.bytes += size - (old or 0)
            self._sizes[key] = size
            self._touch(key.namespace)

    def observe(self, event: Event) -> None:
        if event.type != "DELETED":
            self.index(event.key, event.object)
            return
        with self._lock:
            if event.key.resource == NAMESPACES:
                self._assign(event.key.name, None)
            size = self._sizes.pop(event.key, None)
            usage = self._namespaces.get(event.key.namespace)
            if size is None or usage is None:
                return
            usage.objects -= 1
            usage.bytes -= size
            if usage.objects <= 0:
                del self._namespaces[event.key.namespace]
            self._touch(event.key.namespace)

    def _assign(self, namespace: str, tenant: str | None) -> None:
        previous = self._tenant_of.get(namespace)
        if previous == tenant:
            return
        if previous is not None:
            self._namespaces_of[previous].discard(namespace)
            if not self._namespaces_of[previous]:
                del self._namespaces_of[previous]
            self._changed.add(previous)
            del self._tenant_of[namespace]
        if tenant:
            self._tenant_of[namespace] = tenant
            self._namespaces_of.setdefault(tenant, set()).add(namespace)
            self._changed.add(tenant)

    def _touch(self, namespace: str) -> None:
        if tenant := self._tenant_of.get(namespace):
            self._changed.add(tenant)

    def tenant_of(self, namespace: str) -> str | None:
        return self._tenant_of.get(namespace)

    def size_of(self, key: Key) -> int:
        return self._sizes.get(key, 0)

    def of_tenant(self, tenant: str) -> Usage:
        with self._lock:
            total = Usage()
            for namespace in self._namespaces_of.get(tenant, ()):
                if usage := self._namespaces.get(namespace):
                    total.objects += usage.objects
                    total.bytes += usage.bytes
            return total

    def take_changed(self) -> set[str]:
        """Tenants whose usage may have changed since the last call."""
        with self._lock:
            changed, self._changed = self._changed, set()
            return changed

    def tenants(self) -> set[str]:
        with self._lock:
            return set(self._namespaces_of)


class StorageQuotaAdmission:
    """Refuses a write into a tenant's namespace that would take the tenant over its quota.

    Only growth is refused: deletes, and updates that keep or shrink an object, always pass,
    so a tenant over its quota (after the operator lowered it) can still clean up. The
    server's own controllers (no user) and the operator (system:masters) are not limited:
    refusing a controller's status write would stall reconciliation, not protect the store."""

    def __init__(self, usage: StorageUsage, directory: TenantDirectory) -> None:
        self.usage = usage
        self.directory = directory

    def __call__(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                 size: int, opts: WriteOptions) -> None:
        if not rt.namespaced or opts.user is None or MASTERS in opts.user.groups:
            return
        meta = obj["metadata"]
        tenant = self.usage.tenant_of(meta.get("namespace", ""))
        if tenant is None:
            return
        max_objects, max_bytes = self.directory.storage_quota(tenant)
        used = self.usage.of_tenant(tenant)
        key = Key(rt.storage_resource, meta["namespace"], meta["name"])
        added = size - (self.usage.size_of(key) if old is not None else 0)
        if old is None and used.objects + 1 > max_objects:
            raise self._exceeded(rt, meta["name"], tenant, "apiObjects", 1, used.objects,
                                 max_objects)
        if added > 0 and used.bytes + added > max_bytes:
            raise self._exceeded(rt, meta["name"], tenant, "apiBytes", added, used.bytes,
                                 max_bytes)

    @staticmethod
    def _exceeded(rt: ResourceType, name: str, tenant: str, what: str, requested: int,
                  used: int, limited: int) -> ApiError:
        """kube's ResourceQuota wording, with the tenant as the quota's name."""
        return ApiError(403, "Forbidden",
                        f'{rt.qualified} "{name}" is forbidden: exceeded quota of tenant '
                        f'"{tenant}", requested: {what}={requested}, used: {what}={used}, '
                        f"limited: {what}={limited}", group=rt.group, kind=rt.plural,
                        name=name)
