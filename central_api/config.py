"""The operator's configuration file (``scs serve --config FILE``).

```yaml
services: [tenancy, iaas]        # API services to offer; disabled kinds are not served at all
controllers: in-process          # or "external" when `scs controllers` runs them elsewhere
workers: 1                       # API worker processes on this machine, or auto (one per CPU)
resyncSeconds: 30                # reconcile everything this often: repairs backend drift
providers:
  iaas:
    type: sandbox                # the default: a simulated cloud in the server's own store
    speed: 1.0                   # sandbox only: delays are divided by it; 0 = instant
  # iaas: {type: openstack, cloudsYaml: /etc/scs/clouds.yaml, cloud: scs}
  kaas:
    type: sandbox                # the default: simulated clusters; or capi, gardener
    speed: 1.0                   #   (docs/kaas-capi.md, docs/kaas-gardener.md)
    kubeconfigs: {defaultSeconds: 3600, maxSeconds: 86400}   # clusters/adminkubeconfig
identity:                        # tenant onboarding and IAM; the default, type: sandbox, is
  type: keystone                 # a simulated Keystone in the server's own store
  authURL: https://keystone.example:5000/v3
  username: scs-central-api      # needs the admin role (creates domains and limits)
  passwordFile: /etc/scs/keystone-password
  systemScope: true              # a system-scoped admin token (needed for unified limits)
  region: RegionOne
federation:                      # customer IdPs (Tenant.spec.federation, IdentityProviders)
  enabled: true                  # trust them for Central API login, users as <tenant>:<name>
  allowPrivateIssuers: false     # true only in labs: lets tenants name non-public IdP hosts
  caFile: ""                     # CA bundle for tenant IdPs (default: the system's CAs)
status:                          # the status page (docs/status.md)
  pathPrefix: /status            # the SCS status-page API (spec 1.1.2) is served here
  anonymousRead: true            # a public page: GETs need no token; writes need status-editor
  corsOrigins: []                # status-page front ends calling from a browser
  probes: {intervalSeconds: 30, timeoutSeconds: 5, failureThreshold: 3, recoveryThreshold: 2}
  alertmanager: {enabled: true, componentLabel: component}   # POST /webhooks/alertmanager
limits:                          # what one caller or tenant may cost the server
  maxObjectBytes: 1572864        # one stored object, encoded (etcd's 1.5 MiB)
  watchesPerUser: 100            # open watches per identity (429 beyond)
  headerTimeoutSeconds: 30       # a request's headers must arrive within this
  maxConnections: 0              # open connections (0: from the open-file limit)
  tenantAPIObjects: 20000        # objects in a tenant's namespaces (Tenant quotas.apiObjects)
  tenantAPIBytes: 268435456      # their encoded size (Tenant quotas.apiBytes)
console:                         # the web console at / (console/README.md)
  enabled: true
  clients: {}                    # issuer URL -> the console's OIDC client id (default: the
                                 #   issuer's audience from --oidc-config)
  scopes: openid email groups     # what the console asks the issuers for
  tokenLogin: true               # offer pasting a bearer token (the bootstrap admin's)
  distDir: ""                    # the built console (default: console/dist of the repo)
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .kinds.kind import ResourceType

SERVICE_GROUPS = {
    "tenancy": "tenancy.scs.community",
    "iaas": "iaas.scs.community",
    "iam": "iam.scs.community",
    "kaas": "kaas.scs.community",
    "status": "status.scs.community",
    "metering": "metering.scs.community",
}


class ManagementClusterConfig(BaseModel):
    """A Kubernetes API the KaaS provider drives (a Cluster API management cluster, a
    Garden), reached with a kubeconfig file of a service account with least privilege."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kubeconfig: str = Field("", description="Path of the kubeconfig file.")
    context: str = Field("", description="Its context to use (default: the current one).")


