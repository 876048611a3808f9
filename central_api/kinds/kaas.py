"""``kaas.scs.community/v1alpha1``: Kubernetes clusters, and what the backend offers for them.

One ``Cluster`` kind hides whether Cluster API with the SCS cluster stacks or Gardener builds
the cluster. Field names follow those two (``../shared/reference/kaas/``): ``nodePools`` map
onto CAPI MachineDeployments / Gardener workers, ``autoscaling.min/max`` onto the autoscaler
annotations / ``minimum``/``maximum``, ``networking.pods/services`` are Gardener's
``spec.networking`` (CAPI ``clusterNetwork``), ``oidc`` is the scs2 ClusterClass variable
``oidcConfig``, ``maintenance`` is Gardener's ``spec.maintenance``, and ``clusterClass`` names a
cluster stack's ClusterClass (``openstack-scs2-1-34-v2``).

``ClusterProfile`` is the backend's offer, written by the KaaS controller and readable by
everyone: Kubernetes versions with Gardener's CloudProfile classification and expiration
date, and the cluster classes (ClusterStackReleases) with the version each one installs.
Admission checks a Cluster's version against it (:class:`OfferedVersions`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from ..machinery.errors import Cause, invalid
from .common import READY_COLUMN_PATH, Model, Reconciled, Resource, Spec, Status
from .kaas_access import declare_access
from .kind import Column, ResourceType, SpecRules, declare
from .timewindow import PATTERN as WINDOW_PATTERN
from .timewindow import window_problem

if TYPE_CHECKING:
    from .catalog import Catalog

API_VERSION = "kaas.scs.community/v1alpha1"
GROUP = "kaas.scs.community"
PROFILE_NAME = "default"
"""The one ClusterProfile: the configured backend's offer."""
VERSION_PATTERN = r"^[1-9][0-9]*\.[0-9]+(\.[0-9]+)?$"
DEFAULTED: dict[str, Any] = {"default": {}}
"""An object whose fields have defaults is stored with them even when left out (structural
defaulting applies a default's own defaults), so the stored cluster shows what it got."""
IMMUTABLE: dict[str, Any] = {**DEFAULTED, "x-kubernetes-validations": [
    {"rule": "self == oldSelf",
     "message": "field is immutable: the cluster's network cannot be renumbered"}]}


# -- Cluster -----------------------------------------------------------------------------------
class ControlPlane(Model):
    replicas: Literal[1, 3] = Field(1, description=(
        "1, or 3 for a highly available control plane (CAPI controlPlane.replicas). Unless "
        "hosted, each counts against the tenant's cores and RAM quota as the cluster "
        "stack's control-plane flavor SCS-2V-4."))
    hosted: bool = Field(False, description="Run the control plane as pods in the provider's "
                                            "cluster (Kamaji-style), where the backend offers "
                                            "it (ClusterProfile spec.hostedControlPlanes).")


class Autoscaling(Model):
    min: int = Field(ge=0, le=1000, description="Fewest nodes (CAPI autoscaler annotation "
                                                "node-group-min-size, Gardener minimum).")
    max: int = Field(ge=1, le=1000, description="Most nodes (node-group-max-size, Gardener "
                                                "maximum).")


class Taint(Model):
    """A Kubernetes node taint (corev1 Taint), set on every node of the pool."""

    key: str = Field(min_length=1, max_length=316)
    value: str = Field("", max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodePool(Model):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                      description="Unique in the cluster (CAPI machineDeployments[].name).")
    flavor: str = Field(min_length=1, max_length=255, description=(
        "SCS flavor of the nodes, e.g. SCS-4V-8; GPU flavors too. Its vCPUs and RAM (from "
        "the name, scs-0100) times replicas, or autoscaling.max, count against the "
        "tenant's cores and RAM quota; with such a quota the name must be an SCS one."))
    architecture: Literal["amd64", "arm64"] = "amd64"
    replicas: int | None = Field(None, ge=0, le=1000,
                                 description="Fixed number of nodes; or give autoscaling.")
    autoscaling: Autoscaling | None = Field(None, description="Let the autoscaler choose "
                                                              "between min and max nodes.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of the nodes.")
    taints: list[Taint] = Field(default_factory=list, max_length=50)
    zones: list[str] = Field(default_factory=list, max_length=10,
                             description="Availability zones (CAPI failureDomain).")
    rootDiskGiB: int | None = Field(None, ge=0, le=65536, description=(
        "Root volume size; 0 uses the flavor's disk; unset: the backend's default "
        "(scs2 workerRootDisk)."))


class Networking(Model):
    pods: str = Field("172.16.0.0/16", max_length=43, description="Pod CIDR.")
    services: str = Field("10.96.0.0/12", max_length=43, description="Service CIDR.")


