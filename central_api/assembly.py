"""One place that builds a process from the configuration: store, catalog, authentication,
authorization, admission, providers and controllers.

``scs serve`` and ``scs controllers`` (and so every test, which starts those commands) get
their parts from here, so the two deployment modes cannot drift apart: the same
configuration yields the same reconcilers, and the HTTP layer (``server/``) never needs to
know which backends exist. The order matters in a few places and is explained where it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response

from .auth.admission import RbacEscalationAdmission
from .auth.audit import AuditLog
from .auth.authn import Authenticator, AuthenticatorChain
from .auth.authz import MastersAuthorizer, UnionAuthorizer
from .auth.cluster_oidc import ClusterOidcDefault, ClusterTrustAdmission
from .auth.cluster_quota import ClusterQuotaAdmission, ComputeUsage
from .auth.federation import FederationSettings, TenantIssuers
from .auth.oidc import OidcAuthenticator, load_oidc_config
from .auth.ratelimit import RateLimiter
from .auth.rbac import InformerRuleSource, RbacAuthorizer, rules_for
from .auth.serviceaccounts import ServiceAccountAuthenticator, SigningKeys
from .auth.status_admission import StatusAdmission
from .auth.storage_quota import StorageQuotaAdmission
from .auth.tenants import (
    NamespaceTenancyAdmission,
    TenantAuthorizer,
    TenantDirectory,
    tenant_label,
    tenant_rules,
)
from .auth.tokens import TokenAuthenticator
from .config import Config, ConsoleConfig, FederationConfig, MeteringConfig, StatusConfig
from .controllers.billing_export import billing_exporters
from .controllers.client import Client, LocalClient
from .controllers.kaas import start_publishing
from .controllers.manager import Manager
from .controllers.metering import Accountant, LedgerUsage
from .controllers.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .controllers.metrics import ControllerMetrics
from .controllers.reconcilers import all_reconcilers
from .controllers.runner import InternalControllers
from .controllers.status_probes import status_probes
from .controllers.tenants import build_identity
from .datadir import DataDir, SecretBox, WrongEncryptionKey, ensure_encryption_key
from .kinds import builtin_kinds
from .kinds.catalog import Catalog
from .kinds.kaas import CLUSTER, CLUSTER_PROFILE, PROFILE_NAME, OfferedVersions
from .kinds.kaas_access import ADMIN_KUBECONFIG, KUBECONFIG
from .kinds.metering import USAGE_RECORD
from .machinery.errors import ApiError
from .machinery.user import BOOTSTRAP_ADMIN, User
from .providers import build_kaas_provider, build_provider
from .providers.base import Provider, ProviderError, Scope
from .providers.health import backend_probes
from .providers.identity import IdentityService
from .providers.kaas import AdminRequest, KaasProvider
from .providers.sandbox.identity import SandboxIdentity
from .server.alertmanager import PATH as ALERTMANAGER_PATH
from .server.alertmanager import alertmanager_receiver
from .server.app import (
    ServerContext,
    ServiceAccountTokens,
    build_app,
    ensure_system_namespaces,
)
from .server.ceilometer import PATH as CEILOMETER_PATH
from .server.ceilometer import ceilometer_receiver
from .server.console import PREFIX as CONSOLE_PREFIX
from .server.console import Console
from .server.handlers import json_response
from .server.kubeconfigs import Access, AccessSource, AdminGrant, KubeconfigIssuer
from .server.request_metrics import install_request_metrics
from .server.statuspage import status_page_api
from .server.usage import SUMMARY_PATH as USAGE_SUMMARY_PATH
from .server.usage import UsageRecords, UsageSummaries
from .store import open_store
from .store.base import Store
from .store.ledger import Ledger
from .store.offload import off_loop

log = logging.getLogger("central_api.assembly")

SANDBOX_INVENTORY = "/sandbox/v1/inventory"
LEDGER_LEASE = "scs-ledger"
"""The lease of usage accounting and billing export, apart from the controllers' lease."""


