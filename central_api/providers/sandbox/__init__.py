"""The sandbox provider: an in-process, clearly labelled *simulated* cloud.

It lets people try the Central API without an OpenStack, and lets control-plane benchmarks
and convergence tests run against a backend with realistic behaviour — asynchronous
lifecycles, dependency conflicts, quotas, injected faults, out-of-band changes — that is fast
and deterministic. Its state lives in the API's own store under ``sandbox/...`` keys, so it
survives restarts and works with several API server processes. Nothing it reports is real:
every ``observed`` dict carries ``"simulated": True`` and its messages start with
"sandbox (simulated)".
"""

from __future__ import annotations

import copy
from typing import Any

from ...store.base import Store
from ..base import HealthCheck, Provider, ResourceService
from ..kaas import KaasProvider
from .admin import delete_behind_the_back, inventory, modify_behind_the_back
from .catalog import FLAVORS, IMAGES, VOLUME_TYPES, Flavor, Image
from .clusters import OFFER, ClusterService
from .compute import KeypairService, ServerService, VolumeService, fingerprint
from .faults import clear_faults, inject_fault, list_faults
from .images import ImageService
from .network import (
    FloatingIPService,
    LoadBalancerService,
    NetworkService,
    RouterService,
    SecurityGroupService,
    SubnetService,
)
from .quotas import set_quota
from .services import Sandbox, SandboxService
from .settings import DEFAULT_QUOTAS, DELETE_DELAYS, PREFIX, READY_DELAYS, SandboxSettings

__all__ = [
    "DEFAULT_QUOTAS", "DELETE_DELAYS", "FLAVORS", "IMAGES", "PREFIX", "READY_DELAYS",
    "VOLUME_TYPES", "Flavor", "Image", "SandboxSettings", "build_services", "clear_faults",
    "delete_behind_the_back", "fingerprint", "inject_fault", "inventory", "list_faults",
    "modify_behind_the_back", "sandbox_kaas_provider", "sandbox_provider", "set_quota",
]

SERVICE_CLASSES: list[type[SandboxService]] = [
    NetworkService, SubnetService, RouterService, SecurityGroupService, KeypairService,
    VolumeService, ImageService, ServerService, FloatingIPService, LoadBalancerService,
]


PROBED_KINDS = {"compute": "Server", "network": "Network", "block-storage": "Volume",
                "image": "Image", "load-balancer": "LoadBalancer"}
"""Health probe → the simulated service it checks (an outage injected for the kind fails
the probe)."""


def build_services(store: Store, settings: SandboxSettings) -> dict[str, SandboxService]:
    """One service per kind, sharing one :class:`Sandbox` (records, fault cache)."""
    sandbox = Sandbox(store, settings)
    return {cls.kind: cls(sandbox) for cls in SERVICE_CLASSES}


def sandbox_provider(store: Store, settings: SandboxSettings | None = None) -> Provider:
    """The simulated cloud as a :class:`Provider` for the IaaS controllers."""
    built = build_services(store, settings or SandboxSettings())
    services: dict[str, ResourceService] = dict(built)
    probes: dict[str, HealthCheck] = {probe: built[kind].health
                                      for probe, kind in PROBED_KINDS.items()}
    return Provider(name="sandbox", services=services, simulated=True, probes=probes)


def sandbox_kaas_provider(store: Store, settings: SandboxSettings | None = None) -> KaasProvider:
    """Simulated clusters for the KaaS controller, in the same store as the sandbox cloud."""

    async def offer() -> dict[str, Any]:
        return copy.deepcopy(OFFER)

    clusters = ClusterService(Sandbox(store, settings or SandboxSettings()))
    return KaasProvider(name="sandbox", clusters=clusters, offer=offer,
                        access=clusters.access, simulated=True, health=clusters.health)
