"""Runs a set of controllers, once per cluster of replicas (leader election)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Sequence

from .client import Client
from .leader import LeaderElector
from .metrics import ControllerMetrics
from .runtime import Controller, Reconciler

LEASE_NAME = "scs-controllers"


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Manager:
    def __init__(self, client: Client, reconcilers: Sequence[Reconciler],
                 metrics: ControllerMetrics | None = None, identity: str = "",
                 leader_election: bool = True, workers: int = 4,
                 resync_seconds: float = 30.0) -> None:
        self.client = client
        self.metrics = metrics or ControllerMetrics()
        self.identity = identity or default_identity()
        self.controllers = [Controller(client, r, self.metrics, workers, resync_seconds)
                            for r in reconcilers]
        self.elector = LeaderElector(client, LEASE_NAME, self.identity) \
            if leader_election else None

    async def run(self) -> None:
        if self.elector is None:
            await self._lead()
        else:
            await self.elector.run(self._lead)

    async def _lead(self) -> None:
        self.metrics.leader.set(1)
        try:
            await asyncio.gather(*(controller.run() for controller in self.controllers))
        finally:
            self.metrics.leader.set(0)
