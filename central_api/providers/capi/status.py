"""A CAPI Cluster's status read back as the provider-neutral :class:`BackendResource`.

Both shapes of Cluster API's status are read, because a management cluster may run CAPI
before v1.11 (v1beta1 only) or after (v1beta2 storage):

- v1beta2: ``status.conditions`` are metav1 conditions (``Available``,
  ``ControlPlaneAvailable``, ``WorkersAvailable``, ``TopologyReconciled``...), the old ones
  are kept in ``status.deprecated.v1beta1.conditions``;
- v1beta1: ``status.conditions`` are the old conditions (``Ready``, ``ControlPlaneReady``,
  ``InfrastructureReady``, ``TopologyReconciled``), the new ones in ``status.v1beta2``.

A new-style condition wins where both exist. Per-pool replicas come from the cluster's
MachineDeployments (label ``topology.cluster.x-k8s.io/deployment-name`` = pool) where the
management cluster lists them; without them, from the Cluster's aggregate ``status.workers``:
exact for one pool, and all-or-nothing for several (CAPI keeps no per-pool count on the
Cluster).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...kinds.kaas import parse_version
from ..base import BackendResource, State
from .mapping import MIN_SIZE, OWNER_LABEL

POOL_LABEL = "topology.cluster.x-k8s.io/deployment-name"
FAILED_REASONS = frozenset({"ReconcileFailed", "TopologyReconcileFailed"})
"""TopologyReconciled reasons of a topology CAPI cannot apply (v1beta2, v1beta1): an error
until the spec changes, unlike the upgrade and creation reasons, which are progress."""
NEW_ORDER = ("TopologyReconciled", "ControlPlaneAvailable", "WorkersAvailable", "Available")
OLD_ORDER = ("TopologyReconciled", "InfrastructureReady", "ControlPlaneReady", "Ready")


@dataclass(frozen=True)
class Conditions:
    """The Cluster's conditions by type, new (v1beta2) and old (v1beta1) style."""

    new: dict[str, Mapping[str, Any]]
    old: dict[str, Mapping[str, Any]]

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Conditions:
        status = obj.get("status") or {}
        if "v1beta2" in status or str(obj.get("apiVersion", "")).endswith("/v1beta1"):
            new = (status.get("v1beta2") or {}).get("conditions") or []
            old = status.get("conditions") or []
        else:
            new = status.get("conditions") or []
            old = ((status.get("deprecated") or {}).get("v1beta1") or {}).get("conditions") or []
        return cls({str(c.get("type")): c for c in new}, {str(c.get("type")): c for c in old})

    def status(self, new_type: str, old_type: str = "") -> bool | None:
        """True/False/None (unknown or absent): the new condition, else the old one."""
        found = self.new.get(new_type) or self.old.get(old_type or new_type)
        if found is None or found.get("status") not in ("True", "False"):
            return None
        return found.get("status") == "True"

    def topology(self) -> Mapping[str, Any]:
        return self.new.get("TopologyReconciled") or self.old.get("TopologyReconciled") or {}

    def first_false(self) -> str:
        """``Type: message`` of the first unmet condition in the order a cluster comes up."""
        for conds, order in ((self.new, NEW_ORDER), (self.old, OLD_ORDER)):
            for kind in order:
                found = conds.get(kind)
                if found and found.get("status") == "False":
                    detail = found.get("message") or found.get("reason") or ""
                    return f"{kind}: {detail}" if detail else kind
        return ""


def view(obj: Mapping[str, Any], machine_deployments: Sequence[Mapping[str, Any]] | None,
         desired: dict[str, Any]) -> BackendResource:
    """The backend resource of a CAPI Cluster (its MachineDeployments: None when the
    management cluster does not list them)."""
    conditions = Conditions.of(obj)
    pools = pool_status(obj, machine_deployments, conditions)
    state, message = state_of(obj, conditions, pools)
    metadata, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    topology = spec.get("topology") or {}
    observed = {
        "controlPlaneReady": plane_ready(obj, conditions),
        "kubernetesVersion": running_version(obj, conditions),
        "clusterClass": str((topology.get("classRef") or {}).get("name")
                            or topology.get("class") or ""),
        "apiEndpoint": endpoint(obj),
        "phase": phase(obj, conditions),
        "nodePools": pools,
    }
    return BackendResource(id=str(metadata.get("name")),
                           owner_uid=str((metadata.get("labels") or {}).get(OWNER_LABEL)),
                           state=state, message=message, desired=desired, observed=observed)


def plane_ready(obj: Mapping[str, Any], conditions: Conditions) -> bool:
    found = conditions.status("ControlPlaneAvailable", "ControlPlaneReady")
    if found is None:
        return bool((obj.get("status") or {}).get("controlPlaneReady"))
    return found


