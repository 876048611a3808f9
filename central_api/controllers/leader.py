"""Leader election on a Lease object, so several replicas run each controller once.

The algorithm is client-go's: the holder renews ``spec.renewTime`` every ``retry`` seconds;
anyone may take the lease once ``renewTime + leaseDurationSeconds`` has passed. Every write
is an optimistic update on the Lease's resourceVersion, so two candidates can never both win.
A leader that cannot renew within ``renew_deadline`` steps down before its lease expires, so
there is never a moment with two leaders acting (given clocks that agree within the margin).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from ..machinery.errors import ApiError
from ..machinery.metadata import SYSTEM_NAMESPACE
from .client import Client, Kind

log = logging.getLogger("central_api.leader")

LEASES = Kind("coordination.k8s.io", "v1", "leases")
LEASE_NAMESPACE = SYSTEM_NAMESPACE
MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def _now() -> datetime:
    return datetime.now(UTC)


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, MICRO).replace(tzinfo=UTC)
    except ValueError:
        return None


class LeaderElector:
    def __init__(self, client: Client, name: str, identity: str, lease_seconds: float = 8.0,
                 renew_deadline: float = 6.0, retry: float = 1.0) -> None:
        self.client = client
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = renew_deadline
        self.retry = retry
        self.leading = False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign forever; while leading, run ``lead`` (cancelled when leadership ends)."""
        while True:
            await self._acquire()
            log.info("%s became leader of %s", self.identity, self.name)
            task = asyncio.create_task(lead(), name=f"lead-{self.name}")
            try:
                await self._renew_until_lost(task)
            finally:
                self.leading = False
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            log.warning("%s lost the lease %s", self.identity, self.name)

    async def _acquire(self) -> None:
        while not await self._try():
            await asyncio.sleep(self.retry)
        self.leading = True

    async def _renew_until_lost(self, task: asyncio.Task[None]) -> None:
        last_renewal = asyncio.get_running_loop().time()
        while not task.done():
            await asyncio.sleep(self.retry)
            if await self._try():
                last_renewal = asyncio.get_running_loop().time()
            elif asyncio.get_running_loop().time() - last_renewal > self.renew_deadline:
                return
        task.result()  # a leader task that ended by itself re-raises here

    async def _try(self) -> bool:
        try:
            lease = await self.client.get(LEASES, LEASE_NAMESPACE, self.name)
            now = _now()
            if lease is None:
                await self.client.create(LEASES, self._lease(now, now, 0))
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            renewed = _parse(spec.get("renewTime"))
            duration = timedelta(seconds=spec.get("leaseDurationSeconds") or self.lease_seconds)
            if holder != self.identity and renewed is not None and renewed + duration > now:
                return False
            transitions = (spec.get("leaseTransitions") or 0) + (holder != self.identity)
            acquired = _parse(spec.get("acquireTime")) if holder == self.identity else now
            updated = self._lease(acquired or now, now, transitions)
            updated["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
            await self.client.update(LEASES, updated)
            return True
        except ApiError as exc:
            if exc.code not in (409, 404):
                log.warning("lease %s: %s", self.name, exc)
            return False
        except OSError as exc:
            log.warning("lease %s: API unreachable: %s", self.name, exc)
            return False

    def _lease(self, acquired: datetime, renewed: datetime, transitions: int
               ) -> dict[str, Any]:
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
                "spec": {"holderIdentity": self.identity,
                         "leaseDurationSeconds": int(self.lease_seconds),
                         "acquireTime": acquired.strftime(MICRO),
                         "renewTime": renewed.strftime(MICRO),
                         "leaseTransitions": transitions}}