class CapiConfig(ManagementClusterConfig):
    """``providers.kaas.type: capi``: Cluster API with the SCS cluster stacks."""

    namespace_prefix: str = Field("scs-", alias="namespacePrefix", description=(
        "One management namespace per tenant: this prefix + the tenant's name."))
    class_namespace: str = Field("cluster-stacks", alias="classNamespace", description=(
        "Where the operator's ClusterStacks install the ClusterClasses and "
        "ClusterStackReleases; clusters refer to them across namespaces (classRef.namespace)."))
    stack: str = Field("openstack-scs2", description=(
        "The cluster stack offered: classes named <stack>-<major>-<minor>-<version>."))
    worker_class: str = Field("default-worker", alias="workerClass",
                              description="The ClusterClass's worker class of every pool.")
    identity_secret: str = Field("openstack", alias="identitySecret", description=(
        "The clouds.yaml Secret expected in each tenant's management namespace (the scs2 "
        "identityRef variable); empty: leave identityRef to the class's default."))
    cloud_name: str = Field("openstack", alias="cloudName",
                            description="The cloud of that clouds.yaml (identityRef.cloudName).")
    variables: dict[str, Any] = Field(default_factory=dict, description=(
        "ClusterClass variables set on every cluster, e.g. networkExternalID."))
    cluster_labels: dict[str, str] = Field(default_factory=dict, alias="clusterLabels",
                                           description="Labels of every CAPI Cluster, e.g. "
                                                       "managed-secret: clouds-yaml.")
    synced_label_patterns: list[str] = Field(
        default_factory=list, alias="additionalSyncMachineLabels", description=(
            "The CAPI manager's --additional-sync-machine-labels regexes: node-pool labels "
            "they match reach the Nodes (besides CAPI's own domains); others are refused."))
    machine_taints: bool = Field(True, alias="machineTaints", description=(
        "The management cluster's CAPI runs with the MachineTaintPropagation feature gate, "
        "so node-pool taints are mapped; false: they are refused."))
    arm64_image_name: str = Field("", alias="arm64ImageName", description=(
        "The imageName variable of arm64 pools; empty: arm64 pools are refused."))
    admin_group: str = Field("kubeadm:cluster-admins", alias="adminGroup", description=(
        "Organization of short-lived admin certificates: kubeadm (1.29+) binds this group to "
        "cluster-admin, so unlike system:masters it can be unbound (revoked)."))


class GardenerConfig(ManagementClusterConfig):
    """``providers.kaas.type: gardener``: Shoots in the tenant's Gardener project."""

    project_prefix: str = Field("garden-", alias="projectPrefix", description=(
        "The tenant's project namespace: this prefix + the tenant's name."))
    cloud_profile: str = Field("", alias="cloudProfile", description=(
        "The CloudProfile Shoots use (spec.cloudProfile.name); its Kubernetes versions are "
        "the ClusterProfile's offer."))
    region: str = Field("", description="A region of the CloudProfile (spec.region).")
    credentials_binding_name: str = Field("", alias="credentialsBindingName", description=(
        "The CredentialsBinding in every tenant's project that holds the OpenStack "
        "credentials (spec.credentialsBindingName)."))
    networking_type: str = Field("calico", alias="networkingType", description=(
        "spec.networking.type: calico or cilium, as the landscape offers (immutable)."))
    nodes_cidr: str = Field("10.250.0.0/16", alias="nodesCIDR", description=(
        "spec.networking.nodes, also the OpenStack workers network."))
    floating_pool_name: str = Field("", alias="floatingPoolName", description=(
        "OpenStack InfrastructureConfig floatingPoolName (the external network)."))
    load_balancer_provider: str = Field("", alias="loadBalancerProvider", description=(
        "OpenStack ControlPlaneConfig loadBalancerProvider (amphora, ovn...); empty: the "
        "CloudProfile's default."))
    machine_image: str = Field("", alias="machineImage", description=(
        "Worker machine image name (e.g. gardenlinux); empty: the CloudProfile's default."))
    machine_image_version: str = Field("", alias="machineImageVersion")
    purpose: Literal["evaluation", "testing", "development", "production",
                     "infrastructure"] = Field("production", description="spec.purpose.")


