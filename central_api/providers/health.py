"""The health probes of the backends a process drives, by the names the status page uses.

Each backend offers its own cheap check (:data:`~.base.HealthCheck`): the IaaS provider one
per service (:attr:`.base.Provider.probes`), the identity backend ``health()``, the KaaS
provider ``health``. The store probe reads through the controllers' client and is added
by the probe runner (:mod:`central_api.controllers.status_probes`).
"""

from __future__ import annotations

from .base import HealthCheck, Provider
from .identity import IdentityService
from .kaas import KaasProvider

PROBE_NAMES = ("store", "identity", "compute", "network", "block-storage", "image",
               "load-balancer", "kaas")


def backend_probes(provider: Provider | None, identity: IdentityService | None,
                   kaas: KaasProvider | None) -> dict[str, HealthCheck]:
    """Probe name → check, for the backends that are configured (and can be checked)."""
    probes: dict[str, HealthCheck] = {}
    if identity is not None:
        probes["identity"] = identity.health
    if provider is not None:
        probes.update(provider.probes)
    if kaas is not None and kaas.health is not None:
        probes["kaas"] = kaas.health
    return probes
