"""Cluster spec → Gardener ``core.gardener.cloud/v1beta1`` Shoot, and Shoot status → state.

Pure functions, no I/O: the service (:mod:`.service`) reads the Garden and writes what these
return. Field names follow ``gardener-shoot.md`` and the Shoot schema of Gardener v1.149.

What Gardener lacks is mapped or refused here, never dropped (:func:`refusals`):

- ``controlPlane.replicas: 3`` → ``spec.controlPlane.highAvailability.failureTolerance.type``:
  ``zone`` when the pools use more than one zone, else ``node`` (Gardener runs the control
  plane as pods in a seed: there is no replica count). Gardener does not let the type change
  once set, so a Shoot keeps the type it has.
- ``controlPlane.hosted`` and a ``clusterClass`` override are refused (Gardener offers no
  Kamaji-style choice and no cluster classes); so is a cluster without node pools
  (workerless Shoots are not offered).
- Gardener reports no per-pool node counts: a pool's desired count is its ``minimum`` (a
  fixed pool: its size; an autoscaled pool: the autoscaler's floor), and all pools count
  as ready once ``EveryNodeReady`` is True for the current generation, none before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ...config import GardenerConfig
from ...kinds.kaas import ClusterSpec, NodePool, parse_version
from ..base import State

API = "core.gardener.cloud/v1beta1"
AUTH_API = "authentication.gardener.cloud/v1alpha1"
OPENSTACK_API = "openstack.provider.extensions.gardener.cloud/v1alpha1"
OWNER_LABEL = "kaas.scs.community/cluster-uid"
"""Carries the Central API Cluster's UID: Shoots are found by it, never by name."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "scs-central-api"}
SPEC_ANNOTATION = "kaas.scs.community/spec"
"""The Cluster spec the Shoot was last written from (what ``find`` reports as desired)."""
APPLIED_ANNOTATION = "kaas.scs.community/last-applied"
"""The Shoot spec last applied, like kubectl's last-applied-configuration: a field of it
that differs in the live Shoot was changed by hand (drift, repaired on the next pass)."""
RUNNING_ANNOTATION = "kaas.scs.community/running-version"
"""The version the cluster ran when the provider last changed the Shoot: Gardener has no
status field for it, and during an upgrade spec.kubernetes.version is already the new one."""
CONFIRM_DELETION = "confirmation.gardener.cloud/deletion"
OPERATION = "gardener.cloud/operation"
FIELD_MANAGER = "scs-central-api"
NAME_LIMIT = 21
"""Gardener's ShootValidator: len(project name) + len(shoot name) ≤ 21."""
SHORTEST_NAME = 5
HEALTH = ("APIServerAvailable", "ControlPlaneHealthy", "EveryNodeReady",
          "SystemComponentsHealthy")
"""The care conditions a usable cluster has True (ObservabilityComponentsHealthy too, where
the landscape reports it)."""
OPTIONAL_HEALTH = ("ObservabilityComponentsHealthy",)
FAILED_STATES = ("Error", "Failed", "Aborted")
SETTLING = ("Create", "Reconcile", "Restore")
"""Operations after whose success the Shoot is as its spec says; ``Restore`` ends a control
plane's migration to another seed, and the Shoot keeps it as its last operation until the
next reconcile (up to the gardenlet's sync period)."""


class Refused(ValueError):
    """The spec asks what Gardener cannot build (the service raises InvalidRequest)."""


# -- names -------------------------------------------------------------------------------------
def project_namespace(prefix: str, tenant: str) -> str:
    return f"{prefix}{tenant}"


def project_name(namespace: str) -> str:
    """Gardener's project namespaces are ``garden-<project>``."""
    return namespace.removeprefix("garden-")