class KubeconfigConfig(BaseModel):
    """Short-lived admin credentials for clusters (``clusters/adminkubeconfig``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    default_seconds: int = Field(3600, ge=600, alias="defaultSeconds")
    max_seconds: int = Field(86400, ge=600, alias="maxSeconds",
                             description="The longest expirationSeconds a user may ask for.")

    def model_post_init(self, __context: Any) -> None:
        if self.default_seconds > self.max_seconds:
            raise ValueError(f"kubeconfigs.defaultSeconds ({self.default_seconds}) is above "
                             f"kubeconfigs.maxSeconds ({self.max_seconds})")


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["sandbox", "openstack", "capi", "gardener", "none"] = "sandbox"
    speed: float = Field(1.0, ge=0, description="Sandbox: simulated delays are divided by "
                                                "this (2 = twice as fast, 0 = instant).")
    store: str = Field("", description="Sandbox in `scs controllers`: its own store URL.")
    clouds_yaml: str = Field("", alias="cloudsYaml")
    cloud: str = ""
    external_network: str = Field("", alias="externalNetwork")
    allow_private_image_sources: bool = Field(
        False, alias="allowPrivateImageSources",
        description="OpenStack: let Images import from loopback/private/link-local addresses "
                    "(labs only: the cloud fetches them from inside the provider's network).")
    capi: CapiConfig = Field(default_factory=CapiConfig)
    gardener: GardenerConfig = Field(default_factory=GardenerConfig)
    kubeconfigs: KubeconfigConfig = Field(default_factory=KubeconfigConfig)


class IdentityConfig(BaseModel):
    """The identity backend the onboarding and IAM controllers drive: Keystone, or the
    sandbox (the default: a simulated Keystone in the server's own store, like the sandbox
    cloud for IaaS).

    The account needs the cloud ``admin`` role: creating domains, unified limits and
    federation is beyond a domain manager. A password file keeps the secret out of the
    config file that is often world-readable.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["sandbox", "keystone", "none"] = "sandbox"
    store: str = Field("", description="Sandbox in `scs controllers`: its own store URL.")
    auth_url: str = Field("", alias="authURL")
    username: str = "admin"
    password: str = ""
    password_file: str = Field("", alias="passwordFile")
    user_domain: str = Field("Default", alias="userDomain")
    project: str = "admin"
    project_domain: str = Field("Default", alias="projectDomain")
    system_scope: bool = Field(False, alias="systemScope",
                               description="Use a system-scoped token (system: all) instead "
                                           "of the project; Keystone lists other projects' "
                                           "unified limits only for system scope.")
    region: str = "RegionOne"
    resync_seconds: float = Field(
        600.0, gt=0, alias="resyncSeconds",
        description="How often every Tenant and IAM object is checked against Keystone again "
                    "(repairs changes made behind the API's back). A check costs about a "
                    "dozen Keystone requests per tenant, so this is longer than the IaaS "
                    "resync: 1,000 tenants every 30 s would be 400 requests/s.")

    def model_post_init(self, __context: Any) -> None:
        if self.type == "keystone" and not self.auth_url:
            raise ValueError("identity.authURL is required for type keystone")

    def auth(self) -> dict[str, str]:
        """A keystoneauth ``password`` auth block (what clouds.yaml calls ``auth``)."""
        password = self.password or (Path(self.password_file).read_text().strip()
                                     if self.password_file else "")
        auth = {"auth_url": self.auth_url, "username": self.username, "password": password,
                "user_domain_name": self.user_domain}
        if self.system_scope:
            return {**auth, "system_scope": "all"}
        return {**auth, "project_name": self.project,
                "project_domain_name": self.project_domain}