class Oidc(Model):
    """The cluster's kube-apiserver trusts this issuer (scs2 variable ``oidcConfig``).

    Left out on creation, it is set from the tenant's identity provider
    (``Tenant.spec.federation``): its issuer, client and claim mappings, with user and group
    names prefixed ``<tenant>:`` as the Central API names them, so the same login and the
    same RBAC subjects work in the cluster."""

    issuerURL: str = Field(pattern=r"^https://", max_length=2048)
    clientID: str = Field(min_length=1, max_length=255)
    usernameClaim: str = "preferred_username"
    groupsClaim: str = "groups"
    usernamePrefix: str = "oidc:"
    groupsPrefix: str = "oidc:"


class TimeWindow(Model):
    """Gardener's ``maintenance.timeWindow``: ``HHMMSS+ZZZZ``, e.g. ``220000+0100``."""

    begin: str = Field(pattern=WINDOW_PATTERN)
    end: str = Field(pattern=WINDOW_PATTERN, description="30 minutes to 6 hours after begin; "
                                                         "may wrap midnight.")


class AutoUpdate(Model):
    kubernetesVersion: bool = Field(True, description=(
        "Move the cluster to the newest offered patch of its minor version in the window "
        "(also when the spec names only a minor). False keeps the spec's patch, unless it "
        "expires: an expired version is moved off in the next window regardless."))


class Maintenance(Model):
    timeWindow: TimeWindow | None = Field(None, description=(
        "When the Central API applies automatic patch updates, for every backend. Unset: "
        "one hour in 22:00-06:00 UTC placed by the cluster's creation time of day "
        "(22:00 + creation time mod 8 h; shown in status.maintenance.window)."))
    autoUpdate: AutoUpdate = Field(default_factory=AutoUpdate)


class ClusterSpec(Spec):
    kubernetesVersion: str = Field(pattern=VERSION_PATTERN, max_length=32, description=(
        "A minor (1.34: its newest patch) or patch version (1.34.7) the ClusterProfile "
        "offers. Upgrades go one minor at a time; downgrades are refused."))
    controlPlane: ControlPlane = Field(default_factory=ControlPlane,
                                       json_schema_extra=DEFAULTED)
    nodePools: list[NodePool] = Field(default_factory=list, max_length=50)
    networking: Networking = Field(default_factory=Networking, json_schema_extra=IMMUTABLE,
                                   description="Pod and service CIDRs (immutable).")
    oidc: Oidc | None = Field(None, description=(
        "OIDC issuer the cluster trusts for logins. Unset on creation: the tenant's identity "
        "provider (Tenant spec.federation) with names prefixed '<tenant>:' as in the Central "
        "API; stays unset when the tenant has none."))
    maintenance: Maintenance = Field(default_factory=Maintenance, json_schema_extra=DEFAULTED)
    clusterClass: str = Field("", max_length=253, description=(
        "Override of the cluster class (cluster stack version), e.g. "
        "openstack-scs2-1-34-v2; it must install the spec's minor version. Default: the "
        "newest class for that version."))

    def causes(self) -> list[Cause]:
        return [*self._pool_causes(), *self._network_causes(), *self._window_causes()]

    def _window_causes(self) -> list[Cause]:
        window = self.maintenance.timeWindow
        problem = window_problem(window.begin, window.end) if window else ""
        return [Cause("spec.maintenance.timeWindow", f"Invalid value: {problem}")] \
            if problem else []

    def _pool_causes(self) -> list[Cause]:
        causes, seen = [], set()
        for i, pool in enumerate(self.nodePools):
            at = f"spec.nodePools[{i}]"
            if pool.name in seen:
                causes.append(Cause(f"{at}.name", f'Duplicate value: "{pool.name}"',
                                    "FieldValueDuplicate"))
            seen.add(pool.name)
            if (pool.replicas is None) == (pool.autoscaling is None):
                causes.append(Cause(f"{at}.replicas",
                                    "Invalid value: give exactly one of replicas or autoscaling"))
            if pool.autoscaling and pool.autoscaling.min > pool.autoscaling.max:
                causes.append(Cause(f"{at}.autoscaling.max",
                                    "Invalid value: must not be below autoscaling.min"))
        return causes

    def _network_causes(self) -> list[Cause]:
        nets = {}
        for name in ("pods", "services"):
            value = getattr(self.networking, name)
            try:
                nets[name] = ipaddress.ip_network(value, strict=False)
            except ValueError:
                return [Cause(f"spec.networking.{name}",
                              f'Invalid value: "{value}": must be a CIDR, e.g. 10.96.0.0/12')]
        if nets["pods"].overlaps(nets["services"]):
            return [Cause("spec.networking.services",
                          "Invalid value: must not overlap the pod CIDR")]
        return []