def shoot_name(project: str, owner_uid: str, attempt: int = 0) -> str:
    """A short name that is the same on every retry and restart (derived from the Cluster's
    UID only), within Gardener's limit; ``attempt`` > 0 if another Shoot holds the name."""
    budget = NAME_LIMIT - len(project)
    if budget < SHORTEST_NAME:
        raise Refused(f"the Gardener project name {project!r} is too long: Gardener allows "
                      f"{NAME_LIMIT} characters for project and Shoot name together")
    digest = hashlib.sha256(f"{owner_uid}/{attempt}".encode()).hexdigest()
    return ("k" + digest)[:min(budget, 11)]


def oidc_config_map_name(owner_uid: str) -> str:
    return f"scs-oidc-{owner_uid}"


# -- refusals and versions -----------------------------------------------------------------
def refusals(spec: ClusterSpec) -> list[str]:
    """What the spec asks that Gardener cannot build, each naming the field."""
    found = []
    if spec.controlPlane.hosted:
        found.append("spec.controlPlane.hosted: Gardener offers no hosted (Kamaji-style) "
                     "control plane choice: its control planes always run in a seed")
    if spec.clusterClass:
        found.append(f"spec.clusterClass: {spec.clusterClass!r}: Gardener has no cluster "
                     "classes; leave it empty")
    if not spec.nodePools:
        found.append("spec.nodePools: Gardener needs at least one node pool (workerless "
                     "Shoots are not offered)")
    return found


@dataclass(frozen=True)
class Profile:
    """What the Shoot mapping needs from the configured CloudProfile."""

    versions: Mapping[str, str] = field(default_factory=dict)
    """Patch version → classification (expired ones included)."""
    zones: Sequence[str] = ()
    """The configured region's zones."""


def resolve_version(wanted: str, profile: Profile, live: str = "") -> str:
    """The patch version to write: the spec's patch, or the newest supported patch of its
    minor; a higher patch of the same minor the Shoot already runs stays (Gardener's
    maintenance raises patches; nothing is ever downgraded)."""
    want = parse_version(wanted)
    if live and parse_version(live)[:2] == want[:2] and \
            (want[2] is None or (parse_version(live)[2] or 0) >= want[2]):
        return live
    if want[2] is not None:
        if profile.versions.get(wanted, "expired") == "expired":
            raise Refused(f"spec.kubernetesVersion: {wanted} is not offered by the "
                          f"CloudProfile (offered: {_offered(profile)})")
        return wanted
    rank = {"supported": 0, "deprecated": 1, "preview": 2}
    patches = [(rank[c], -(parse_version(v)[2] or 0), v) for v, c in profile.versions.items()
               if c in rank and parse_version(v)[:2] == want[:2]]
    if not patches:
        raise Refused(f"spec.kubernetesVersion: {wanted} is not offered by the CloudProfile "
                      f"(offered: {_offered(profile)})")
    return min(patches)[2]


def _offered(profile: Profile) -> str:
    return ", ".join(v for v, c in profile.versions.items() if c != "expired") or "none"


# -- the Shoot -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where and what to write, besides the spec."""

    namespace: str
    name: str
    owner_uid: str
    version: str
    running: str = ""
    failure_tolerance: str = ""
    """The Shoot's current HA type, kept (Gardener does not allow changing it)."""


def shoot(settings: GardenerConfig, target: Target, spec: ClusterSpec,
          profile: Profile) -> dict[str, Any]:
    """The Shoot the provider applies (only the fields it owns)."""
    body_spec = shoot_spec(settings, target, spec, profile)
    annotations = {SPEC_ANNOTATION: _canonical(spec.model_dump(mode="json")),
                   APPLIED_ANNOTATION: _canonical(body_spec)}
    if target.running:
        annotations[RUNNING_ANNOTATION] = target.running
    return {"apiVersion": API, "kind": "Shoot",
            "metadata": {"name": target.name, "namespace": target.namespace,
                         "labels": {OWNER_LABEL: target.owner_uid, **MANAGED_BY},
                         "annotations": annotations},
            "spec": body_spec}