@dataclass
class ServeOptions:
    """What ``scs serve`` is told on its command line (the config file is ``config``)."""

    host: str
    port: int
    data_dir: Path
    store_url: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False
    log_level: str = "info"
    encryption_key_file: Path | None = None
    oidc_config: Path | None = None
    service_account_issuer: str = ""
    audit_log: Path | None = None
    rate_limit: float = 50.0
    rate_burst: int = 200
    workers: int | str = 1
    """Worker processes (``auto``: one per CPU); :mod:`central_api.server.workers`."""
    config: Config = field(default_factory=Config)


def parent_options(options: ServeOptions) -> ServeOptions:
    """The options of the parent of several workers: it serves no request, so it opens no
    audit file (each worker writes its own, :func:`worker_options`)."""
    return replace(options, audit_log=None)


def worker_options(options: ServeOptions, index: int) -> ServeOptions:
    """Worker ``index`` writes the audit log to a file of its own (``audit.log`` becomes
    ``audit.worker0.log``, …): several processes rotating one file by size would race
    (one renames the file while another still appends to it) and lose lines."""
    path = options.audit_log
    if path is None:
        return options
    return replace(options, audit_log=path.with_name(f"{path.stem}.worker{index}{path.suffix}"))


def prepare_workers(process: ServerProcess) -> None:
    """What the parent of several workers does once before forking them: write the system
    namespaces (workers starting together would race to create them), and end the audit
    writer thread (a fork copies no thread, and the parent audits nothing)."""
    ensure_system_namespaces(process.context)
    if process.context.audit is not None:
        process.context.audit.close()


def server_url(options: ServeOptions) -> str:
    scheme = "http" if options.insecure_http else "https"
    host = "127.0.0.1" if _unspecified(options.host) else options.host
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{options.port}"


def _unspecified(host: str) -> bool:
    """0.0.0.0 or :: — listening everywhere; clients still need one concrete address."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


# -- backends the controllers drive ------------------------------------------------------
@dataclass
class Backends:
    """The clouds the controllers reconcile against, as the configuration names them."""

    config: Config
    provider: Provider | None = None
    identity: IdentityService | None = None
    kaas: KaasProvider | None = None
    starting: list[asyncio.Task[None]] = field(default_factory=list)
    """One-off work of the controllers' start (publishing the KaaS offer), kept referenced."""

    @property
    def empty(self) -> bool:
        return self.provider is None and self.identity is None and self.kaas is None

    def manager(self, client: Client, metrics: ControllerMetrics | None = None,
                leader_election: bool = True) -> Manager:
        """The IaaS, KaaS, onboarding and IAM controllers over ``client``, under one lease;
        call it in the event loop that runs them."""
        config = self.config
        reconcilers = all_reconcilers(
            client, provider=self.provider, identity=self.identity,
            identity_region=config.identity.region,
            identity_resync_seconds=config.identity.resync_seconds,
            serves_iam="iam" in config.services, kaas=self.kaas,
            serves_status="status" in config.services)
        self.starting = start_publishing(reconcilers)
        manager = Manager(client, reconcilers, metrics, leader_election=leader_election,
                          resync_seconds=config.resync_seconds)
        probes = status_probes(client, backend_probes(self.provider, self.identity, self.kaas),
                               config.status.probes, manager.metrics) \
            if "status" in config.services else None
        if probes is not None:
            manager.runnables.append(probes.run)
        return manager


def build_backends(config: Config, store: Store | None) -> Backends:
    """The configured IaaS provider (the sandbox keeps its cloud in ``store``), KaaS
    provider and identity backend; raises ValueError for a configuration that cannot work."""
    provider_config = config.provider("iaas")
    provider = build_provider(provider_config, store) if provider_config else None
    identity = identity_backend(config, store) if "tenancy" in config.services else None
    return Backends(config, provider, identity, kaas_backend(config, store))


