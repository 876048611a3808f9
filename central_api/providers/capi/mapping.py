"""A Central API Cluster spec as a Cluster API ``v1beta2`` Cluster with ``spec.topology``.

Pure functions: given the spec, where the cluster goes (:class:`Target`) and the operator's
settings, :func:`render` builds the whole body the provider server-side applies, so the same
body serves creation, updates and drift repair (``contains`` compares it with what the
management cluster holds). The mapping follows ``sample-cluster-mapping.v1beta2.yaml`` of
the KaaS reference; what Cluster API cannot express is refused (:func:`refusals`) with the
field's path instead of being dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...config import CapiConfig

CAPI = "cluster.x-k8s.io/v1beta2"
CLUSTERS = "clusters"
OWNER_LABEL = "kaas.scs.community/owner-uid"
"""The Central API Cluster's UID: the provider finds its CAPI Cluster by this label only."""
NAMESPACE_LABEL = "kaas.scs.community/namespace"
DESIRED_ANNOTATION = "kaas.scs.community/desired"
"""The Central API spec the CAPI Cluster was last written from, and the class and patch
version that spec resolved to (JSON): what the controller compares the spec with, and what
drift repair re-renders, so a newer class in the offer never rebases a cluster by itself."""
MIN_SIZE = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
MAX_SIZE = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"
SYNCED_LABEL_DOMAINS = ("node-role.kubernetes.io", "node-restriction.kubernetes.io",
                        "node.cluster.x-k8s.io")
"""Machine labels that Cluster API copies to the Node by itself (metadata-propagation.md);
anything else needs the manager's ``--additional-sync-machine-labels``."""


@dataclass(frozen=True)
class Target:
    """Where and as what the spec is written: the CAPI Cluster's name and management
    namespace, the owner, and the resolved class (in the shared class namespace) and patch
    version (``1.34.7``)."""

    name: str
    namespace: str
    owner_uid: str
    class_name: str
    class_namespace: str
    version: str
    source_namespace: str = ""
    """The Central API namespace, as a label for operators reading the backend."""


def refusals(spec: Mapping[str, Any], settings: CapiConfig) -> list[str]:
    """What of ``spec`` Cluster API with the cluster stacks cannot build, each as
    ``field path: why`` (empty: everything maps)."""
    out = []
    if (spec.get("controlPlane") or {}).get("hosted"):
        out.append("spec.controlPlane.hosted: the cluster stacks offer no hosted control "
                   "planes")
    for i, pool in enumerate(spec.get("nodePools") or []):
        out += _pool_refusals(f"spec.nodePools[{i}]", pool, settings)
    return out


def _pool_refusals(at: str, pool: Mapping[str, Any], settings: CapiConfig) -> list[str]:
    out = []
    if len(pool.get("zones") or []) > 1:
        out.append(f"{at}.zones: a MachineDeployment has one failure domain; give one zone "
                   "(or one pool per zone)")
    if (pool.get("architecture") or "amd64") == "arm64" and not settings.arm64_image_name:
        out.append(f"{at}.architecture: the operator configured no arm64 node image "
                   "(capi.arm64ImageName)")
    if pool.get("taints") and not settings.machine_taints:
        out.append(f"{at}.taints: the management cluster's Cluster API does not propagate "
                   "machine taints (feature gate MachineTaintPropagation)")
    for key in pool.get("labels") or {}:
        if not label_synced(key, settings.synced_label_patterns):
            out.append(f"{at}.labels: {key!r} would not reach the nodes: Cluster API copies "
                       f"only labels in {', '.join(SYNCED_LABEL_DOMAINS)} (and what the "
                       "operator adds with capi.additionalSyncMachineLabels)")
    return out


def label_synced(key: str, patterns: list[str]) -> bool:
    """Whether Cluster API copies a Machine label ``key`` to its Node."""
    prefix = key.split("/", 1)[0] if "/" in key else ""
    domain_ok = any(prefix == d or prefix.endswith("." + d) for d in SYNCED_LABEL_DOMAINS)
    return domain_ok or any(re.fullmatch(p, key) for p in patterns)