def shoot_spec(settings: GardenerConfig, target: Target, spec: ClusterSpec,
               profile: Profile) -> dict[str, Any]:
    kubernetes: dict[str, Any] = {"version": target.version}
    if spec.oidc is not None:
        kubernetes["kubeAPIServer"] = {"structuredAuthentication": {
            "configMapName": oidc_config_map_name(target.owner_uid)}}
    body: dict[str, Any] = {
        "cloudProfile": {"kind": "CloudProfile", "name": settings.cloud_profile},
        "region": settings.region,
        "credentialsBindingName": settings.credentials_binding_name,
        "purpose": settings.purpose,
        "provider": provider(settings, spec.nodePools, profile),
        "networking": {"type": settings.networking_type, "pods": spec.networking.pods,
                       "services": spec.networking.services, "nodes": settings.nodes_cidr},
        "kubernetes": kubernetes,
        "maintenance": maintenance(spec),
    }
    plane = control_plane(spec, target.failure_tolerance)
    if plane:
        body["controlPlane"] = plane
    return body


def provider(settings: GardenerConfig, pools: Sequence[NodePool],
             profile: Profile) -> dict[str, Any]:
    infrastructure: dict[str, Any] = {
        "apiVersion": OPENSTACK_API, "kind": "InfrastructureConfig",
        "floatingPoolName": settings.floating_pool_name,
        "networks": {"workers": settings.nodes_cidr}}
    plane: dict[str, Any] = {"apiVersion": OPENSTACK_API, "kind": "ControlPlaneConfig"}
    if settings.load_balancer_provider:
        plane["loadBalancerProvider"] = settings.load_balancer_provider
    return {"type": "openstack", "infrastructureConfig": infrastructure,
            "controlPlaneConfig": plane,
            "workers": [worker(settings, pool, profile) for pool in pools]}


def worker(settings: GardenerConfig, pool: NodePool, profile: Profile) -> dict[str, Any]:
    """One node pool: the SCS flavor is the machine type; a pool without zones gets the
    region's first zone (OpenStack workers need one)."""
    if pool.autoscaling is not None:
        low, high = pool.autoscaling.min, pool.autoscaling.max
    else:
        low = high = pool.replicas or 0
    machine: dict[str, Any] = {"type": pool.flavor, "architecture": pool.architecture}
    if settings.machine_image:
        machine["image"] = {"name": settings.machine_image, **(
            {"version": settings.machine_image_version}
            if settings.machine_image_version else {})}
    found: dict[str, Any] = {"name": pool.name, "minimum": low, "maximum": high,
                             "machine": machine, "cri": {"name": "containerd"}}
    zones = list(pool.zones) or list(profile.zones[:1])
    if zones:
        found["zones"] = zones
    if pool.labels:
        found["labels"] = dict(pool.labels)
    if pool.taints:
        found["taints"] = [{"key": t.key, "effect": t.effect, **({"value": t.value}
                                                                  if t.value else {})}
                           for t in pool.taints]
    if pool.rootDiskGiB:  # 0 or unset: the flavor's own disk
        found["volume"] = {"size": f"{pool.rootDiskGiB}Gi"}
    return found


def control_plane(spec: ClusterSpec, current: str = "") -> dict[str, Any]:
    if spec.controlPlane.replicas != 3:
        return {}
    zones = {zone for pool in spec.nodePools for zone in pool.zones}
    tolerance = current or ("zone" if len(zones) > 1 else "node")
    return {"highAvailability": {"failureTolerance": {"type": tolerance}}}


def maintenance(spec: ClusterSpec) -> dict[str, Any]:
    found: dict[str, Any] = {"autoUpdate": {
        "kubernetesVersion": spec.maintenance.autoUpdate.kubernetesVersion}}
    window = spec.maintenance.timeWindow
    if window is not None:
        found["timeWindow"] = {"begin": window.begin, "end": window.end}
    return found


