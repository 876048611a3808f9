"""The KaaS provider contract: one cluster service and the backend's offer.

A Cluster is one backend object (a CAPI Cluster, a Gardener Shoot, a sandbox record) found by
the Central API object's UID like every IaaS resource, so the cluster service is a
:class:`~.base.ResourceService`. ``offer`` is what the backend can build, in the shape of a
ClusterProfile's spec; the KaaS controller publishes it for users and admission.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .base import Labelled, ResourceService


@dataclass
class KaasProvider(Labelled):
    name: str
    clusters: ResourceService
    offer: Callable[[], Awaitable[dict[str, Any]]]
    """The ClusterProfile spec: versions, cluster classes, hosted control planes."""
    simulated: bool = False