def render(spec: Mapping[str, Any], target: Target, settings: CapiConfig) -> dict[str, Any]:
    """The CAPI Cluster the provider applies (only the fields it owns)."""
    networking = spec.get("networking") or {}
    labels = {**settings.cluster_labels, OWNER_LABEL: target.owner_uid}
    if target.source_namespace:
        labels[NAMESPACE_LABEL] = target.source_namespace
    topology: dict[str, Any] = {
        "classRef": {"name": target.class_name, "namespace": target.class_namespace},
        "version": f"v{target.version}",
        "controlPlane": {"replicas": int((spec.get("controlPlane") or {}).get("replicas")
                                         or 1)},
        "workers": {"machineDeployments": [machine_deployment(p, settings)
                                           for p in spec.get("nodePools") or []]},
    }
    variables = cluster_variables(spec, settings)
    if variables:
        topology["variables"] = variables
    return {
        "apiVersion": CAPI, "kind": "Cluster",
        "metadata": {"name": target.name, "namespace": target.namespace, "labels": labels},
        "spec": {"clusterNetwork": {
            "pods": {"cidrBlocks": [networking.get("pods") or "172.16.0.0/16"]},
            "services": {"cidrBlocks": [networking.get("services") or "10.96.0.0/12"]}},
            "topology": topology},
    }


def cluster_variables(spec: Mapping[str, Any], settings: CapiConfig) -> list[dict[str, Any]]:
    """Cluster-wide scs2 variables: the operator's, the tenant's credentials Secret and the
    spec's OIDC issuer (``oidcConfig``: flags-style, one issuer)."""
    values: dict[str, Any] = dict(settings.variables)
    if settings.identity_secret:
        values["identityRef"] = {"name": settings.identity_secret,
                                 "cloudName": settings.cloud_name}
    oidc = spec.get("oidc")
    if oidc:
        values["oidcConfig"] = {key: oidc[key] for key in (
            "issuerURL", "clientID", "usernameClaim", "groupsClaim", "usernamePrefix",
            "groupsPrefix") if oidc.get(key) is not None}
    return [{"name": name, "value": value} for name, value in sorted(values.items())]


def pool_variables(pool: Mapping[str, Any], settings: CapiConfig) -> list[dict[str, Any]]:
    """A pool's overrides: its flavor, root disk and (arm64) image."""
    out: list[dict[str, Any]] = [{"name": "workerFlavor", "value": pool["flavor"]}]
    if pool.get("rootDiskGiB") is not None:
        out.append({"name": "workerRootDisk", "value": int(pool["rootDiskGiB"])})
    if (pool.get("architecture") or "amd64") == "arm64" and settings.arm64_image_name:
        out.append({"name": "imageName", "value": settings.arm64_image_name})
    return out


def machine_deployment(pool: Mapping[str, Any], settings: CapiConfig) -> dict[str, Any]:
    """One node pool as a topology MachineDeployment: fixed replicas, or none and the
    cluster-autoscaler's min/max annotations."""
    md: dict[str, Any] = {"class": settings.worker_class, "name": pool["name"]}
    metadata: dict[str, Any] = {}
    if pool.get("labels"):
        metadata["labels"] = dict(pool["labels"])
    autoscaling = pool.get("autoscaling")
    if autoscaling:
        metadata["annotations"] = {MIN_SIZE: str(autoscaling["min"]),
                                   MAX_SIZE: str(autoscaling["max"])}
    else:
        md["replicas"] = int(pool.get("replicas") or 0)
    if metadata:
        md["metadata"] = metadata
    if pool.get("zones"):
        md["failureDomain"] = pool["zones"][0]
    if pool.get("taints"):
        md["taints"] = [{"key": t["key"], "value": t.get("value") or "",
                         "effect": t["effect"], "propagation": "Always"}
                        for t in pool["taints"]]
    md["variables"] = {"overrides": pool_variables(pool, settings)}
    return md


def contains(actual: Any, wanted: Any) -> bool:
    """Whether ``actual`` holds every field of ``wanted`` with its value (fields others own,
    and defaults the API server added, do not count as drift).

    A list of named entries (the CRD's ``x-kubernetes-list-type: map`` keyed by ``name``:
    ``topology.variables``, ``machineDeployments``, ``variables.overrides``) is compared
    entry by entry: extra entries are not drift. CAPI's Cluster webhook adds every class
    variable that has a default to ``topology.variables``, and an entry someone else added
    is theirs, which an apply would not remove anyway."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in wanted.items())
    if isinstance(wanted, list) and _named(wanted):
        if not isinstance(actual, list) or not _named(actual):
            return False
        by_name = {item["name"]: item for item in actual}
        return all(item["name"] in by_name and contains(by_name[item["name"]], item)
                   for item in wanted)
    if isinstance(wanted, list):
        return isinstance(actual, list) and len(actual) == len(wanted) and all(
            contains(a, w) for a, w in zip(actual, wanted, strict=True))
    return bool(actual == wanted)


def _named(items: list[Any]) -> bool:
    """A non-empty list whose entries are objects with a ``name``."""
    return bool(items) and all(isinstance(i, dict) and isinstance(i.get("name"), str)
                               for i in items)
