"""The management cluster: a :class:`KubeClient` made on first use, and its tenant namespaces.

The provider is built synchronously at start-up (``capi_kaas_provider``) while the client
needs an event loop, so it connects lazily: a management cluster that is down at start-up
only makes the first calls fail as :class:`BackendUnavailable` (retried), instead of keeping
the Central API from starting. An aiohttp session belongs to the loop that made it, so there
is one client per running loop (the controllers' and, for kubeconfigs, the server's).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref

from kubernetes_asyncio.config import ConfigException

from ...config import CapiConfig
from ..base import BackendUnavailable, Conflict, Scope
from ..kube import KubeClient

MANAGED_LABEL = "kaas.scs.community/managed-by"
"""On the tenant namespaces the provider creates or adopts: ``scs-central-api``."""
MANAGER = "scs-central-api"
TENANT_LABEL = "kaas.scs.community/tenant"


class Management:
    """The configured management cluster, connected per event loop on first use."""

    def __init__(self, settings: CapiConfig) -> None:
        self.settings = settings
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, KubeClient] = \
            weakref.WeakKeyDictionary()

    async def kube(self) -> KubeClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            try:
                client = await KubeClient.connect(self.settings)
            except (OSError, ValueError, ConfigException) as exc:
                raise BackendUnavailable(f"cannot load the management cluster's kubeconfig "
                                         f"{self.settings.kubeconfig!r}: {exc}") from None
            if loop in self._clients:  # another task of this loop connected meanwhile
                await client.close()
            else:
                self._clients[loop] = client
        return self._clients[loop]

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
