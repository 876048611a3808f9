"""Gives a Tenant's admins ``tenant-admin`` in every namespace of the tenant.

Each namespace labelled ``tenancy.scs.community/tenant=<t>`` gets a RoleBinding
``scs:tenant-admins`` binding the ClusterRole ``tenant-admin`` to the users in ``spec.admins``
of Tenant ``<t>`` (as ``<t>:<admin>`` when the tenant brings its own IdP); the binding
follows changes of the admin list and goes away with the last admin. Every pass recomputes
the desired bindings, so it is idempotent and simply retried.
"""

from __future__ import annotations

import logging
from typing import Any

from ..auth.tenants import TENANCY_GROUP, tenant_label
from ..kinds.tenancy import admin_usernames
from ..machinery.errors import ApiError
from ..registry.resources import DeleteOptions, ListOptions, Resources, WriteOptions

log = logging.getLogger("central_api.tenant_access")

BINDING = "scs:tenant-admins"
RBAC_GROUP = "rbac.authorization.k8s.io"
MANAGER = "scs-tenant-access"


class TenantAccessController:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def sync(self) -> None:
        catalog = self.resources.catalog
        tenants_rt = catalog.lookup(TENANCY_GROUP, "v1alpha1", "tenants")
        ns_rt = catalog.lookup("", "v1", "namespaces")
        if tenants_rt is None or ns_rt is None or self._bindings_type() is None:
            return
        tenants = self.resources.list(tenants_rt, None, ListOptions())["items"]
        admins = {t["metadata"]["name"]: admin_usernames(t) for t in tenants}
        for ns in self.resources.list(ns_rt, None, ListOptions())["items"]:
            tenant = tenant_label(ns)
            if tenant is None or ns["metadata"].get("deletionTimestamp"):
                continue
            try:
                self._reconcile(ns["metadata"]["name"], admins.get(tenant, []))
            except ApiError as exc:
                log.info("tenant access for namespace %s will be retried: %s",
                         ns["metadata"]["name"], exc)

    def _bindings_type(self) -> Any:
        return self.resources.catalog.lookup(RBAC_GROUP, "v1", "rolebindings")

    def _reconcile(self, namespace: str, admins: list[str]) -> None:
        rt = self._bindings_type()
        try:
            current: dict[str, Any] | None = self.resources.get(rt, namespace, BINDING)
        except ApiError as exc:
            if exc.code != 404:
                raise
            current = None
        if not admins:
            if current is not None:
                self.resources.delete(rt, namespace, BINDING, DeleteOptions())
            return
        desired: dict[str, Any] = {
            "apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
            "metadata": {"name": BINDING, "namespace": namespace,
                         "labels": {"scs.community/managed-by": MANAGER}},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "tenant-admin"},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": a} for a in admins],
        }
        opts = WriteOptions(field_manager=MANAGER)
        if current is None:
            self.resources.create(rt, namespace, desired, opts)
        elif current.get("subjects") != desired["subjects"]:
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.resources.update(rt, namespace, BINDING, desired, opts)