class MaintenanceStatus(Model):
    window: str = Field("", description='The window in effect, e.g. "22:00–23:00 +0100".')
    pendingVersion: str = Field("", description="A newer patch waiting for the window.")
    message: str = Field("", description='What maintenance will do or did, e.g. "patch '
                                         '1.34.8 scheduled for the window 22:00–23:00 +0100".')


class NodePoolStatus(Model):
    name: str
    desiredReplicas: int = 0
    readyReplicas: int = 0


class ClusterStatus(Status):
    kubernetesVersion: str = Field("", description="The version the control plane runs.")
    clusterClass: str = Field("", description="The cluster class in use.")
    apiEndpoint: str = Field("", description="URL of the cluster's API server.")
    phase: str = Field("", description="What the backend is doing, e.g. Upgrading.")
    nodePools: list[NodePoolStatus] = Field(default_factory=list)
    backendName: str = Field("", description="The backend's object for this cluster.")
    provider: str = Field("", description='Provider that builds the cluster; "sandbox '
                                          '(simulated)" means nothing is real.')
    maintenance: MaintenanceStatus | None = Field(None, description=(
        "Automatic patch updates: the window and what waits for it."))


class Cluster(Reconciled):
    """A Kubernetes cluster of the tenant, built by the operator's KaaS backend."""

    spec: ClusterSpec
    status: ClusterStatus = Field(default_factory=ClusterStatus)


# -- versions ----------------------------------------------------------------------------------
Version = tuple[int, int, int | None]


def parse_version(text: str) -> Version:
    """``1.34`` → (1, 34, None); ``1.34.7`` → (1, 34, 7)."""
    parts = [int(p) for p in text.split(".")]
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None


def transition_causes(new: str, old: str) -> list[Cause]:
    """A version change must go up, and by one minor at most (control planes cannot skip)."""
    (n_major, n_minor, n_patch), (o_major, o_minor, o_patch) = \
        parse_version(new), parse_version(old)
    field = "spec.kubernetesVersion"
    if (n_major, n_minor) < (o_major, o_minor) or (
            (n_major, n_minor) == (o_major, o_minor) and None not in (n_patch, o_patch)
            and (n_patch or 0) < (o_patch or 0)):
        return [Cause(field, f'Invalid value: "{new}": downgrading from {old} is not '
                             "supported")]
    if n_major != o_major or n_minor > o_minor + 1:
        return [Cause(field, f'Invalid value: "{new}": upgrade one minor version at a time '
                             f"(from {old} next is {o_major}.{o_minor + 1})")]
    return []


class ClusterRules(SpecRules):
    """The spec's rules, and the ones that compare an update with the stored cluster."""

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None,
                 catalog: Catalog) -> list[Cause]:
        causes = super().validate(obj, old, catalog)
        new_version = (obj.get("spec") or {}).get("kubernetesVersion")
        old_version = ((old or {}).get("spec") or {}).get("kubernetesVersion")
        if causes or not old_version or not isinstance(new_version, str) \
                or new_version == old_version:
            return causes
        return transition_causes(new_version, old_version)


# -- ClusterProfile ----------------------------------------------------------------------------
Classification = Literal["preview", "supported", "deprecated", "expired"]


class OfferedVersion(Model):
    version: str = Field(description="A patch version, e.g. 1.34.7.")
    classification: Classification = "supported"
    expirationDate: str | None = Field(None, json_schema_extra={"format": "date-time"},
                                       description="When clusters are moved off it.")


class OfferedClass(Model):
    name: str = Field(description="ClusterClass / ClusterStackRelease name.")
    kubernetesVersion: str = Field(description="The patch version the class installs.")
    classification: Classification = "supported"
    expirationDate: str | None = Field(None, json_schema_extra={"format": "date-time"})


class KubernetesOffer(Model):
    versions: list[OfferedVersion] = Field(default_factory=list)


class ClusterProfileSpec(Model):
    provider: str = Field("", description='The backend, e.g. "sandbox (simulated)".')
    kubernetes: KubernetesOffer = Field(default_factory=KubernetesOffer)
    clusterClasses: list[OfferedClass] = Field(default_factory=list)
    hostedControlPlanes: bool = Field(False, description="Whether controlPlane.hosted works.")


