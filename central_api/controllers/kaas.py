"""The KaaS reconciler: a Cluster becomes a backend cluster; the backend's offer is published.

Conditions in the order a cluster comes up: ``ControlPlaneReady`` (its API server answers),
``NodePoolsReady`` (every pool has its desired nodes), ``Ready`` (both, and nothing is being
changed). ``Synced`` says whether the backend accepted the desired state; when it did not
(unreachable, refused), ``Synced`` and ``Ready`` carry the backend's reason and message.

Every pass also keeps the ClusterProfile current with the backend's offer (written only when
it changed), so admission checks versions against what the backend really builds.

The backend always gets one concrete patch version, chosen here (:mod:`.maintenance`): the
spec's version on creation or when the user changes it, and automatic patch updates only in
the cluster's maintenance window, which ``status.maintenance`` reports.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..auth.tenants import tenant_label
from ..kinds.kaas import (
    CLUSTER,
    CLUSTER_PROFILE,
    PROFILE_NAME,
    Cluster,
    MaintenanceStatus,
    NodePoolStatus,
)
from ..kinds.timewindow import Window, effective_window
from ..providers.base import BackendResource, ProviderError, Scope
from ..providers.kaas import KaasProvider
from .client import Client
from .maintenance import Plan, Running, plan
from .outcomes import Failed, report, settle
from .runtime import Result
from .tenants import NAMESPACES
from .typed import kind_of

log = logging.getLogger("central_api.kaas")

FINALIZER = "kaas.scs.community/backend"
POLL_PENDING = 1.0
POLL_MAX = 30.0
"""A busy backend is polled again after a tenth of the time its change has taken so far,
between these bounds: a quick sandbox change is seen within a second, while a thousand real
clusters, each building for minutes, cost the management cluster a GET per cluster every
30 s instead of every second (measured with ``bench kaas`` on the CAPI path)."""
PROFILE_REFRESH_SECONDS = 60.0
"""How often the offer is compared with the stored ClusterProfile again (a profile deleted
or changed by hand comes back within this)."""
WINDOW_SLACK = 1.0
"""Seconds after a window opens that the controller comes back (not a moment before)."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _poll_after(cluster: Cluster) -> float:
    """Seconds until a busy backend is asked again (:data:`POLL_MAX`): from when ``Ready``
    last changed, by the real clock that stamped it (not the maintenance clock)."""
    ready = cluster.status.condition("Ready")
    if ready is None or not ready.lastTransitionTime:
        return POLL_PENDING
    began = dt.datetime.fromisoformat(ready.lastTransitionTime.replace("Z", "+00:00"))
    busy = (utc_now() - began).total_seconds()
    return min(POLL_MAX, max(POLL_PENDING, busy / 10))