class FederationConfig(BaseModel):
    """Tenant identity providers trusted for Central API login (see auth/federation.py)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool = True
    allow_private_issuers: bool = Field(
        False, alias="allowPrivateIssuers",
        description="Let tenant IdPs resolve to loopback/private addresses (labs, tests).")
    ca_file: str = Field("", alias="caFile")


class LimitsConfig(BaseModel):
    """Bounds on what one caller or one tenant may cost the server (docs/operator-auth.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    max_object_bytes: int = Field(
        1536 * 1024, ge=4096, le=3 * 1024 * 1024, alias="maxObjectBytes",
        description="Largest stored object (its JSON encoding), like etcd's 1.5 MiB; at most "
                    "the 3 MiB request body limit.")
    watches_per_user: int = Field(100, ge=1, alias="watchesPerUser",
                                  description="Open watches per identity (system:masters "
                                              "excepted); more are refused with 429.")
    header_timeout_seconds: float = Field(
        30.0, gt=0, le=600, alias="headerTimeoutSeconds",
        description="A connection whose request headers have not fully arrived this long "
                    "after it opened (or after its previous response) is closed.")
    max_connections: int = Field(
        0, ge=0, alias="maxConnections",
        description="Open client connections; further ones are closed at once. 0: derived "
                    "from the process's open-file limit, leaving room for the store.")
    tenant_api_objects: int = Field(
        20000, ge=0, alias="tenantAPIObjects",
        description="Default quota of API objects in a tenant's namespaces (a Tenant's "
                    "spec.quotas.apiObjects overrides it).")
    tenant_api_bytes: int = Field(
        256 * 1024 * 1024, ge=0, alias="tenantAPIBytes",
        description="Default quota of their stored bytes (spec.quotas.apiBytes overrides).")


class ProbesConfig(BaseModel):
    """Health probes of the backends this process drives, feeding the status page
    (``status.probes``): a probe failing ``failureThreshold`` times in a row opens an
    Incident on its Component; ``recoveryThreshold`` successes in a row end it, so a
    flapping backend keeps one incident rather than opening one per failure."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool = True
    interval_seconds: float = Field(30.0, ge=1, le=3600, alias="intervalSeconds")
    timeout_seconds: float = Field(5.0, gt=0, le=120, alias="timeoutSeconds",
                                   description="One probe's deadline; a slower answer fails.")
    failure_threshold: int = Field(3, ge=1, le=100, alias="failureThreshold")
    recovery_threshold: int = Field(2, ge=1, le=100, alias="recoveryThreshold")
    impact_type: str = Field("unavailable", alias="impactType", description=(
        "The ImpactType (metadata.name) of the incidents probes open."))
    severity: int = Field(100, ge=1, le=100,
                          description="The impact severity of those incidents (0-100).")
    components: dict[str, str] = Field(default_factory=dict, description=(
        "Probe name (store, identity, compute, network, block-storage, image, "
        "load-balancer, kaas) → the Component (metadata.name) it reports on. Empty: every "
        "probe of a configured backend reports on a Component named like the probe."))


class AlertmanagerConfig(BaseModel):
    """The Prometheus Alertmanager webhook receiver (``status.alertmanager``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool = True
    component_label: str = Field("component", alias="componentLabel", description=(
        "The alert label naming the affected Component."))
    components: dict[str, str] = Field(default_factory=dict, description=(
        "That label's value → Component name; values not listed are taken as the name."))
    impact_type: str = Field("unavailable", alias="impactType", description=(
        "The ImpactType of incidents opened for alerts (an alert's impact_type label "
        "overrides it)."))
    severities: dict[str, int] = Field(
        default_factory=lambda: {"critical": 100, "warning": 50, "info": 10},
        description="An alert's severity label → the impact severity (0-100); alerts "
                    "with another or no severity label get the highest listed.")


class StatusConfig(BaseModel):
    """The status service (``services: [status]``): the SCS status-page API as a view of
    the status.scs.community kinds, fed by probes and Alertmanager (docs/status.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path_prefix: str = Field("/status", alias="pathPrefix", pattern=r"^(/[a-z0-9._-]+)+$",
                             description="Where the status-page REST API is served.")
    anonymous_read: bool = Field(True, alias="anonymousRead", description=(
        "Serve GET requests of the status-page API without a token (a public status "
        "page); writes always need one and the status-editor role."))
    cors_origins: list[str] = Field(default_factory=list, alias="corsOrigins", description=(
        "Origins of status-page front ends allowed to call the API from a browser."))
    probes: ProbesConfig = Field(default_factory=ProbesConfig)
    alertmanager: AlertmanagerConfig = Field(default_factory=AlertmanagerConfig)

    def model_post_init(self, __context: Any) -> None:
        if self.path_prefix.split("/")[1] in RESERVED_PREFIXES:
            raise ValueError(f"status.pathPrefix {self.path_prefix} would hide the API's own "
                             f"paths; reserved: {sorted(RESERVED_PREFIXES)}")


RESERVED_PREFIXES = {"api", "apis", "openapi", "version", "healthz", "livez", "readyz",
                     "metrics", ".well-known", "openid", "sandbox", "webhooks", "console"}


class MeteringSink(BaseModel):
    """A billing system receiving usage rows by HTTP POST (docs/metering.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description=(
        "Names the sink's export cursor: renaming it starts the export over."))
    url: str = Field(pattern=r"^https?://", description="Where batches are POSTed.")
    ca_file: str = Field("", alias="caFile", description="CA bundle for an https sink.")
    token_file: str = Field("", alias="tokenFile", description=(
        "A file whose content is sent as a bearer token (kept out of this file)."))
    batch_size: int = Field(500, ge=1, le=10000, alias="batchSize")


class CeilometerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool = Field(True, description="Serve POST /webhooks/ceilometer.")


class MeteringConfig(BaseModel):
    """The metering service (``services: [metering]``): usage derived from the objects'
    lifecycle, Ceilometer samples, and export to billing (docs/metering.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sinks: list[MeteringSink] = Field(default_factory=list)
    ceilometer: CeilometerConfig = Field(default_factory=CeilometerConfig)

    def model_post_init(self, __context: Any) -> None:
        names = [sink.name for sink in self.sinks]
        if len(names) != len(set(names)):
            raise ValueError("metering.sinks: names must be unique")


class ConsoleConfig(BaseModel):
    """The web console (``console:``): static files served at ``/`` (console/README.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool = True
    clients: dict[str, str] = Field(default_factory=dict, description=(
        "Issuer URL → the public OIDC client id the console logs in with (authorization "
        "code + PKCE, redirect URI https://<server>/console/callback). Default: the issuer's "
        "audience, since the API checks ID tokens against it."))
    scopes: str = Field("openid email groups", description=(
        "Scopes the console asks for (the claims the API maps to user and groups)."))
    token_login: bool = Field(True, alias="tokenLogin", description=(
        "Offer signing in by pasting a bearer token (the bootstrap admin's, for local use)."))
    tenant_login: bool = Field(True, alias="tenantLogin", description=(
        "Serve /console/t/<tenant>/: a login page offering the tenant's own trusted IdPs "
        "(federation) with those origins in its CSP; their redirect URI is "
        "https://<server>/console/t/<tenant>/callback. Off: only the operator's issuers."))
    dist_dir: str = Field("", alias="distDir", description=(
        "Directory of the built console (npm run build); default: console/dist beside the "
        "package."))


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    services: list[str] = Field(default_factory=lambda: list(SERVICE_GROUPS))
    controllers: Literal["in-process", "external"] = "in-process"
    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        1, description="Worker processes serving the API on this machine (one core each), "
                       "or auto: one per CPU. scs serve --workers overrides it.")
    resync_seconds: float = Field(30.0, gt=0, alias="resyncSeconds",
                                  description="How often every object is reconciled again "
                                              "(repairs drift in the backend).")
    providers: dict[str, ProviderConfig] = Field(
        default_factory=lambda: {"iaas": ProviderConfig(), "kaas": ProviderConfig()})
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    status: StatusConfig = Field(default_factory=StatusConfig)
    metering: MeteringConfig = Field(default_factory=MeteringConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)

    def model_post_init(self, __context: Any) -> None:
        unknown = sorted(set(self.services) - set(SERVICE_GROUPS))
        if unknown:
            raise ValueError(f"unknown services {unknown}; known: {sorted(SERVICE_GROUPS)}")
        kaas = self.providers.setdefault("kaas", ProviderConfig())  # the embedded default
        if kaas.type == "openstack":
            raise ValueError("providers.kaas.type openstack is not a KaaS backend; use "
                             "sandbox, capi or gardener")

    def serves(self, rt: ResourceType) -> bool:
        """Kubernetes' own groups are always served; SCS groups only when enabled."""
        groups = {SERVICE_GROUPS[s] for s in self.services}
        return rt.group not in SERVICE_GROUPS.values() or rt.group in groups

    def provider(self, service: str) -> ProviderConfig | None:
        if service not in self.services:
            return None
        found = self.providers.get(service)
        return found if found is None or found.type != "none" else None


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return Config.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read config {path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
            + str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ValueError(f"invalid config {path}: {problems}") from None