def kaas_backend(config: Config, store: Store | None) -> KaasProvider | None:
    """The sandbox KaaS keeps its clusters with the sandbox cloud: in ``store``, or, in
    ``scs controllers``, in ``providers.iaas.store`` unless ``providers.kaas.store`` is set."""
    kaas = config.provider("kaas")
    if kaas is None:
        return None
    cloud = config.provider("iaas")
    if not kaas.store and cloud is not None and cloud.type == "sandbox" and cloud.store:
        kaas = kaas.model_copy(update={"store": cloud.store})
    return build_kaas_provider(kaas, store)


def identity_backend(config: Config, store: Store | None) -> IdentityService | None:
    """The sandbox identity keeps its records in ``store``; ``scs controllers`` has none and
    uses ``identity.store``, or else the sandbox cloud's (the simulated cloud in one place)."""
    if config.identity.type != "sandbox":
        return build_identity(config.identity)
    cloud = config.provider("iaas")
    url = config.identity.store or (cloud.store if cloud and cloud.type == "sandbox" else "")
    if url:
        store = open_store(url)
    if store is None:
        raise ValueError("the sandbox identity needs a store here: set identity.store (or "
                         "providers.iaas.store, which it then shares), or identity.type "
                         "keystone or none")
    return SandboxIdentity(store)


# -- the API server process --------------------------------------------------------------
def open_configured_store(options: ServeOptions, data: DataDir) -> Store:
    """The store, with Secrets encrypted by the data directory's (or the given) key."""
    store = open_store(options.store_url or f"sqlite:///{data.database.resolve()}")
    box = SecretBox(ensure_encryption_key(data, options.encryption_key_file))
    store.set_transformer("core/secrets", (box.encrypt, box.decrypt))
    try:
        store.list("core/secrets", limit=1)
    except WrongEncryptionKey:
        store.close()
        raise ValueError("the store holds secrets written with another encryption key: give "
                         "every replica the same key (--encryption-key-file)") from None
    return store


@dataclass
class ServerProcess:
    """Everything ``scs serve`` runs: the API and, in-process, the controllers."""

    context: ServerContext
    backends: Backends
    metrics: ControllerMetrics = field(default_factory=ControllerMetrics)

    def app(self) -> Starlette:
        return build_app(self.context, self.background)

    @contextlib.asynccontextmanager
    async def background(self, ctx: ServerContext) -> AsyncIterator[None]:
        """The server's own loops (garbage collector, compaction, caches) in every replica,
        and the configured controllers while this replica holds their lease."""
        internal = InternalControllers(ctx.resources, ctx.hub, ctx.storage_usage,
                                       metering="metering" in self.backends.config.services)
        await internal.start()
        managers = [] if self.backends.empty else [("controllers", self._controllers)]
        if "metering" in self.backends.config.services:
            managers.append(("ledger", self._ledger))
        tasks = [asyncio.create_task(_run_logged(partial(make, ctx), name), name=name)
                 for name, make in managers]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await internal.stop()

    def _controllers(self, ctx: ServerContext) -> Manager:
        """The controllers read through the process's shared informers (one cache per kind
        for them, RBAC, tenants and the issuer registry alike)."""
        client = LocalClient(ctx.resources, ctx.hub, ctx.informers)
        return self.backends.manager(client, self.metrics)

    def _ledger(self, ctx: ServerContext) -> Manager:
        """Usage accounting and the billing export read and write the store, not a cloud:
        they run in the server, in one replica at a time (their own lease), whether the
        controllers run here or in ``scs controllers``."""
        client = LocalClient(ctx.resources, ctx.hub, ctx.informers)
        manager = Manager(client, [], lease=LEDGER_LEASE)
        ledger = Ledger(ctx.store)
        manager.runnables += billing_exporters(ctx.store, ledger, self.backends.config.metering)
        manager.runnables.append(Accountant(ctx.store, ledger).run)
        return manager


