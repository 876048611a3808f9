"""Simulated KaaS: Kubernetes clusters that take time to build, scale and upgrade.

Nothing runs: a cluster's record holds a plan of when each part is done (the control plane
first, then every node pool), and every read derives the phase from the clock, like the rest
of the sandbox. A change re-plans from now: a new replica count makes its pool busy for
:data:`SCALE_DELAY`, a version change rolls the control plane and then the pools. The offer
(:data:`OFFER`) is fixed and labelled simulated; its version and class names follow the SCS
cluster stacks (``openstack-scs2-1-34-v2`` installs 1.34.7).

Kubeconfigs are real enough to check (:meth:`ClusterService.access`): a cluster gets its own CA
the first time one is asked for, kept in its record and carried through every re-plan, and an
admin credential is a client certificate that CA signs (:mod:`.cluster_ca`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from ...kinds.kaas import parse_version
from ..base import BackendResource, Conflict, InvalidRequest, Scope
from ..kaas import AdminRequest, ClusterAccess
from . import catalog
from .cluster_ca import Pair, admin_certificate, new_ca
from .records import Record
from .services import Desired, SandboxService
from .settings import PREFIX

CONTROL_PLANE_DELAY = 6.0
"""Seconds (at speed 1) until a new control plane answers; a hosted one takes half."""
NODES_DELAY = 4.0
"""Seconds (at speed 1) a new pool's nodes take to join once the control plane is up."""
SCALE_DELAY = 3.0
UPGRADE_DELAY = 4.0
"""Per stage of an upgrade: the control plane, then the pools' rolling replacement."""

OFFER: dict[str, Any] = {
    "provider": f"{PREFIX}",
    "hostedControlPlanes": True,
    "kubernetes": {"versions": [
        {"version": "1.32.13", "classification": "deprecated",
         "expirationDate": "2027-02-28T00:00:00Z"},
        {"version": "1.33.9", "classification": "supported"},
        {"version": "1.33.10", "classification": "supported"},
        {"version": "1.34.6", "classification": "supported"},
        {"version": "1.34.7", "classification": "supported"},
    ]},
    "clusterClasses": [
        {"name": "openstack-scs2-1-32-v4", "kubernetesVersion": "1.32.13",
         "classification": "deprecated", "expirationDate": "2027-02-28T00:00:00Z"},
        {"name": "openstack-scs2-1-33-v5", "kubernetesVersion": "1.33.10"},
        {"name": "openstack-scs2-1-34-v1", "kubernetesVersion": "1.34.6"},
        {"name": "openstack-scs2-1-34-v2", "kubernetesVersion": "1.34.7"},
    ],
}
"""The simulated backend's offer, published as the ClusterProfile (all of it simulated)."""


def resolve(version: str) -> str:
    """The patch version a spec's version names; InvalidRequest if the sandbox has none."""
    wanted = parse_version(version)
    offered = [v["version"] for v in OFFER["kubernetes"]["versions"]
               if parse_version(v["version"]) == wanted
               or (wanted[2] is None and parse_version(v["version"])[:2] == wanted[:2])]
    if not offered:
        raise InvalidRequest(f"{PREFIX}: Kubernetes {version} is not offered")
    return max(offered, key=lambda v: parse_version(v)[2] or 0)


def class_for(version: str, override: str) -> str:
    """The override, or the newest class of the version's minor."""
    minor = parse_version(version)[:2]
    classes = [c["name"] for c in OFFER["clusterClasses"]
               if parse_version(c["kubernetesVersion"])[:2] == minor]
    if override:
        if override not in classes:
            raise InvalidRequest(f"{PREFIX}: cluster class {override!r} does not install "
                                 f"Kubernetes {version}")
        return override
    return classes[-1]


