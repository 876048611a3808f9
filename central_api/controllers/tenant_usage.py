"""Reports each Tenant's storage usage in ``status.apiUsage`` (objects and bytes it keeps).

The numbers come from the storage-quota index every replica keeps from the event stream;
the leader writes them when they change, so a tenant admin sees how close the tenant is to
``spec.quotas.apiObjects``/``apiBytes`` before a write is refused.
"""

from __future__ import annotations

import logging

import orjson

from ..auth.storage_quota import StorageUsage, Usage
from ..auth.tenants import TENANCY_GROUP
from ..machinery.errors import ApiError
from ..registry.resources import Resources, WriteOptions

log = logging.getLogger("central_api.tenant_usage")

MANAGER = "scs-tenant-usage"
MERGE_PATCH = "application/merge-patch+json"


class TenantUsageReporter:
    def __init__(self, resources: Resources, usage: StorageUsage) -> None:
        self.resources = resources
        self.usage = usage
        self.reported: dict[str, Usage] = {}
        """What this process last wrote per tenant."""
        self.pending: set[str] = set()
        self.everything = True
        """A new leader writes every tenant's usage once: its predecessor's may be stale."""

    def sync(self) -> None:
        rt = self.resources.catalog.lookup(TENANCY_GROUP, "v1alpha1", "tenants")
        if rt is None:
            return
        self.pending |= self.usage.take_changed()
        if self.everything:
            self.pending |= self.usage.tenants() | set(self.reported)
            self.everything = False
        for tenant in sorted(self.pending):
            self.pending.discard(tenant)
            now = self.usage.of_tenant(tenant)
            if self.reported.get(tenant) == now:
                continue
            patch = orjson.dumps({"status": {"apiUsage": now.as_status()}})
            try:
                self.resources.patch(rt, "", tenant, MERGE_PATCH, patch,
                                     WriteOptions(field_manager=MANAGER), "status")
            except ApiError as exc:
                if exc.code == 404:  # namespaces labelled for a tenant that does not exist
                    self.reported.pop(tenant, None)
                    continue
                log.info("usage of tenant %s will be reported again: %s", tenant, exc)
                self.pending.add(tenant)
                continue
            self.reported[tenant] = now

    def forget(self) -> None:
        """Write everything again when this process leads (again)."""
        self.reported.clear()
        self.everything = True