async def _run_logged(make: Callable[[], Manager], name: str) -> None:
    """Build the manager in its task and run it until cancelled; a crash is logged here,
    since nobody awaits the task before shutdown."""
    try:
        await make().run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the %s stopped", name)
        raise


def build_server(options: ServeOptions, data: DataDir, store: Store) -> ServerProcess:
    """The API server around ``store``: authentication, authorization, admission, audit,
    limits, and (``controllers: in-process``) the backends its controllers drive."""
    config = options.config
    ctx = ServerContext(store=store,
                        catalog=Catalog([k for k in builtin_kinds() if config.serves(k)]),
                        authenticator=AuthenticatorChain(_authenticators(options, data)),
                        audit=AuditLog(options.audit_log),
                        rate_limiter=RateLimiter(options.rate_limit, options.rate_burst),
                        limits=config.limits)
    issuer = options.service_account_issuer or server_url(options)
    tokens = ServiceAccountTokens(SigningKeys.load_or_create(data.root), issuer, [issuer])
    ctx.service_accounts = tokens
    ctx.authenticator.authenticators.append(ServiceAccountAuthenticator(
        tokens.keys, issuer, tokens.audiences, service_account_lookup(ctx)))
    install_authorization(ctx)
    if ctx.catalog.lookup(CLUSTER_PROFILE.group, CLUSTER_PROFILE.version,
                          CLUSTER_PROFILE.plural):
        ctx.resources.admission.append(OfferedVersions(_stored_profile(ctx)))
        install_cluster_admission(ctx)
    if config.federation.enabled:
        install_federation(ctx, config.federation, _operator_issuers(ctx))
    backends = build_backends(config, store) if config.controllers == "in-process" \
        else Backends(config)
    process = ServerProcess(ctx, backends)
    _install_endpoints(process)
    install_kubeconfigs(process)
    if "status" in config.services:
        install_status(process, config.status)
    if "metering" in config.services:
        install_metering(process, config.metering)
    if config.console.enabled:
        install_console(ctx, config.console)
    return process


def install_console(ctx: ServerContext, config: ConsoleConfig) -> None:
    """The web console at ``/`` and ``/console/`` (static files and its public issuer
    list), a mount: the page loads before anyone has logged in."""

    def issuers() -> list[tuple[str, str]]:
        return [(url, a.issuer_keys(url).issuer.audience)
                for a in ctx.authenticator.authenticators if isinstance(a, OidcAuthenticator)
                for url in a.issuer_urls]

    federated = [a for a in ctx.authenticator.authenticators if isinstance(a, TenantIssuers)]

    def tenant_issuers(tenant: str) -> list[tuple[str, str]]:
        return [(i.issuer_url, i.audience) for f in federated for i in f.trusted_for(tenant)]

    console = Console(config, issuers, tenant_issuers)
    ctx.mounts["/"] = console  # the exact path "/" only (mounts match prefix + "/")
    ctx.mounts[CONSOLE_PREFIX] = console


def install_status(process: ServerProcess, config: StatusConfig) -> None:
    """The status service's HTTP side: the SCS status-page API under ``pathPrefix`` and the
    Alertmanager receiver, both as mounts that decide access themselves (anonymous reads of
    a public page). The probes run with the controllers (``Backends.manager``)."""
    ctx = process.context
    ctx.resources.admission.append(StatusAdmission(ctx.resources))
    ctx.mounts[config.path_prefix] = status_page_api(ctx, config)
    if config.alertmanager.enabled:
        process.context.mounts[ALERTMANAGER_PATH] = alertmanager_receiver(config.alertmanager)


