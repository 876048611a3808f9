"""Health probes of the OpenStack services the IaaS provider uses, for the status page.

One authenticated GET per service, found in the catalog like every call of the provider,
with the operator's cloud (``providers.iaas.cloud``): without it there is no credential to
probe with (tenants' application credentials are theirs), and no probes. The calls run in
worker threads like every openstacksdk call.

Each path is the cheapest authenticated request of its service that still reads the
service's database (measured against Debian's Zed services of the test harness): a version
document needs no token and proves nothing, and ``/extensions`` or ``/schemas`` answer from
memory even when the service cannot serve anything. Each asks for at most one item, so the
cost does not grow with the cloud. Neutron's ``/networks`` is not used: listing even one
network took 60-80 ms (every extension decorates it), address scopes 10 ms.

What a failure says is public (an Incident update on the status page), so it names the
service and the kind of failure, never the endpoint URL (internal addresses) or the
library's exception chain; the details go to the debug log. Each request has the
provider's call timeout, so a service that accepts connections but never answers does not
hold a worker thread (and the probe's one pending check) for good.
"""

from __future__ import annotations

import errno
import logging
from functools import partial

import requests
from keystoneauth1 import exceptions as ks_exceptions
from openstack.connection import Connection

from ..base import BackendUnavailable, HealthCheck, Scope
from .connection import Connections

log = logging.getLogger("central_api.providers.openstack.health")

SERVICES: dict[str, tuple[str, str]] = {
    "compute": ("compute", "/flavors?limit=1"),
    "network": ("network", "/address-scopes?limit=1&fields=id"),
    "block-storage": ("block_storage", "/types"),
    "image": ("image", "/images?limit=1"),
    "load-balancer": ("load_balancer", "/lbaas/flavors?limit=1"),
}
"""Probe name → (openstacksdk proxy, path of a cheap GET below its versioned endpoint)."""
OPERATOR = Scope(namespace="")


def _reason(exc: BaseException, timeout: float) -> str:
    """A failure in a few public words: the socket error's name, a timeout, or the kind."""
    if isinstance(exc, ks_exceptions.ConnectTimeout | ks_exceptions.RequestTimeout
                  | requests.exceptions.Timeout | TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ks_exceptions.EndpointNotFound):
        return "not in the service catalog"
    if isinstance(exc, ks_exceptions.DiscoveryFailure):
        return "its API version could not be discovered"
    cause: BaseException | None = exc
    while cause is not None:
        code = getattr(cause, "errno", None)
        if isinstance(cause, OSError) and isinstance(code, int) and code in errno.errorcode:
            return f"cannot connect ({errno.errorcode[code]})"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, ks_exceptions.ConnectionError | requests.exceptions.ConnectionError):
        return "cannot connect"
    return f"failed ({type(exc).__name__})"


def _get(probe: str, proxy: str, path: str, timeout: float, conn: Connection) -> None:
    try:
        conn.session.get_auth_headers()
    except Exception as exc:
        log.debug("probe %s: authentication failed", probe, exc_info=True)
        raise BackendUnavailable(f"OpenStack {probe}: the operator's cloud could not "
                                 f"authenticate: {_reason(exc, timeout)}") from None
    try:
        answer = getattr(conn, proxy).get(path, timeout=timeout)
    except Exception as exc:
        log.debug("probe %s: GET %s failed", probe, path, exc_info=True)
        raise BackendUnavailable(f"OpenStack {probe}: {_reason(exc, timeout)}") from None
    if answer.status_code >= 400:
        raise BackendUnavailable(f"OpenStack {probe} answered HTTP {answer.status_code}")


def service_probes(connections: Connections) -> dict[str, HealthCheck]:
    """Probe name → its check; none without an operator cloud to authenticate with."""
    if not connections.settings.cloud:
        return {}
    timeout = connections.settings.timeout

    def check(name: str, proxy: str, path: str) -> HealthCheck:
        async def run() -> None:
            await connections.run(OPERATOR, partial(_get, name, proxy, path, timeout))
        return run

    return {name: check(name, proxy, path) for name, (proxy, path) in SERVICES.items()}
