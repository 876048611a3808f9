"""The KaaS provider contract: one cluster service and the backend's offer.

A Cluster is one backend object (a CAPI Cluster, a Gardener Shoot, a sandbox record) found by
the Central API object's UID like every IaaS resource, so the cluster service is a
:class:`~.base.ResourceService`. ``offer`` is what the backend can build, in the shape of a
ClusterProfile's spec; the KaaS controller publishes it for users and admission.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .base import BackendResource, HealthCheck, Labelled, ResourceService, Scope


@dataclass(frozen=True)
class AdminRequest:
    """Who asks for a short-lived admin credential, and for how long (already bounded by
    the operator's maximum)."""

    user: str
    seconds: int


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach a cluster's API server: the endpoint and the CA that signed its serving
    certificate; with an :class:`AdminRequest`, also a credential that expires."""

    server: str
    certificate_authority: bytes
    """PEM; empty when the endpoint's certificate chains to a public CA."""
    client_certificate: bytes = b""
    """PEM of a short-lived client certificate (with ``client_key``), or empty."""
    client_key: bytes = b""
    token: str = ""
    """A short-lived bearer token, where the backend issues tokens instead of certificates."""
    expires: dt.datetime | None = None


Access = Callable[[Scope, BackendResource, AdminRequest | None], Awaitable[ClusterAccess]]


@dataclass
class KaasProvider(Labelled):
    name: str
    clusters: ResourceService
    offer: Callable[[], Awaitable[dict[str, Any]]]
    """The ClusterProfile spec: versions, cluster classes, hosted control planes."""
    access: Access
    """The endpoint and CA of a cluster, and on request a short-lived admin credential:
    nothing long-lived leaves the backend."""
    simulated: bool = False
    health: HealthCheck | None = None
    """A cheap request to the backend (the management cluster's ``/version``), for the
    ``kaas`` health probe."""