def oidc_config_map(namespace: str, owner_uid: str, spec: ClusterSpec,
                    owner: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The structured authentication config (``config.yaml``: an AuthenticationConfiguration)
    the Shoot's ``kubeAPIServer.structuredAuthentication`` names; None without OIDC.
    ``owner``: the Shoot, so that the Garden deletes the ConfigMap with it."""
    if spec.oidc is None:
        return None
    oidc = spec.oidc
    config = {"apiVersion": "apiserver.config.k8s.io/v1beta1",
              "kind": "AuthenticationConfiguration",
              "jwt": [{"issuer": {"url": oidc.issuerURL, "audiences": [oidc.clientID]},
                       "claimMappings": {
                           "username": {"claim": oidc.usernameClaim,
                                        "prefix": oidc.usernamePrefix},
                           "groups": {"claim": oidc.groupsClaim,
                                      "prefix": oidc.groupsPrefix}}}]}
    metadata: dict[str, Any] = {"name": oidc_config_map_name(owner_uid),
                                "namespace": namespace,
                                "labels": {OWNER_LABEL: owner_uid, **MANAGED_BY}}
    if owner:
        metadata["ownerReferences"] = [{
            "apiVersion": API, "kind": "Shoot", "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"]}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "data": {"config.yaml": yaml.safe_dump(config, sort_keys=False)}}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- reading a Shoot back --------------------------------------------------------------------
def written_spec(live: Mapping[str, Any]) -> dict[str, Any]:
    """The Cluster spec the Shoot was written from; empty if it was not (or is unreadable)."""
    return _annotation_json(live, SPEC_ANNOTATION)


def drift(live: Mapping[str, Any]) -> list[str]:
    """Paths of fields the provider applied that differ in the live Shoot (changed by hand);
    a higher patch version of the same minor is Gardener's maintenance, not drift."""
    applied = _annotation_json(live, APPLIED_ANNOTATION)
    if not applied:
        return ["metadata.annotations"]
    found = _differences(applied, live.get("spec") or {}, "spec")
    version = "spec.kubernetes.version"
    if version in found and _raised_patch(str((applied.get("kubernetes") or {})
                                              .get("version") or ""),
                                          str(((live.get("spec") or {}).get("kubernetes")
                                               or {}).get("version") or "")):
        found.remove(version)
    return found


def _raised_patch(applied: str, live: str) -> bool:
    try:
        a, b = parse_version(applied), parse_version(live)
    except (ValueError, IndexError):
        return False
    return a[:2] == b[:2] and (b[2] or 0) > (a[2] or 0)


def _differences(applied: Any, live: Any, path: str) -> list[str]:
    if isinstance(applied, dict) and isinstance(live, dict):
        return [p for key, value in applied.items()
                for p in _differences(value, live.get(key), f"{path}.{key}")]
    if isinstance(applied, list) and isinstance(live, list) and len(applied) == len(live):
        return [p for i, (a, b) in enumerate(zip(applied, live, strict=True))
                for p in _differences(a, b, f"{path}[{i}]")]
    return [] if applied == live else [path]


def _annotation_json(live: Mapping[str, Any], key: str) -> dict[str, Any]:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(key) or ""
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


@dataclass
class Observation:
    state: State
    message: str
    observed: dict[str, Any]


def observe(live: Mapping[str, Any]) -> Observation:
    """The provider-neutral state, phase and per-pool counts of a Shoot (see the module doc
    for what Gardener does not report)."""
    meta, spec = live.get("metadata") or {}, live.get("spec") or {}
    status = live.get("status") or {}
    op = status.get("lastOperation") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    current = status.get("observedGeneration") == meta.get("generation")
    settled = current and op.get("state") == "Succeeded" and op.get("type") in SETTLING
    state, message = _state(meta, status, op, conditions, settled)
    version = str((spec.get("kubernetes") or {}).get("version") or "")
    running = version if settled else \
        str((meta.get("annotations") or {}).get(RUNNING_ANNOTATION) or "")
    nodes_ready = settled and _is(conditions, "EveryNodeReady", "True")
    pools = [{"name": w.get("name", ""), "desiredReplicas": int(w.get("minimum") or 0),
              "readyReplicas": int(w.get("minimum") or 0) if nodes_ready else 0}
             for w in (spec.get("provider") or {}).get("workers") or []]
    return Observation(state, message, {
        "controlPlaneReady": _is(conditions, "APIServerAvailable", "True")
        and _is(conditions, "ControlPlaneHealthy", "True"),
        "kubernetesVersion": running, "clusterClass": "",
        "apiEndpoint": endpoint(live), "phase": _phase(meta, op, state, current),
        "nodePools": pools, "technicalID": str(status.get("technicalID") or ""),
        "lastOperation": {k: op.get(k) for k in ("type", "state", "progress", "description")
                          if k in op}})


def _state(meta: Mapping[str, Any], status: Mapping[str, Any], op: Mapping[str, Any],
           conditions: Mapping[str, Any], settled: bool) -> tuple[State, str]:
    if meta.get("deletionTimestamp") or op.get("type") == "Delete":
        return "DELETING", _describe(op)
    if op.get("state") in FAILED_STATES:
        errors = "; ".join(str(e.get("description") or "") for e in
                           status.get("lastErrors") or [] if e.get("description"))
        retry = " (Gardener retries)" if op.get("state") == "Error" else ""
        return "ERROR", f"{_describe(op)}{retry}" + (f": {errors}" if errors else "")
    if not settled:
        if op and status.get("observedGeneration") != meta.get("generation"):
            return "PENDING", "waiting for Gardener to reconcile the change"
        return "PENDING", _describe(op) or "waiting for Gardener to pick up the Shoot"
    unhealthy = [f"{t}: {c.get('message') or c.get('reason') or 'False'}"
                 for t, c in conditions.items() if t in HEALTH + OPTIONAL_HEALTH
                 and c.get("status") == "False"]
    if unhealthy:
        return "ERROR", "unhealthy: " + "; ".join(unhealthy)
    waiting = [t for t in HEALTH if not _is(conditions, t, "True")]
    if waiting:
        return "PENDING", "waiting for " + ", ".join(waiting)
    return "ACTIVE", _constraints(status)


def _constraints(status: Mapping[str, Any]) -> str:
    """Constraints that are not met (e.g. MaintenancePreconditionsSatisfied False): the
    cluster works, but the user should know."""
    notes = [f"{c.get('type')}: {c.get('message') or c.get('reason')}"
             for c in status.get("constraints") or [] if c.get("status") == "False"]
    return ("constraints not met: " + "; ".join(notes)) if notes else ""


def _describe(op: Mapping[str, Any]) -> str:
    if not op:
        return ""
    text = f"{op.get('type', '')} {op.get('state', '')} {op.get('progress', 0)}%"
    return f"{text}: {op['description']}" if op.get("description") else text


def _phase(meta: Mapping[str, Any], op: Mapping[str, Any], state: State,
           current: bool) -> str:
    if state == "ACTIVE":
        return "Running"
    if not op:
        return "Delete Pending" if meta.get("deletionTimestamp") else "Create Pending"
    if not current and op.get("state") == "Succeeded":
        return "Reconcile Pending"
    return f"{op.get('type', '')} {op.get('state', '')} {op.get('progress', 0)}%"


def _is(conditions: Mapping[str, Any], kind: str, value: str) -> bool:
    return str((conditions.get(kind) or {}).get("status")) == value


def endpoint(live: Mapping[str, Any]) -> str:
    """The external API server URL Gardener advertises (the first one if none is named so)."""
    addresses = (live.get("status") or {}).get("advertisedAddresses") or []
    named = [a for a in addresses if a.get("name") == "external"] or addresses
    return str(named[0].get("url") or "") if named else ""


def failure_tolerance(live: Mapping[str, Any]) -> str:
    return str(((((live.get("spec") or {}).get("controlPlane") or {})
                 .get("highAvailability") or {}).get("failureTolerance") or {})
               .get("type") or "")


def live_version(live: Mapping[str, Any]) -> str:
    return str(((live.get("spec") or {}).get("kubernetes") or {}).get("version") or "")
