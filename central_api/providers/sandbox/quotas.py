"""Quotas of the simulated cloud, like Nova/Cinder/Neutron project quotas: per namespace,
and per tenant across all its namespaces.

A tenant's limits are those onboarding set on its project in the sandbox identity (Keystone
unified limits, as Nova enforces them with ``[quota] driver = unified_limits``); a tenant
onboarded elsewhere has only the namespace quotas here.

Each record stores what it consumes (``usage``: e.g. ``{"instances": 1, "cores": 2}``), and
each quota belongs to one kind, so a check sums one list of records. Limits come from
``SandboxSettings.quotas`` unless an operator (or a test) stored an override for the
namespace with :func:`set_quota`. The sums come from a
:class:`~central_api.providers.sandbox.views.UsageView` (exact, without listing every record
per check). Two processes creating at the same moment may overshoot a
limit by one resource; the sandbox accepts that (real clouds reserve, which it does not need).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...kinds.tenancy import UNIFIED_LIMITS, project_name
from ...store.base import Key, KeyExists, KeyNotFound, Store
from ..base import QuotaExceeded, Scope
from . import identity
from .keys import QUOTAS, TENANT_NAMESPACES, resource
from .records import Record, Records
from .settings import DEFAULT_QUOTAS, PREFIX
from .views import UsageView


def set_quota(store: Store, namespace: str, **limits: int) -> dict[str, Any]:
    """Override quotas for one namespace, e.g. ``set_quota(store, "team-a", instances=2)``."""
    unknown = set(limits) - set(DEFAULT_QUOTAS)
    if unknown:
        raise ValueError(f"unknown quota(s) {sorted(unknown)}; known: {sorted(DEFAULT_QUOTAS)}")
    key = Key(QUOTAS, "", namespace)
    try:
        current = store.get(key)
    except KeyNotFound:
        try:
            return store.create(key, {"limits": dict(limits)})
        except KeyExists:
            current = store.get(key)
    current["limits"] = {**current.get("limits", {}), **limits}
    return store.update(key, current, None)


def limits(records: Records, namespace: str) -> dict[str, int]:
    try:
        override = records.store.get(Key(QUOTAS, "", namespace)).get("limits", {})
    except KeyNotFound:
        override = {}
    return {**records.settings.quotas, **override}


def check(records: Records, kind: str, scope: Scope, usage: Mapping[str, int],
          replacing: Record | None = None) -> None:
    """QuotaExceeded if ``usage`` does not fit beside what the namespace already uses, or,
    in a tenant's namespace, beside what all the tenant's namespaces use under the limits
    onboarding set on its project (like Nova enforcing Keystone's unified limits).

    ``replacing`` is the record being updated: its current usage is not counted twice, and a
    change that does not grow a quota always passes (shrinking over quota is allowed).
    """
    before = (replacing or {}).get("usage", {})
    growing = {q: n for q, n in usage.items() if n > before.get(q, 0)}
    if not growing:
        return
    namespaces = [scope.namespace]
    _enforce(growing, _used(records, kind, namespaces, growing, replacing),
             limits(records, scope.namespace), f"namespace {scope.namespace}")
    if scope.tenant:
        namespaces = _tenant_namespaces(records.store, scope.tenant, scope.namespace)
        _enforce(growing, _used(records, kind, namespaces, growing, replacing),
                 tenant_limits(records.store, scope.tenant), f"tenant {scope.tenant}")


def _used(records: Records, kind: str, namespaces: list[str], growing: Mapping[str, int],
          replacing: Record | None) -> dict[str, int]:
    used = dict.fromkeys(growing, 0)
    for namespace in namespaces:
        view = UsageView.of(records.store, resource(kind), namespace)
        with view.current():
            # what a scan of the records would do on the way: purge those whose deletion
            # is over
            view.purge_gone(records.gone, records.purge)
            for quota in growing:
                used[quota] += view.totals.get(quota, 0)
            if replacing is not None and replacing.get("namespace", namespace) == namespace:
                for quota, amount in view.usage.get(replacing["id"], {}).items():
                    if quota in used:
                        used[quota] -= amount
    return used


def _enforce(growing: Mapping[str, int], used: Mapping[str, int], limit: Mapping[str, int],
             where: str) -> None:
    for quota, amount in growing.items():
        if quota in limit and used[quota] + amount > limit[quota]:
            raise QuotaExceeded(
                f"{PREFIX}: quota exceeded for {quota} in {where}: requested {amount}, "
                f"used {used[quota]}, limit {limit[quota]}")


def tenant_limits(store: Store, tenant: str) -> dict[str, int]:
    """The quotas onboarding set as limits on the tenant's project in the sandbox identity
    (none when the tenant is not onboarded there, e.g. a real Keystone with this cloud)."""
    try:
        domain = store.get(Key(identity.DOMAINS, "", tenant))
        project = store.get(Key(identity.PROJECTS, domain["id"], project_name(tenant)))
    except KeyNotFound:
        return {}
    quota_of = {limit: quota for quota, limit in UNIFIED_LIMITS.items()}
    return {quota_of[name]: value for name, value in (project.get("limits") or {}).items()
            if name in quota_of}


def _tenant_namespaces(store: Store, tenant: str, namespace: str) -> list[str]:
    """The tenant's namespaces this cloud has served, ``namespace`` now among them (a write
    only the first time: every create in the namespace asks)."""
    served = [item["namespace"] for item in store.list(TENANT_NAMESPACES, tenant).items]
    if namespace not in served:
        try:
            store.create(Key(TENANT_NAMESPACES, tenant, namespace), {"namespace": namespace})
        except KeyExists:
            pass
        served.append(namespace)
    return served
