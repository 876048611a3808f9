"""Assemble and run the server for ``scs serve``."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from rich.console import Console

from ..auth.admission import RbacEscalationAdmission
from ..auth.audit import AuditLog
from ..auth.authn import Authenticator, AuthenticatorChain
from ..auth.authz import MastersAuthorizer, UnionAuthorizer
from ..auth.federation import FederationSettings, TenantIssuers
from ..auth.oidc import OidcAuthenticator, load_oidc_config
from ..auth.ratelimit import RateLimiter
from ..auth.rbac import RbacAuthorizer, StoreRuleSource, rules_for
from ..auth.serviceaccounts import ServiceAccountAuthenticator, SigningKeys
from ..auth.storage_quota import StorageQuotaAdmission
from ..auth.tenants import (
    NamespaceTenancyAdmission,
    TenantAuthorizer,
    TenantDirectory,
    tenant_rules,
)
from ..auth.tokens import TokenAuthenticator
from ..config import Config, FederationConfig
from ..kinds import builtin_kinds
from ..kinds.catalog import Catalog
from ..kinds.rbac import GROUP as RBAC_GROUP
from ..machinery.bodies import MAX_HEADER_BYTES
from ..machinery.errors import ApiError
from ..machinery.user import BOOTSTRAP_ADMIN, User
from ..providers import build_provider
from ..server.app import ServerContext, ServiceAccountTokens, build_app
from ..server.bootstrap import (
    DataDir,
    SecretBox,
    WrongEncryptionKey,
    ensure_admin_token,
    ensure_ca,
    ensure_encryption_key,
    ensure_server_cert,
    write_kubeconfig,
)
from ..server.connections import (
    BACKLOG,
    GuardedH11Protocol,
    connection_cap,
    raise_open_file_limit,
)
from ..store import open_store
from ..store.base import Event, Store


@dataclass
class ServeOptions:
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
    config: Config = field(default_factory=Config)


def _unspecified(host: str) -> bool:
    """0.0.0.0 or :: — listening everywhere; clients still need one concrete address."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def server_url(options: ServeOptions) -> str:
    scheme = "http" if options.insecure_http else "https"
    host = "127.0.0.1" if _unspecified(options.host) else options.host
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{options.port}"


def open_configured_store(options: ServeOptions, data: DataDir) -> Store:
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


def prepare_tls(options: ServeOptions, data: DataDir) -> tuple[Path, Path, Path | None]:
    """(cert, key, CA to put in the kubeconfig); generated unless the operator brought one."""
    if options.tls_cert and options.tls_key:
        return options.tls_cert, options.tls_key, None
    ensure_ca(data)
    ensure_server_cert(data, [options.host])
    return data.server_cert, data.server_key, data.ca_cert


def prepare_kubeconfig(options: ServeOptions, data: DataDir, ca: Path | None,
                       console: Console) -> None:
    url = server_url(options)
    token = ensure_admin_token(data)
    if token is None and data.kubeconfig.exists():
        config = yaml.safe_load(data.kubeconfig.read_text())
        token = config["users"][0]["user"]["token"]
    if token is None:
        console.print(f"[yellow]{data.kubeconfig} is missing and the admin token cannot be "
                      f"recovered; delete {data.token_hash} to issue a new one[/yellow]")
        return
    write_kubeconfig(data, url, token, None if options.insecure_http else ca)


def assemble(options: ServeOptions, data: DataDir, store: Store) -> ServerContext:
    """Authentication, authorization, audit and limits around the store and kinds."""
    token_hash = data.token_hash.read_text().strip()
    authenticators: list[Authenticator] = [TokenAuthenticator({token_hash: BOOTSTRAP_ADMIN})]
    operator_issuers: set[str] = set()
    if options.oidc_config:  # parsed before serving: a bad file stops the start (ValueError)
        oidc = OidcAuthenticator(load_oidc_config(options.oidc_config))
        operator_issuers = oidc.issuer_urls
        authenticators.append(oidc)
    config = options.config
    ctx = ServerContext(store=store,
                        catalog=Catalog([k for k in builtin_kinds() if config.serves(k)]),
                        authenticator=AuthenticatorChain(authenticators),
                        audit=AuditLog(options.audit_log),
                        rate_limiter=RateLimiter(options.rate_limit, options.rate_burst),
                        limits=config.limits)
    issuer = options.service_account_issuer or server_url(options)
    tokens = ServiceAccountTokens(SigningKeys.load_or_create(data.root), issuer, [issuer])
    ctx.service_accounts = tokens
    ctx.authenticator.authenticators.append(ServiceAccountAuthenticator(
        tokens.keys, issuer, tokens.audiences, service_account_lookup(ctx)))
    install_authorization(ctx)
    if config.federation.enabled:
        install_federation(ctx, config.federation, operator_issuers)
    iaas = config.provider("iaas")
    if iaas is not None and config.controllers == "in-process":
        ctx.provider = build_provider(iaas, store)
        ctx.resync_seconds = config.resync_seconds
    if config.controllers == "in-process" and "tenancy" in config.services:
        from ..controllers.tenants import build_identity

        ctx.identity = build_identity(config.identity)
        ctx.identity_region = config.identity.region
        ctx.identity_resync_seconds = config.identity.resync_seconds
        ctx.resync_seconds = config.resync_seconds
    return ctx


