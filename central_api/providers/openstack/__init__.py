"""The OpenStack provider: IaaS kinds realised with openstacksdk (Neutron, Nova, Cinder,
Glance, Octavia).

``openstack_provider(settings)`` builds one :class:`~central_api.providers.base.Provider`
whose services share a connection cache: a namespace's own credentials (``Scope.credentials``,
the tenant's application credential) are used when present, else the operator's cloud from
``settings``. Ownership, naming and the flavor/GPU/HA conventions are documented in
:mod:`.ownership`, :mod:`.flavors` and :mod:`.compute`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Provider, ResourceService
from .compute import KeypairService, ServerService
from .connection import Connections, OpenStackSettings
from .health import service_probes
from .images import ImageService
from .loadbalancer import LoadBalancerService
from .network import FloatingIPService, NetworkService, RouterService, SubnetService
from .security import SecurityGroupService
from .storage import VolumeService

__all__ = ["OpenStackSettings", "openstack_provider"]


def openstack_provider(settings: OpenStackSettings | Mapping[str, Any] | None = None
                       ) -> Provider:
    """A real (``simulated=False``) provider offering every IaaS kind."""
    if settings is None:
        settings = OpenStackSettings()
    elif not isinstance(settings, OpenStackSettings):
        settings = OpenStackSettings.from_mapping(settings)
    connections = Connections(settings)
    external = settings.external_network
    services: dict[str, ResourceService] = {
        "Network": NetworkService(connections),
        "Subnet": SubnetService(connections),
        "Router": RouterService(connections, external),
        "SecurityGroup": SecurityGroupService(connections),
        "Keypair": KeypairService(connections),
        "Volume": VolumeService(connections),
        "Image": ImageService(connections, settings.allow_private_image_sources),
        "Server": ServerService(connections),
        "FloatingIP": FloatingIPService(connections, external),
        "LoadBalancer": LoadBalancerService(connections, external),
    }
    return Provider(name="openstack", services=services, simulated=False,
                    tenant_credentials=True, probes=service_probes(connections))
