"""``providers.kaas.type: capi``: Cluster API with the SCS cluster stacks (issue 14).

The provider drives a management cluster only through its Kubernetes API
(:class:`~..kube.KubeClient`): one namespace per tenant, one ``cluster.x-k8s.io/v1beta2``
Cluster with a topology per Central API Cluster (:mod:`.mapping`, :mod:`.service`), variables
checked against the ClusterClass first (:mod:`.variables`), status read in both CAPI shapes
(:mod:`.status`), the offer from the cluster stack's releases (:mod:`.offer`) and
short-lived admin certificates from the cluster CA (:mod:`.access`). ``docs/kaas-capi.md``
is the operator's guide.
"""

from __future__ import annotations

from typing import Any

from ...config import CapiConfig, KubeconfigConfig
from ..base import BackendResource, Scope
from ..kaas import AdminRequest, ClusterAccess, KaasProvider
from .access import cluster_access
from .management import Management
from .offer import offer_spec
from .service import CapiClusters

NAME = "capi"


def capi_kaas_provider(settings: CapiConfig, kubeconfigs: KubeconfigConfig) -> KaasProvider:
    """The provider; nothing connects until the first call (see :mod:`.management`).
    ``kubeconfigs`` bounds are applied by the caller before ``access`` is asked."""
    if not settings.kubeconfig:
        raise ValueError("providers.kaas.capi.kubeconfig: the capi provider needs the "
                         "management cluster's kubeconfig")
    management = Management(settings)
    clusters = CapiClusters(management)

    async def offer() -> dict[str, Any]:
        return offer_spec(await clusters.classes(await management.kube()), NAME)

    async def access(scope: Scope, backend: BackendResource,
                     admin: AdminRequest | None) -> ClusterAccess:
        return await cluster_access(management, scope, backend, admin)

    async def health() -> None:
        await (await management.kube()).version()

    return KaasProvider(name=NAME, clusters=clusters, offer=offer, access=access,
                        health=health)