def install_authorization(ctx: ServerContext) -> None:
    """RBAC plus the tenant boundary; caches follow every change through the watch hub."""
    rules = StoreRuleSource(ctx.resources)
    tenants = TenantDirectory(ctx.resources, (ctx.limits.tenant_api_objects,
                                              ctx.limits.tenant_api_bytes))
    ctx.authorizer = MastersAuthorizer(UnionAuthorizer(RbacAuthorizer(rules),
                                                       TenantAuthorizer(tenants)))
    def all_rules(user: User, namespace: str) -> tuple[list[dict[str, Any]],
                                                      list[dict[str, Any]]]:
        resource_rules, non_resource_rules = rules_for(rules, user, namespace)
        return resource_rules + tenant_rules(tenants, user), non_resource_rules

    ctx.rules_for = all_rules
    ctx.resources.admission += [RbacEscalationAdmission(ctx.authorizer, rules),
                                NamespaceTenancyAdmission(tenants, ctx.authorizer)]
    ctx.resources.storage_checks.append(StorageQuotaAdmission(ctx.storage_usage, tenants))

    def invalidate(event: Event) -> None:
        if event.key.resource.startswith(RBAC_GROUP + "/"):
            rules.invalidate()
        elif event.key.resource == "tenancy.scs.community/tenants":
            tenants.invalidate()

    ctx.event_listeners.append(invalidate)


def install_federation(ctx: ServerContext, config: FederationConfig,
                       operator_issuers: set[str]) -> None:
    """Trust the issuers tenants register; re-read them whenever one of their sources
    changes."""
    settings = FederationSettings(
        allow_private_issuers=config.allow_private_issuers,
        ca_file=Path(config.ca_file) if config.ca_file else None)
    issuers = TenantIssuers(ctx.resources, settings, operator_issuers)
    ctx.authenticator.authenticators.append(issuers)
    sources = {"tenancy.scs.community/tenants", "iam.scs.community/identityproviders",
               "core/namespaces"}

    def invalidate(event: Event) -> None:
        if event.key.resource in sources:
            issuers.invalidate()

    ctx.event_listeners.append(invalidate)


def service_account_lookup(ctx: ServerContext) -> Callable[[str, str], str | None]:
    """The current UID of a ServiceAccount: a deleted or re-created one revokes its tokens."""
    rt = ctx.catalog.require("", "v1", "serviceaccounts")

    def lookup(namespace: str, name: str) -> str | None:
        try:
            return str(ctx.resources.get(rt, namespace, name)["metadata"]["uid"])
        except ApiError:
            return None

    return lookup


def run_server(options: ServeOptions, console: Console) -> None:
    data = DataDir(options.data_dir.resolve())
    data.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = open_configured_store(options, data)
    cert = key = ca = None
    if not options.insecure_http:
        cert, key, ca = prepare_tls(options, data)
    prepare_kubeconfig(options, data, ca, console)
    ctx = assemble(options, data, store)
    scheme = "http" if options.insecure_http else "https"
    console.print(f"SCS Central API on {scheme}://{options.host}:{options.port} "
                  f"(store: {options.store_url or data.database})")
    console.print(f"  export KUBECONFIG={data.kubeconfig}")
    if ctx.provider is not None:
        simulated = " — SIMULATED cloud, nothing real is created" \
            if ctx.provider.simulated else ""
        console.print(f"  IaaS provider: {ctx.provider.name}{simulated}")
    if ctx.identity is not None:
        console.print(f"  identity: Keystone at {options.config.identity.auth_url} "
                      "(tenant onboarding and IAM)")
    if options.insecure_http:
        console.print("[yellow]  serving plain HTTP: tokens cross the network in clear text"
                      "[/yellow]")
    limits = options.config.limits
    max_connections = connection_cap(limits.max_connections, raise_open_file_limit())
    protocol = GuardedH11Protocol.configure(limits.header_timeout_seconds, max_connections)
    try:
        uvicorn.run(build_app(ctx), host=options.host, port=options.port,
                    ssl_certfile=str(cert) if cert else None,
                    ssl_keyfile=str(key) if key else None,
                    log_level=options.log_level, access_log=False, timeout_graceful_shutdown=5,
                    http=protocol, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                    backlog=BACKLOG)
    finally:
        store.close()
