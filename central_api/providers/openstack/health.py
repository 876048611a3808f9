"""Health probes of the OpenStack services the IaaS provider uses, for the status page.

One authenticated, cheap GET per service (a list of at most one item), found in the
catalog like every call of the provider, with the operator's cloud (``providers.iaas.cloud``):
without it there is no credential to probe with (tenants' application credentials are
theirs), and no probes. The calls run in worker threads like every openstacksdk call.
"""

from __future__ import annotations

from functools import partial

from openstack.connection import Connection

from ..base import BackendUnavailable, HealthCheck, Scope
from .connection import Connections

SERVICES: dict[str, tuple[str, str]] = {
    "compute": ("compute", "/flavors?limit=1"),
    "network": ("network", "/networks?limit=1"),
    "block-storage": ("block_storage", "/types"),
    "image": ("image", "/images?limit=1"),
    "load-balancer": ("load_balancer", "/lbaas/loadbalancers?limit=1"),
}
"""Probe name → (openstacksdk proxy, path of a cheap GET below its versioned endpoint)."""
OPERATOR = Scope(namespace="")


def _get(proxy: str, path: str, conn: Connection) -> None:
    answer = getattr(conn, proxy).get(path)
    if answer.status_code >= 400:
        raise BackendUnavailable(f"OpenStack {proxy.replace('_', '-')} answered HTTP "
                                 f"{answer.status_code}")


def service_probes(connections: Connections) -> dict[str, HealthCheck]:
    """Probe name → its check; none without an operator cloud to authenticate with."""
    if not connections.settings.cloud:
        return {}

    def check(proxy: str, path: str) -> HealthCheck:
        async def run() -> None:
            await connections.run(OPERATOR, partial(_get, proxy, path))
        return run

    return {name: check(proxy, path) for name, (proxy, path) in SERVICES.items()}