def running_version(obj: Mapping[str, Any], conditions: Conditions) -> str:
    """The oldest version the control plane's machines run (v1beta2
    ``status.controlPlane.versions``), else the topology's once it is reconciled."""
    status = obj.get("status") or {}
    versions = [str(v.get("version", "")).removeprefix("v")
                for v in (status.get("controlPlane") or {}).get("versions") or []
                if v.get("version")]
    if versions:
        return min(versions, key=parse_version)
    topology = (obj.get("spec") or {}).get("topology") or {}
    if plane_ready(obj, conditions) and conditions.topology().get("status") == "True":
        return str(topology.get("version") or "").removeprefix("v")
    return ""


def endpoint(obj: Mapping[str, Any]) -> str:
    """``https://host:port`` of ``spec.controlPlaneEndpoint`` ("" until it is set)."""
    found = (obj.get("spec") or {}).get("controlPlaneEndpoint") or {}
    host = str(found.get("host") or "")
    if not host:
        return ""
    return f"https://{f'[{host}]' if ':' in host else host}:{int(found.get('port') or 6443)}"


def phase(obj: Mapping[str, Any], conditions: Conditions) -> str:
    """What CAPI is doing: a topology in progress names its reason (``ClusterUpgrading``),
    otherwise the Cluster's ``status.phase``."""
    topology = conditions.topology()
    if topology.get("status") == "False" and topology.get("reason") not in FAILED_REASONS \
            and topology.get("reason"):
        return str(topology["reason"])
    return str((obj.get("status") or {}).get("phase") or "Pending")


def pool_status(obj: Mapping[str, Any], machine_deployments: Sequence[Mapping[str, Any]] | None,
                conditions: Conditions) -> list[dict[str, Any]]:
    """``{name, desiredReplicas, readyReplicas}`` per topology MachineDeployment."""
    topology = (obj.get("spec") or {}).get("topology") or {}
    mds = (topology.get("workers") or {}).get("machineDeployments") or []
    by_pool = {str(((md.get("metadata") or {}).get("labels") or {}).get(POOL_LABEL)): md
               for md in machine_deployments or []}
    desired = {str(md["name"]): _desired(md, by_pool.get(str(md["name"]))) for md in mds}
    ready = {name: int(((by_pool[name].get("status") or {}).get("readyReplicas")) or 0)
             for name in desired if name in by_pool}
    missing = [name for name in desired if name not in ready]
    if missing:
        ready |= _aggregate(obj, {n: desired[n] for n in missing}, conditions)
    return [{"name": name, "desiredReplicas": want, "readyReplicas": min(ready[name], want)
             if want else ready[name]} for name, want in desired.items()]


def _desired(md: Mapping[str, Any], deployment: Mapping[str, Any] | None) -> int:
    """The topology's replicas; for an autoscaled pool, what the autoscaler set on its
    MachineDeployment, else its minimum."""
    if md.get("replicas") is not None:
        return int(md["replicas"])
    chosen = ((deployment or {}).get("spec") or {}).get("replicas")
    if chosen is not None:
        return int(chosen)
    annotations = (md.get("metadata") or {}).get("annotations") or {}
    return int(annotations.get(MIN_SIZE) or 0)


def _aggregate(obj: Mapping[str, Any], desired: dict[str, int],
               conditions: Conditions) -> dict[str, int]:
    status = obj.get("status") or {}
    workers = status.get("workers") or (status.get("v1beta2") or {}).get("workers") or {}
    ready = int(workers.get("readyReplicas") or 0)
    if len(desired) == 1:
        return {name: ready for name in desired}
    done = ready >= sum(desired.values()) and conditions.status("WorkersAvailable") is not False
    return {name: want if done else 0 for name, want in desired.items()}


def state_of(obj: Mapping[str, Any], conditions: Conditions,
             pools: list[dict[str, Any]]) -> tuple[State, str]:
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    if metadata.get("deletionTimestamp") or status.get("phase") == "Deleting":
        return "DELETING", "Cluster API is deleting the cluster"
    topology = conditions.topology()
    if status.get("phase") == "Failed":
        failure = status.get("failureMessage") or ((status.get("deprecated") or {}).get(
            "v1beta1") or {}).get("failureMessage") or conditions.first_false()
        return "ERROR", f"the cluster failed: {failure}"
    if topology.get("status") == "False" and topology.get("reason") in FAILED_REASONS:
        return "ERROR", f"Cluster API refuses the topology: {topology.get('message', '')}"
    if int(status.get("observedGeneration") or 0) < int(metadata.get("generation") or 0):
        return "PENDING", "Cluster API has not seen the change yet"
    available = conditions.status("Available", "Ready") is True
    short = [p["name"] for p in pools if p["readyReplicas"] < p["desiredReplicas"]]
    if available and plane_ready(obj, conditions) and not short \
            and topology.get("status") != "False":
        return "ACTIVE", ""
    return "PENDING", conditions.first_false() or phase(obj, conditions)
