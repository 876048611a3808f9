"""Runs a set of controllers, once per cluster of replicas (leader election), and keeps the
caches they read current in every replica.

Which kinds are cached: each controller's own kind, and in-process also the kinds the
reconcilers read by reference on every pass — Namespaces (whose tenant a namespace belongs
to), Tenants and RoleBindings (IAM); the IaaS kinds a Subnet or Server references are
controllers' kinds already. Secrets are not cached: they would put every user's Secrets,
decrypted, in the memory of every replica (the IaaS reconciler reads one tenant's
credentials per pass, from the store). Nor are Leases, whose optimistic updates want the
stored version.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ..kinds.core import NAMESPACE
from ..kinds.rbac import ROLE_BINDING
from ..kinds.tenancy import TENANT
from .client import Client, Kind, LocalClient
from .leader import LeaderElector
from .metrics import ControllerMetrics
from .runtime import Controller, Reconciler
from .typed import kind_of

LEASE_NAME = "scs-controllers"
READ_BY_REFERENCE = (kind_of(NAMESPACE), kind_of(TENANT), kind_of(ROLE_BINDING))


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Manager:
    def __init__(self, client: Client, reconcilers: Sequence[Reconciler[Any]],
                 metrics: ControllerMetrics | None = None, identity: str = "",
                 leader_election: bool = True, workers: int = 4,
                 resync_seconds: float = 30.0, lease: str = LEASE_NAME) -> None:
        self.client = client
        self.metrics = metrics or ControllerMetrics()
        self.identity = identity or default_identity()
        self.controllers = [Controller(client, r, self.metrics, workers, resync_seconds)
                            for r in reconcilers]
        self.elector = LeaderElector(client, lease, self.identity) \
            if leader_election else None
        self.runnables: list[Callable[[], Coroutine[Any, Any, None]]] = []
        """More work that runs only while leading, beside the controllers (the status
        page's health probes)."""

    async def run(self) -> None:
        self._start_informers()
        if self.elector is None:
            await self._lead()
        else:
            await self.elector.run(self._lead)

    def _start_informers(self) -> None:
        """Before the election, as controller-runtime's manager does: a standby replica
        keeps the caches current, so a new leader starts from them instead of listing every
        kind at once. Over HTTP reads are requests anyway (see :class:`.client.HttpClient`),
        so only the controllers' own kinds are followed there."""
        kinds: list[Kind] = [controller.kind for controller in self.controllers]
        if isinstance(self.client, LocalClient):
            kinds += READ_BY_REFERENCE
        for kind in kinds:
            with contextlib.suppress(LookupError):  # a kind this API does not serve
                self.client.informer(kind)

    async def _lead(self) -> None:
        self.metrics.leader.set(1)
        try:
            await asyncio.gather(*(controller.run() for controller in self.controllers),
                                 *(run() for run in self.runnables))
        finally:
            self.metrics.leader.set(0)