class ClusterReconciler:
    kind = kind_of(CLUSTER)
    model = Cluster
    finalizer = FINALIZER

    def __init__(self, client: Client, provider: KaasProvider,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.client = client
        self.provider = provider
        self.clock = clock
        """The wall clock maintenance windows are read with (tests set the time)."""
        self._profile_checked = -PROFILE_REFRESH_SECONDS
        self._offer: dict[str, Any] | None = None
        """The backend's offer as last published: the versions maintenance chooses from."""

    async def reconcile(self, cluster: Cluster) -> Result:
        await self.publish_offer()
        try:
            backend, chosen = await self._converge(await self._scope(cluster), cluster)
        except ProviderError as exc:
            failed = Failed(exc.reason, self.provider.labelled(str(exc)), retry=exc.retryable)
            report(cluster, "Synced", failed)
            return settle(failed)
        cluster.set_condition("Synced", True, "Synced")
        self._report(cluster, backend)
        cluster.status.maintenance = MaintenanceStatus(
            window=self._window(cluster).text, pendingVersion=chosen.pending,
            message=chosen.message)
        waits = [_poll_after(cluster) if backend.state == "PENDING" else None,
                 None if chosen.wait is None else chosen.wait + WINDOW_SLACK]
        return Result(requeue_after=min((w for w in waits if w is not None), default=None))

    async def _converge(self, scope: Scope, cluster: Cluster
                        ) -> tuple[BackendResource, Plan]:
        """Create or update the backend cluster with the version :func:`.maintenance.plan`
        chooses (a concrete patch where the offer knows one)."""
        service = self.provider.clusters
        backend = await service.find(scope, cluster.metadata.uid)
        chosen = self._plan(cluster, backend)
        desired = {**cluster.spec.model_dump(mode="json"), "kubernetesVersion": chosen.version}
        if backend is None:
            return await service.create(scope, cluster.metadata.uid, desired), chosen
        if backend.desired != desired and backend.state != "DELETING":
            return await service.update(scope, backend, desired), chosen
        return backend, chosen

    def _plan(self, cluster: Cluster, backend: BackendResource | None) -> Plan:
        running = None
        if backend is not None:
            given = str(backend.desired.get("kubernetesVersion")
                        or backend.observed.get("kubernetesVersion") or "")
            running = Running(given, backend.state == "ACTIVE") if given else None
        return plan(cluster.spec.model_dump(mode="json"), running, self._offer,
                    self._window(cluster), self.clock())

    def _window(self, cluster: Cluster) -> Window:
        window = cluster.spec.maintenance.timeWindow
        created = cluster.metadata.creationTimestamp or ""
        try:
            since = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            since = self.clock()
        return effective_window(window.model_dump() if window else None, since)

    def _report(self, cluster: Cluster, backend: BackendResource) -> None:
        seen, status = backend.observed, cluster.status
        status.kubernetesVersion = str(seen.get("kubernetesVersion") or "")
        status.clusterClass = str(seen.get("clusterClass") or "")
        status.apiEndpoint = str(seen.get("apiEndpoint") or "")
        status.phase = str(seen.get("phase") or backend.state)
        status.nodePools = [NodePoolStatus.model_validate(p) for p in seen.get("nodePools", [])]
        status.backendName = backend.id
        status.provider = self.provider.label
        status.observedGeneration = cluster.metadata.generation
        plane = bool(seen.get("controlPlaneReady"))
        cluster.set_condition("ControlPlaneReady", plane, "Available" if plane else
                              status.phase.split(" ")[0] or "Provisioning")
        short = [p.name for p in status.nodePools if p.readyReplicas < p.desiredReplicas]
        cluster.set_condition("NodePoolsReady", not short, "NodesReady" if not short else
                              "WaitingForNodes", f"not all nodes ready in: {', '.join(short)}"
                              if short else "")
        ready = backend.state == "ACTIVE"
        cluster.set_condition("Ready", ready, "Running" if ready else
                              "BackendError" if backend.state == "ERROR" else "Progressing",
                              self.provider.labelled(backend.message or status.phase))

    async def _scope(self, cluster: Cluster) -> Scope:
        namespace = cluster.metadata.namespace
        ns = await self.client.get(NAMESPACES, "", namespace) or {}
        tenant = tenant_label(ns) or ""
        return Scope(namespace, tenant)

    async def finalize(self, cluster: Cluster) -> bool:
        """Done once the backend has deleted the cluster (``find`` returns None)."""
        scope = await self._scope(cluster)
        backend = await self.provider.clusters.find(scope, cluster.metadata.uid)
        if backend is None:
            return True
        if backend.state != "DELETING":
            await self.provider.clusters.delete(scope, backend)
        cluster.set_condition("Ready", False, "Deleting",
                              self.provider.labelled("the backend is deleting the cluster"))
        return False

    # -- the offer -------------------------------------------------------------------------
    async def publish_offer(self) -> None:
        """Write the backend's offer into the ClusterProfile if it differs: when the
        controllers start (:func:`start_publishing`) and then at most once per
        :data:`PROFILE_REFRESH_SECONDS` on a pass. A failure only logs and is retried on the
        next pass: building clusters does not depend on the profile."""
        if time.monotonic() - self._profile_checked < PROFILE_REFRESH_SECONDS:
            return
        try:
            offer = await self.provider.offer()
            self._offer = offer
            await self._write_offer(offer)
            self._profile_checked = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - a backend or API error of any client
            log.warning("could not publish the ClusterProfile: %s", exc)

    async def _write_offer(self, offer: dict[str, Any]) -> None:
        kind = kind_of(CLUSTER_PROFILE)
        stored = await self.client.get(kind, "", PROFILE_NAME)
        if stored is None:
            await self.client.create(kind, {
                "apiVersion": CLUSTER_PROFILE.api_version, "kind": CLUSTER_PROFILE.kind,
                "metadata": {"name": PROFILE_NAME}, "spec": offer})
        elif stored.get("spec") != offer:
            await self.client.update(kind, {**stored, "spec": offer})


def start_publishing(reconcilers: Sequence[object]) -> list[asyncio.Task[None]]:
    """Publish the offer of every KaaS reconciler now, not only once a Cluster exists: users
    read the profile to pick their first cluster's version, and admission checks against it
    from the start instead of changing its answer when the first Cluster is reconciled.
    Call with a running event loop; keep the tasks referenced until they are done."""
    return [asyncio.create_task(r.publish_offer(), name="kaas-offer") for r in reconcilers
            if isinstance(r, ClusterReconciler)]
