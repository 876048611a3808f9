"""``providers.kaas.type: gardener``: Clusters as Gardener Shoots (issue 14).

The Garden's API is the only thing the provider talks to (:class:`.garden.Garden`, through
:class:`~..kube.KubeClient`): Shoots in the tenant's project namespace
(:mod:`.service`, mapped by :mod:`.mapping`), the offer from the configured CloudProfile
(:mod:`.offer`), kubeconfigs from the ``adminkubeconfig`` subresource (:mod:`.access`).
``docs/kaas-gardener.md`` is the operator's guide.
"""

from __future__ import annotations

from typing import Any

from ...config import GardenerConfig, KubeconfigConfig
from ..base import BackendResource, Scope
from ..kaas import AdminRequest, ClusterAccess, KaasProvider
from .garden import Garden
from .offer import offer as offer_of
from .service import ShootService

REQUIRED = {"kubeconfig": "kubeconfig", "cloud_profile": "cloudProfile", "region": "region",
            "credentials_binding_name": "credentialsBindingName",
            "floating_pool_name": "floatingPoolName"}


def gardener_kaas_provider(settings: GardenerConfig,
                           kubeconfigs: KubeconfigConfig) -> KaasProvider:
    """The provider; ValueError names the settings a Shoot cannot do without. The Garden
    caps admin credentials itself (its answer's expirationTimestamp is reported), so
    ``kubeconfigs`` needs nothing here."""
    missing = [key for field, key in REQUIRED.items() if not getattr(settings, field)]
    if missing:
        raise ValueError("providers.kaas.gardener needs " + ", ".join(missing))
    garden = Garden(settings)
    clusters = ShootService(garden)

    async def offer() -> dict[str, Any]:
        return offer_of(await garden.cloud_profile())

    async def access(scope: Scope, backend: BackendResource,
                     admin: AdminRequest | None) -> ClusterAccess:
        return await clusters.access(scope, backend, admin)

    async def health() -> None:
        await (await garden.client()).version()

    return KaasProvider(name="gardener", clusters=clusters, offer=offer, access=access,
                        health=health)