class ClusterProfile(Resource):
    """What the operator's KaaS backend offers; kept current by the KaaS controller."""

    spec: ClusterProfileSpec = Field(default_factory=ClusterProfileSpec)

    def offered(self, version: str) -> OfferedVersion | None:
        """The newest usable patch ``version`` names (a minor: its newest patch)."""
        wanted = parse_version(version)
        found = [v for v in self.spec.kubernetes.versions if v.classification != "expired"
                 and (parse_version(v.version) == wanted
                      or (wanted[2] is None and parse_version(v.version)[:2] == wanted[:2]))]
        return max(found, key=lambda v: parse_version(v.version)[2] or 0, default=None)

    def causes(self, spec: ClusterSpec, old: ClusterSpec | None) -> list[Cause]:
        """Whether the backend offers what changed in ``spec`` (unchanged fields stay valid
        when the offer moves on: a cluster is never stuck on its own expired version)."""
        causes = []
        if old is None or spec.kubernetesVersion != old.kubernetesVersion:
            if self.offered(spec.kubernetesVersion) is None:
                offer = ", ".join(v.version for v in self.spec.kubernetes.versions
                                  if v.classification != "expired")
                causes.append(Cause("spec.kubernetesVersion", f'Unsupported value: '
                                    f'"{spec.kubernetesVersion}": offered: {offer}',
                                    "FieldValueNotSupported"))
        if spec.clusterClass and (old is None or spec.clusterClass != old.clusterClass
                                  or spec.kubernetesVersion != old.kubernetesVersion):
            causes += self._class_causes(spec)
        if spec.controlPlane.hosted and not self.spec.hostedControlPlanes \
                and (old is None or not old.controlPlane.hosted):
            causes.append(Cause("spec.controlPlane.hosted", "Unsupported value: true: the "
                                "backend offers no hosted control planes",
                                "FieldValueNotSupported"))
        return causes

    def _class_causes(self, spec: ClusterSpec) -> list[Cause]:
        known = next((c for c in self.spec.clusterClasses if c.name == spec.clusterClass), None)
        if known is None or known.classification == "expired":
            return [Cause("spec.clusterClass", f'Unsupported value: "{spec.clusterClass}": '
                          "offered: " + ", ".join(c.name for c in self.spec.clusterClasses),
                          "FieldValueNotSupported")]
        wanted = parse_version(spec.kubernetesVersion)
        installs = parse_version(known.kubernetesVersion)
        if installs[:2] != wanted[:2] or (wanted[2] is not None and installs != wanted):
            return [Cause("spec.clusterClass", f'Invalid value: "{spec.clusterClass}" installs '
                          f"{known.kubernetesVersion}, not {spec.kubernetesVersion}")]
        return []


class OfferedVersions:
    """Admission: a Cluster's new version and class must be offered by the ClusterProfile.

    ``profile`` reads the stored ClusterProfile (None while the controller has not written
    it yet: then the backend itself refuses what it cannot build, as a condition, rather
    than admission refusing every cluster because a controller has not started)."""

    def __init__(self, profile: Callable[[], dict[str, Any] | None]) -> None:
        self.profile = profile

    def __call__(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                 opts: Any) -> None:
        if rt.group != GROUP or rt.kind != "Cluster":
            return
        stored = self.profile()
        if stored is None:
            return
        spec = ClusterSpec.model_validate(obj["spec"])
        before = ClusterSpec.model_validate(old["spec"]) if old else None
        causes = ClusterProfile.model_validate(stored).causes(spec, before)
        if causes:
            raise invalid(rt.kind, obj["metadata"].get("name", ""), causes, rt.group)


# -- declarations ------------------------------------------------------------------------------
def _nodes(obj: dict[str, Any]) -> str:
    pools = (obj.get("status") or {}).get("nodePools") or []
    ready = sum(int(p.get("readyReplicas") or 0) for p in pools)
    return f"{ready}/{sum(int(p.get('desiredReplicas') or 0) for p in pools)}"


CLUSTER: ResourceType = declare(
    API_VERSION, "Cluster", Cluster, short_names=["kc"], categories=["scs", "kaas"],
    dns_label_names=True, strategy=ClusterRules(Cluster), columns=[
        Column("Version", ".status.kubernetesVersion"),
        Column("Ready", READY_COLUMN_PATH),
        Column("Phase", ".status.phase"),
        Column("Pools", ".spec.nodePools", "integer",
               compute=lambda o: len((o.get("spec") or {}).get("nodePools") or [])),
        Column("Nodes", ".status.nodePools", description="Ready/desired nodes",
               compute=_nodes),
        Column("Endpoint", ".status.apiEndpoint", priority=1),
        Column("Class", ".status.clusterClass", priority=1),
        Column("Provider", ".status.provider", priority=1),
        Column("Update", ".status.maintenance.pendingVersion", priority=1,
               description="A patch waiting for the maintenance window"),
    ])
declare_access(CLUSTER)
CLUSTER_PROFILE: ResourceType = declare(
    API_VERSION, "ClusterProfile", ClusterProfile, namespaced=False, status_subresource=False,
    categories=["scs", "kaas"], columns=[
        Column("Provider", ".spec.provider"),
        Column("Versions", ".spec.kubernetes.versions[*].version"),
        Column("Classes", ".spec.clusterClasses[*].name", priority=1),
    ])

KAAS_KINDS = [CLUSTER, CLUSTER_PROFILE]