def install_metering(process: ServerProcess, config: MeteringConfig) -> None:
    """The metering service's HTTP side: Ceilometer's publisher posts to
    ``/webhooks/ceilometer`` (a mount that authorizes itself: basic credentials). Usage
    records are read from the ledger (never the object store, so they cannot be written),
    and the UsageSummary review is a mount that authorizes per tenant. The accountant and
    the billing export run in the background (``ServerProcess._run_ledger``)."""
    ctx = process.context
    ledger = Ledger(ctx.store)
    source = LedgerUsage(ledger)
    ctx.served[(USAGE_RECORD.group, USAGE_RECORD.plural)] = UsageRecords(ctx.store, source)
    ctx.mounts[USAGE_SUMMARY_PATH] = UsageSummaries(ctx.store, source)
    if config.ceilometer.enabled:
        ctx.mounts[CEILOMETER_PATH] = ceilometer_receiver(ledger.add_samples)


def _stored_profile(ctx: ServerContext) -> Callable[[], dict[str, Any] | None]:
    """The KaaS controller's ClusterProfile as admission reads it (None: not written yet)."""

    def read() -> dict[str, Any] | None:
        try:
            return ctx.resources.get(CLUSTER_PROFILE, "", PROFILE_NAME)
        except ApiError:
            return None

    return read


def _authenticators(options: ServeOptions, data: DataDir) -> list[Authenticator]:
    """The bootstrap admin token, and the operator's OIDC issuers (parsed before serving:
    a bad file stops the start with ValueError)."""
    token_hash = data.token_hash.read_text().strip()
    found: list[Authenticator] = [TokenAuthenticator({token_hash: BOOTSTRAP_ADMIN})]
    if options.oidc_config:
        found.append(OidcAuthenticator(load_oidc_config(options.oidc_config)))
    return found


def _operator_issuers(ctx: ServerContext) -> set[str]:
    """Issuers the operator configured: tenants may not register these."""
    return {url for a in ctx.authenticator.authenticators if isinstance(a, OidcAuthenticator)
            for url in a.issuer_urls}


