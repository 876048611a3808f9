"""What the test cloud holds before any test runs: service users and the catalog, then
flavors, images and the external network.

Flavors carry the names ``examples/iaas`` uses (SCS naming, ``SCS-<vCPU>V-<GiB RAM>``; all
get a 10 GiB root disk so that project members may boot from images) and follow the
provider's conventions (:mod:`central_api.providers.openstack.flavors`): one arm64 flavor
tagged ``cpu_arch=aarch64`` and one GPU flavor tagged ``scs:gpu-count``/``scs:gpu-model``, as
the SCS R7 seed asks for ARM64 and GPU flavors. The image ``ubuntu-24.04`` exists once per
architecture (``hw_architecture``), so a Server's ``architecture`` picks one; the files are
tiny (the fake compute driver never reads them).
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from typing import Any

from .configs import REGION
from .processes import Daemon, OpenStackError, log_tail

SERVICE_USERS = ("placement", "glance", "nova", "neutron", "cinder", "octavia")
# service type → (name, endpoint path); the port comes from the harness's port table.
CATALOG = {
    "placement": ("placement", "placement", ""),
    "image": ("glance", "glance", ""),
    "compute": ("nova", "nova", "/v2.1"),
    "network": ("neutron", "neutron", ""),
    "block-storage": ("cinder", "cinder", "/v3/%(project_id)s"),
    "load-balancer": ("octavia", "octavia", ""),
}
FLAVORS = [  # name, vCPUs, RAM MiB, disk GiB, extra specs
    ("SCS-1V-2", 1, 2048, 10, {}),
    ("SCS-2V-4", 2, 4096, 10, {}),
    ("SCS-2V-4-arm64", 2, 4096, 10, {"cpu_arch": "aarch64"}),
    ("SCS-4V-16-gpu", 4, 16384, 10, {"scs:gpu-count": "1", "scs:gpu-model": "nvidia-l4"}),
]
IMAGE = "ubuntu-24.04"
IMAGE_ARCHITECTURES = ("x86_64", "aarch64")
EXTERNAL_NETWORK = "public"
EXTERNAL_CIDR = "203.0.113.0/24"
EXTRA_ROLES = ("service", "load-balancer_member")


def seed_catalog(conn: Any, ports: Mapping[str, int], password: str) -> None:
    """Service project, one admin user per service, and every service's endpoints."""
    identity = conn.identity
    project = identity.create_project(name="service", domain_id="default")
    roles = {r.name: r for r in identity.roles()}
    for name in EXTRA_ROLES:
        if name not in roles:
            roles[name] = identity.create_role(name=name)
    for name in SERVICE_USERS:
        user = identity.create_user(name=name, password=password, domain_id="default")
        for role in ("admin", "service"):
            identity.assign_project_role_to_user(project, user, roles[role])
    services = {s.type: s for s in identity.services()}
    for service_type, (name, port_name, path) in CATALOG.items():
        service = services.get(service_type) or identity.create_service(
            type=service_type, name=name, enabled=True)
        url = f"http://127.0.0.1:{ports[port_name]}{path}"
        for interface in ("public", "internal", "admin"):
            identity.create_endpoint(service_id=service.id, interface=interface, url=url,
                                     region_id=REGION)


def wait_for_compute_services(conn: Any, daemons: Mapping[str, Daemon],
                              timeout: float) -> None:
    """Until Nova's and Cinder's RPC services report ``up`` and the fake hypervisor is in
    Placement; fails at once, with its log, when one of their processes died."""
    wanted = {"nova-conductor", "nova-scheduler", "nova-compute", "cinder-scheduler",
              "cinder-volume"}
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for name in wanted:
            if not daemons[name].alive:
                raise OpenStackError(f"{name}: the process exited\n"
                                     + log_tail(daemons[name].log))
        try:
            up = {s.binary for s in conn.compute.services() if s.state == "up"}
            up |= {s.binary for s in conn.block_storage.services() if s.state == "up"}
            providers = list(conn.placement.resource_providers())
        except Exception as exc:  # an API still warming up counts as "not yet"
            last = f"{type(exc).__name__}: {exc}"
        else:
            if wanted <= up and providers:
                return
            last = f"up: {sorted(up)}, resource providers: {len(providers)}"
        time.sleep(1)
    missing = sorted(wanted - {w for w in wanted if w in last})
    details = "\n".join(log_tail(daemons[name].log, 15) for name in missing)
    raise OpenStackError(f"compute/volume services not up within {timeout:g}s "
                         f"(last: {last})\n{details}")


def seed_resources(conn: Any) -> None:
    """Flavors (public), images (public, active) and the external network with a subnet."""
    for name, vcpus, ram, disk, specs in FLAVORS:
        flavor = conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk,
                                            is_public=True)
        if specs:
            conn.compute.create_flavor_extra_specs(flavor, specs)
    for arch in IMAGE_ARCHITECTURES:
        conn.image.create_image(name=IMAGE, data=io.BytesIO(b"\0" * 65536),
                                disk_format="raw", container_format="bare",
                                visibility="public", hw_architecture=arch, wait=True,
                                timeout=120, allow_duplicates=True)
    net = conn.network.create_network(name=EXTERNAL_NETWORK, is_router_external=True,
                                      provider_network_type="flat",
                                      provider_physical_network="public")
    conn.network.create_subnet(network_id=net.id, name=f"{EXTERNAL_NETWORK}-v4",
                               cidr=EXTERNAL_CIDR, ip_version=4, is_dhcp_enabled=False,
                               gateway_ip="203.0.113.1",
                               allocation_pools=[{"start": "203.0.113.10",
                                                  "end": "203.0.113.250"}])
