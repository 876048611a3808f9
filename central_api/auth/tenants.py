"""The tenant boundary: what a Tenant's admins (the SCS domain managers) may do beyond RBAC.

RBAC grants ``tenant-admin`` inside the tenant's namespaces (a controller keeps a RoleBinding
in each). Two things RBAC cannot express are decided here:

- creating a namespace *for their tenant*: allowed to a tenant admin, and admission then
  requires the tenant label to name a tenant the caller administers and enforces the tenant's
  namespace quota;
- reading their own Tenant object (``get`` by name only: no list, which would leak others).

A namespace belongs to the tenant named by its ``tenancy.scs.community/tenant`` label; only
whoever may ``update tenants`` (the operator) can set or change that label afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ..kinds.kind import ResourceType
from ..kinds.tenancy import admin_usernames
from ..machinery import errors
from ..machinery.user import User
from ..registry.informers import Informers, on_any_change
from ..registry.resources import ListOptions, Resources, WriteOptions
from .authz import Attributes, Authorizer, Decision

TENANT_LABEL = "tenancy.scs.community/tenant"
TENANCY_GROUP = "tenancy.scs.community"
TENANTS = f"{TENANCY_GROUP}/tenants"
UNLIMITED = 1 << 62


def tenant_label(obj: Mapping[str, Any] | None) -> str | None:
    """The tenant an object (a namespace) is labelled for; None for the operator's own.
    Only the operator may set the label, so it is what decides a namespace's tenant."""
    return (((obj or {}).get("metadata") or {}).get("labels") or {}).get(TENANT_LABEL)


class TenantDirectory:
    """Tenants, their admins and quotas, from the shared Tenant informer.

    The tables are derived again at the first read after a change (reads come from requests
    and from admission in worker threads; a change only marks them stale)."""

    def __init__(self, informers: Informers,
                 storage_defaults: tuple[int, int] = (UNLIMITED, UNLIMITED)) -> None:
        self._tenants = informers.informer(TENANTS)
        self._tenants.add_handlers(on_any_change(self._stale))
        self.storage_defaults = storage_defaults
        """(objects, bytes) a tenant may store when its quotas do not say (the operator's
        ``limits.tenantAPIObjects`` and ``limits.tenantAPIBytes``)."""
        self._lock = threading.Lock()
        self._admins: dict[str, set[str]] = {}
        self._quotas: dict[str, dict[str, Any]] = {}
        self._current = False

    def _stale(self) -> None:
        self._current = False

    def _refresh(self) -> None:
        with self._lock:
            if self._current:
                return
            self._current = True  # before reading: a change meanwhile marks it stale again
            tenants = self._tenants.list()
            self._admins = {t["metadata"]["name"]: set(admin_usernames(t)) for t in tenants}
            self._quotas = {t["metadata"]["name"]: (t.get("spec") or {}).get("quotas") or {}
                            for t in tenants}

    def administered_by(self, user: User) -> set[str]:
        self._refresh()
        return {name for name, admins in self._admins.items() if user.name in admins}

    def namespace_quota(self, tenant: str) -> int | None:
        self._refresh()
        found = self._quotas.get(tenant, {}).get("namespaces")
        return found if isinstance(found, int) else None

    def storage_quota(self, tenant: str) -> tuple[int, int]:
        """(objects, bytes) the tenant may keep in its namespaces."""
        self._refresh()
        quotas = self._quotas.get(tenant, {})
        objects, size = quotas.get("apiObjects"), quotas.get("apiBytes")
        return (objects if isinstance(objects, int) else self.storage_defaults[0],
                size if isinstance(size, int) else self.storage_defaults[1])


class TenantAuthorizer:
    def __init__(self, directory: TenantDirectory) -> None:
        self.directory = directory

    def authorize(self, attrs: Attributes) -> Decision:
        if not attrs.is_resource or attrs.subresource:
            return Decision(False)
        if (attrs.api_group, attrs.resource, attrs.verb) == ("", "namespaces", "create"):
            if self.directory.administered_by(attrs.user):
                return Decision(True, "tenant admins may create namespaces for their tenant")
        if (attrs.api_group, attrs.resource, attrs.verb) == (TENANCY_GROUP, "tenants", "get"):
            if attrs.name and attrs.name in self.directory.administered_by(attrs.user):
                return Decision(True, f"admin of tenant {attrs.name}")
        return Decision(False)


def tenant_rules(directory: TenantDirectory, user: User) -> list[dict[str, Any]]:
    """What :class:`TenantAuthorizer` grants, as rules for SelfSubjectRulesReview."""
    tenants = sorted(directory.administered_by(user))
    if not tenants:
        return []
    return [{"verbs": ["create"], "apiGroups": [""], "resources": ["namespaces"]},
            {"verbs": ["get"], "apiGroups": [TENANCY_GROUP], "resources": ["tenants"],
             "resourceNames": tenants}]


class NamespaceTenancyAdmission:
    """Keeps namespaces inside their tenant: label checks and the namespace quota."""

    def __init__(self, directory: TenantDirectory, authorizer: Authorizer,
                 resources: Resources) -> None:
        self.directory = directory
        self.authorizer = authorizer
        self.resources = resources
        """The quota counts the namespaces in the store, not the informer's copy: a
        namespace created a moment ago through this replica must count already."""

    def __call__(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                 opts: WriteOptions) -> None:
        if rt.storage_resource != "core/namespaces" or opts.user is None:
            return
        tenant, old_tenant = tenant_label(obj), tenant_label(old)
        if self._is_operator(opts.user) or (old is not None and tenant == old_tenant):
            return
        if old is not None:
            raise self._forbidden(obj, f"only the operator may change the {TENANT_LABEL} "
                                       "label")
        if tenant not in self.directory.administered_by(opts.user):
            raise self._forbidden(obj, f"set the label {TENANT_LABEL} to a tenant you "
                                       "administer")
        self._check_quota(rt, tenant, obj)

    def _is_operator(self, user: User) -> bool:
        return self.authorizer.authorize(Attributes(
            user, "update", TENANCY_GROUP, "tenants")).allowed

    def _check_quota(self, rt: ResourceType, tenant: str, obj: dict[str, Any]) -> None:
        quota = self.directory.namespace_quota(tenant)
        if quota is None:
            return
        used = sum(1 for ns in self.resources.list(rt, None, ListOptions())["items"]
                   if tenant_label(ns) == tenant)
        if used >= quota:
            raise self._forbidden(obj, f"exceeded quota: tenant {tenant} may have {quota} "
                                       f"namespaces, has {used}")

    @staticmethod
    def _forbidden(obj: dict[str, Any], why: str) -> errors.ApiError:
        name = obj["metadata"].get("name", "")
        return errors.ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: {why}',
                               kind="namespaces", name=name)