class ClusterService(SandboxService):
    kind = "Cluster"

    def validate(self, namespace: str, desired: Desired, current: Record | None) -> None:
        resolve(str(desired.get("kubernetesVersion") or ""))
        for pool in desired.get("nodePools") or []:
            flavor = catalog.FLAVORS.get(str(pool.get("flavor")))
            if flavor is None:
                raise InvalidRequest(f"{PREFIX}: node pool {pool.get('name')}: unknown flavor "
                                     f"{pool.get('flavor')!r}")
            if flavor.architecture != (pool.get("architecture") or "amd64"):
                raise InvalidRequest(f"{PREFIX}: node pool {pool.get('name')}: flavor "
                                     f"{flavor.name} is {flavor.architecture}")

    def usage(self, desired: Desired) -> dict[str, int]:
        return {}

    def allocate(self, namespace: str, backend_id: str, desired: Desired,
                 current: Record | None) -> dict[str, Any]:
        """The plan: when the control plane and each pool are done (see the module doc)."""
        now = self.records.now()
        scaled = self.sandbox.settings.scaled
        version = resolve(str(desired["kubernetesVersion"]))
        cls = class_for(version, str(desired.get("clusterClass") or ""))
        old = current["data"] if current else None
        plane: dict[str, Any]
        if old is None:
            hosted = bool((desired.get("controlPlane") or {}).get("hosted"))
            plane = {"readyAt": now + scaled(CONTROL_PLANE_DELAY / (2 if hosted else 1)),
                     "version": version, "from": "", "initialized": False}
        elif old["controlPlane"]["version"] != version:
            plane = {"readyAt": now + scaled(UPGRADE_DELAY), "version": version,
                     "from": _running(old["controlPlane"], now), "initialized": True}
        else:
            plane = old["controlPlane"]
        start = max(now, plane["readyAt"])
        pools = {p["name"]: self._pool(p, (old or {}).get("pools", {}).get(p["name"]),
                                       plane, start, now)
                 for p in desired.get("nodePools") or []}
        removed = old is not None and bool(set(old["pools"]) - set(pools))
        finished: list[float] = [plane["readyAt"], *(p["readyAt"] for p in pools.values())]
        done = max([*finished, now + scaled(SCALE_DELAY) if removed else 0.0])
        kept = {"ca": old["ca"]} if old and "ca" in old else {}
        return {"controlPlane": plane, "pools": pools, "class": cls, "settledAt": done,
                "endpoint": f"https://{backend_id[:8]}.kaas.sandbox.invalid:6443", **kept}

    def _pool(self, spec: dict[str, Any], old: dict[str, Any] | None, plane: dict[str, Any],
              start: float, now: float) -> dict[str, Any]:
        scaled = self.sandbox.settings.scaled
        replicas = spec["replicas"] if spec.get("replicas") is not None \
            else int((spec.get("autoscaling") or {}).get("min") or 0)
        if old is None:
            return {"replicas": replicas, "from": 0, "readyAt": start + scaled(NODES_DELAY),
                    "version": plane["version"]}
        if old["version"] != plane["version"]:
            return {"replicas": replicas, "from": _ready(old, now),
                    "readyAt": start + scaled(UPGRADE_DELAY), "version": plane["version"]}
        if old["replicas"] != replicas:
            return {"replicas": replicas, "from": _ready(old, now),
                    "readyAt": max(now, old["readyAt"]) + scaled(SCALE_DELAY),
                    "version": plane["version"]}
        return old

    async def access(self, scope: Scope, backend: BackendResource,
                     admin: AdminRequest | None) -> ClusterAccess:
        """The endpoint and the cluster's own CA; for ``admin`` a client certificate it
        signed, valid for ``admin.seconds``. Nothing but the CA (once) is written. Keys are
        made and certificates signed in a worker thread, never on the event loop."""
        ca, endpoint = await self._run(self._ca, scope.namespace, backend.id, None)
        if ca is None:
            made = await asyncio.to_thread(new_ca, backend.id, self._now())
            ca, endpoint = await self._run(self._ca, scope.namespace, backend.id, made)
            ca = ca or made  # the CA stored meanwhile, or the one made, now saved
        if admin is None:
            return ClusterAccess(endpoint, ca.certificate)
        cert = await asyncio.to_thread(admin_certificate, ca, admin.user, admin.seconds,
                                       self._now())
        return ClusterAccess(endpoint, ca.certificate, client_certificate=cert.certificate,
                             client_key=cert.key, expires=cert.not_after)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.records.now(), dt.UTC)

    def _ca(self, namespace: str, backend_id: str, made: Pair | None
            ) -> tuple[Pair | None, str]:
        """The cluster's CA and its endpoint; without a stored CA, ``made`` is saved as the
        cluster's (None is returned while there is none to save)."""
        for _ in range(3):
            rec = self._existing(namespace, backend_id)
            if rec.get("deleting"):
                raise InvalidRequest(f"{PREFIX}: cluster {backend_id} is being deleted")
            endpoint = self.observed(rec)["apiEndpoint"]
            if not endpoint:
                raise Conflict(f"{PREFIX}: the control plane of cluster {backend_id} is not "
                               "up yet")
            stored = rec["data"].get("ca")
            if stored:
                return Pair(stored["certificate"].encode(), stored["key"].encode(),
                            dt.datetime.fromisoformat(stored["notAfter"])), endpoint
            if made is None:
                return None, endpoint
            rec["data"]["ca"] = {"certificate": made.certificate.decode(),
                                 "key": made.key.decode(), "notAfter": made.not_after.isoformat()}
            try:
                self.records.save(rec)
                return made, endpoint
            except Conflict:
                continue  # changed meanwhile (another process): read it again
        raise Conflict(f"{PREFIX}: cluster {backend_id} keeps changing; try again")

    def view(self, rec: Record) -> BackendResource:
        """ACTIVE only once the plan is done: until then the cluster is PENDING, with the
        phase as its message."""
        found = super().view(rec)
        if found.state == "ACTIVE" and self.records.now() < rec["data"]["settledAt"]:
            found.state = "PENDING"
            found.message = f"{PREFIX}: {found.observed['phase']}"
        return found

    def observed(self, rec: Record) -> dict[str, Any]:
        now, data = self.records.now(), rec["data"]
        plane = data["controlPlane"]
        pools = [{"name": name, "desiredReplicas": pool["replicas"],
                  "readyReplicas": _ready(pool, now)} for name, pool in data["pools"].items()]
        up = now >= plane["readyAt"]
        return {"controlPlaneReady": up, "kubernetesVersion": _running(plane, now),
                "clusterClass": data["class"], "nodePools": pools,
                "apiEndpoint": data["endpoint"] if up or plane["initialized"] else "",
                "phase": _phase(plane, data["pools"], now, data["settledAt"])}


def _running(plane: dict[str, Any], now: float) -> str:
    return str(plane["version"] if now >= plane["readyAt"] else plane["from"])


def _ready(pool: dict[str, Any], now: float) -> int:
    return int(pool["replicas"] if now >= pool["readyAt"] else pool["from"])


def _phase(plane: dict[str, Any], pools: dict[str, Any], now: float, settled: float) -> str:
    if now < plane["readyAt"]:
        return (f"UpgradingControlPlane to {plane['version']}" if plane["initialized"]
                else "ProvisioningControlPlane")
    busy = sorted(name for name, pool in pools.items() if now < pool["readyAt"])
    if busy:
        return f"ProvisioningNodePools {', '.join(busy)}"
    return "Running" if now >= settled else "RemovingNodePools"