def _install_endpoints(process: ServerProcess) -> None:
    """``/metrics``, and the sandbox's inventory when the cloud is simulated."""
    ctx, provider = process.context, process.backends.provider

    store_health = install_request_metrics(ctx, process.metrics.registry)

    async def metrics() -> Response:
        await store_health.check(ctx)
        return Response(process.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    ctx.endpoints["/metrics"] = metrics
    if provider is not None and provider.simulated:
        from .providers.sandbox import inventory

        async def sandbox_inventory() -> Response:
            return json_response({"simulated": True, "resources": await inventory(ctx.store)})

        ctx.endpoints[SANDBOX_INVENTORY] = sandbox_inventory


def install_kubeconfigs(process: ServerProcess) -> None:
    """A Cluster's ``kubeconfig`` and ``adminkubeconfig`` subresources, answered from the
    KaaS backend: the controllers' (in-process), else one built for this process from the
    same configuration (the API server, not the controllers, answers users)."""
    ctx, config = process.context, process.backends.config
    kaas_config = config.provider("kaas")
    if kaas_config is None or ctx.catalog.lookup(CLUSTER.group, CLUSTER.version,
                                                 CLUSTER.plural) is None:
        return
    kaas = process.backends.kaas or kaas_backend(config, ctx.store)
    if kaas is None:
        return
    issuer = KubeconfigIssuer(ctx.resources, cluster_access(ctx, kaas), kaas_config.kubeconfigs)
    ctx.actions[(CLUSTER.group, CLUSTER.plural, KUBECONFIG)] = issuer.kubeconfig
    ctx.actions[(CLUSTER.group, CLUSTER.plural, ADMIN_KUBECONFIG)] = issuer.admin_kubeconfig


def cluster_access(ctx: ServerContext, kaas: KaasProvider) -> AccessSource:
    """The backend's access to a stored Cluster: its backend object is found by the Cluster's
    UID in the scope the KaaS controller uses (namespace and tenant), and the provider's
    errors become API errors naming the backend."""
    namespaces = ctx.catalog.require("", "v1", "namespaces")

    def tenant_of(namespace: str) -> str:
        ns = ctx.resources.get(namespaces, "", namespace)
        return tenant_label(ns) or ""

    async def access(cluster: dict[str, Any], grant: AdminGrant | None) -> Access:
        meta = cluster["metadata"]
        scope = Scope(meta["namespace"], await off_loop(ctx.store, tenant_of,
                                                        meta["namespace"]))
        try:
            backend = await kaas.clusters.find(scope, meta["uid"])
            if backend is None:
                raise ApiError(409, "Conflict", kaas.labelled(
                    f'cluster {meta["name"]} does not exist in the backend yet; retry '
                    "shortly"), retry_after=5)
            admin = AdminRequest(grant.user, grant.seconds) if grant else None
            return await kaas.access(scope, backend, admin)
        except ProviderError as exc:
            if exc.retryable:
                raise ApiError(503, "ServiceUnavailable", kaas.labelled(str(exc)),
                               retry_after=5) from None
            raise ApiError(409, "Conflict", kaas.labelled(str(exc))) from None

    return access


def install_authorization(ctx: ServerContext) -> None:
    """RBAC plus the tenant boundary, decided from the shared informers."""
    rules = InformerRuleSource(ctx.informers)
    tenants = TenantDirectory(ctx.informers, (ctx.limits.tenant_api_objects,
                                              ctx.limits.tenant_api_bytes))
    ctx.authorizer = MastersAuthorizer(UnionAuthorizer(RbacAuthorizer(rules),
                                                       TenantAuthorizer(tenants)))

    def all_rules(user: User, namespace: str) -> tuple[list[dict[str, Any]],
                                                      list[dict[str, Any]]]:
        resource_rules, non_resource_rules = rules_for(rules, user, namespace)
        return resource_rules + tenant_rules(tenants, user), non_resource_rules

    ctx.rules_for = all_rules
    ctx.resources.admission += [RbacEscalationAdmission(ctx.authorizer, rules),
                                NamespaceTenancyAdmission(tenants, ctx.authorizer,
                                                          ctx.resources)]
    ctx.resources.storage_checks.append(StorageQuotaAdmission(ctx.storage_usage, tenants))


def install_cluster_admission(ctx: ServerContext) -> None:
    """A new Cluster trusts its tenant's IdP, and only who may get an admin kubeconfig of a
    Cluster may change whom it trusts (after :func:`install_authorization`); Clusters and
    their nodes are counted against the tenant's clusters, cores and RAM quotas (from the
    shared informers)."""
    usage = ComputeUsage(ctx.informers)
    ctx.resources.admission += [ClusterOidcDefault(usage, ctx.informers, ctx.store),
                                ClusterTrustAdmission(ctx.authorizer),
                                ClusterQuotaAdmission(usage, ctx.informers, ctx.store)]


def install_federation(ctx: ServerContext, config: FederationConfig,
                       operator_issuers: set[str]) -> None:
    """Trust the issuers tenants register (followed from the shared informers)."""
    settings = FederationSettings(
        allow_private_issuers=config.allow_private_issuers,
        ca_file=Path(config.ca_file) if config.ca_file else None)
    issuers = TenantIssuers(ctx.informers, settings, operator_issuers)
    ctx.authenticator.authenticators.append(issuers)


def service_account_lookup(ctx: ServerContext
                           ) -> Callable[[str, str], Awaitable[str | None]]:
    """The current UID of a ServiceAccount: a deleted or re-created one revokes its tokens.
    Every ServiceAccount-token request asks, so on PostgreSQL it is read off the event loop."""
    rt = ctx.catalog.require("", "v1", "serviceaccounts")

    def lookup(namespace: str, name: str) -> str | None:
        try:
            return str(ctx.resources.get(rt, namespace, name)["metadata"]["uid"])
        except ApiError:
            return None

    async def lookup_off_loop(namespace: str, name: str) -> str | None:
        return await off_loop(ctx.store, lookup, namespace, name)

    return lookup_off_loop
