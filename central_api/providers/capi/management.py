"""The management cluster: a :class:`KubeClient` made on first use (one per event loop,
:class:`~..kube.Connection`), and its tenant namespaces."""

from __future__ import annotations

import hashlib

from ...config import CapiConfig
from ..base import Conflict, Scope
from ..kube import Connection, KubeClient

MANAGED_LABEL = "kaas.scs.community/managed-by"
"""On the tenant namespaces the provider creates or adopts: ``scs-central-api``."""
MANAGER = "scs-central-api"
TENANT_LABEL = "kaas.scs.community/tenant"


class Management:
    """The configured management cluster, connected per event loop on first use."""

    def __init__(self, settings: CapiConfig) -> None:
        self.settings = settings
        self._connection = Connection(settings, "the management cluster")

    async def kube(self) -> KubeClient:
        return await self._connection.client()

    def namespace(self, scope: Scope) -> str:
        """The tenant's management namespace: prefix + tenant (a namespace outside any
        tenant counts as its own tenant), shortened with a hash beyond 63 characters."""
        name = self.settings.namespace_prefix + (scope.tenant or scope.namespace)
        if len(name) <= 63:
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        return f"{name[:54].rstrip('-')}-{digest}"

    async def ensure_namespace(self, kube: KubeClient, scope: Scope) -> str:
        """The tenant's namespace, created if missing and labelled as the provider's (an
        operator may create it beforehand, e.g. with the tenant's credentials Secret)."""
        name = self.namespace(scope)
        labels = {MANAGED_LABEL: MANAGER, TENANT_LABEL: (scope.tenant or scope.namespace)[:63]}
        found = await kube.get("v1", "namespaces", "", name)
        if found is None:
            try:
                await kube.create("v1", "namespaces", "",
                                  {"metadata": {"name": name, "labels": labels}})
            except Conflict:
                pass  # created meanwhile (another replica, a retry)
        elif any(((found.get("metadata") or {}).get("labels") or {}).get(k) != v
                 for k, v in labels.items()):
            await kube.merge_patch("v1", "namespaces", "", name,
                                   {"metadata": {"labels": labels}})
        return name
