"""The ASGI application: authentication, non-resource endpoints, and dispatch.

Routing is done by hand rather than with a route table because resource paths are dynamic
(CRDs add kinds at run time) and kube's path grammar is positional, see :mod:`routing`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import request_response
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..auth.audit import AuditEvent, AuditLog
from ..auth.authn import AuthenticatorChain
from ..auth.authz import Attributes, Authorizer, Decision, MastersAuthorizer
from ..auth.bootstrap_roles import ensure_bootstrap_roles
from ..auth.ratelimit import RateLimiter, retry_after_seconds
from ..auth.serviceaccounts import (
    DISCOVERY_CACHE_CONTROL,
    JWKS_CONTENT_TYPE,
    JWKS_PATH,
    OPENID_CONFIGURATION_PATH,
    SigningKeys,
    TokenIssuer,
    openid_configuration,
    parse_token_request,
    token_escalation,
    token_request_response,
)
from ..auth.storage_quota import StorageUsage
from ..config import LimitsConfig
from ..kinds.catalog import Catalog
from ..machinery import errors
from ..machinery.bodies import check_header_size, parse_object
from ..machinery.errors import ApiError
from ..machinery.metadata import SYSTEM_NAMESPACE
from ..machinery.user import MASTERS, User
from ..registry.crds import crds_include, serve_crds
from ..registry.informers import Informers
from ..registry.resources import Resources, WriteOptions
from ..registry.watch import WatchHub
from ..store.base import Store, StoreUnavailable
from ..store.offload import off_loop
from . import discovery, reviews
from .apidocs import ApiDocuments
from .compression import compress_large
from .handlers import ResourceHandlers, json_response, media_type, read_body
from .requestinfo import RequestIds, RequestInfo, query_keys, request_info, request_path
from .reviews import RulesFor
from .routing import Target, resolve

log = logging.getLogger("central_api.server")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
ANONYMOUS_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
_REQUEST_IDS = RequestIds()


Endpoint = Callable[[], Awaitable[Response]]
Action = Callable[[Request, Target], Awaitable[Response]]
"""Answers an action subresource of a kind (e.g. a Cluster's ``adminkubeconfig``)."""
Background = Callable[["ServerContext"], contextlib.AbstractAsyncContextManager[None]]
Mount = Callable[[Request, "CentralApi"], Awaitable[Response]]
Observer = Callable[[Request, int, float], None]


class DenyAll:
    """The authorizer of last resort: nobody but system:masters may do anything."""

    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(False, "no authorizer allowed the request")


@dataclass
class ServiceAccountTokens:
    """Issues and describes ServiceAccount tokens (TokenRequest, issuer discovery)."""

    keys: SigningKeys
    issuer: str
    audiences: list[str]

    @functools.cached_property
    def issuer_for_tokens(self) -> TokenIssuer:
        return TokenIssuer(self.keys, self.issuer)


@dataclass
class ServerContext:
    store: Store
    catalog: Catalog
    authenticator: AuthenticatorChain
    authorizer: Authorizer = field(default_factory=lambda: MastersAuthorizer(DenyAll()))
    rules_for: RulesFor | None = None
    service_accounts: ServiceAccountTokens | None = None
    audit: AuditLog | None = None
    rate_limiter: RateLimiter | None = None
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    """Further non-resource paths the process serves to authorized callers (``/metrics``,
    the sandbox inventory): contributed by the assembly, so HTTP knows no backend."""
    actions: dict[tuple[str, str, str], Action] = field(default_factory=dict)
    """Handlers of action subresources by (group, plural, subresource), contributed by the
    assembly like ``endpoints`` (a Cluster's kubeconfigs need its KaaS backend)."""
    served: dict[tuple[str, str], Action] = field(default_factory=dict)
    """Kinds answered by a handler instead of the object store, by (group, plural), after
    authorization (usage records, read from the metering ledger)."""
    mounts: dict[str, Mount] = field(default_factory=dict)
    """APIs of their own by path prefix (the status page, the Alertmanager receiver): they
    get the request before the KRM API's authentication and decide access themselves with
    :meth:`CentralApi.identify` and :meth:`CentralApi.authorize` (a public status page
    answers anonymous reads), and answer errors in their own format."""
    observers: list[Observer] = field(default_factory=list)
    """Told (request, status code, seconds) after every answer: request metrics."""
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    storage_usage: StorageUsage = field(default_factory=StorageUsage)
    """Objects and bytes per tenant (the storage quota), kept by the internal controllers."""
    resources: Resources = field(init=False)
    hub: WatchHub = field(init=False)
    informers: Informers = field(init=False)
    """The process's shared caches (CRDs, RBAC, tenants...), started with the watch hub."""

    def __post_init__(self) -> None:
        self.resources = Resources(self.store, self.catalog)
        self.resources.max_object_bytes = self.limits.max_object_bytes
        self.informers = Informers(self.catalog)
        serve_crds(self.informers, self.catalog)


def version_info() -> dict[str, str]:
    return {"major": "1", "minor": "33", "gitVersion": f"v1.33.0+scs.{__version__}",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
            "goVersion": f"python{platform.python_version()}", "compiler": "cpython",
            "platform": f"{platform.system().lower()}/{platform.machine()}"}


def _header(scope: Any, name: bytes) -> str:
    """The first value of header ``name`` (lower case), as ``request.headers.get`` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def ensure_system_namespaces(ctx: ServerContext) -> None:
    """Like Kubernetes, ``default`` always exists (kubeconfig contexts point at it), and
    ``scs-system`` holds the server's own objects (controller leases)."""
    ns_type = ctx.catalog.require("", "v1", "namespaces")
    for name in ("default", SYSTEM_NAMESPACE):
        try:
            ctx.resources.get(ns_type, "", name)
        except ApiError:
            ctx.resources.create(ns_type, "", {"metadata": {"name": name}},
                                 WriteOptions(field_manager="scs-server"))


def forbidden(attrs: Attributes, reason: str) -> ApiError:
    """kube's wording: who cannot do what, where (no hint whether the object exists)."""
    who = f'User "{attrs.user.name}"'
    if not attrs.is_resource:
        return ApiError(403, "Forbidden", f'forbidden: {who} cannot {attrs.verb} path '
                        f'"{attrs.path}"')
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else \
        "at the cluster scope"
    message = (f'{subject} is forbidden: {who} cannot {attrs.verb} resource "{resource}" in '
               f'API group "{attrs.api_group}" {scope}')
    if reason:
        message += f": {reason}"
    return ApiError(403, "Forbidden", message, group=attrs.api_group, kind=attrs.resource,
                    name=attrs.name)


class CentralApi:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    async def dispatch(self, request: Request) -> Response:
        started = time.monotonic()
        path = request_path(request.scope)
        response = await self._answer(request, path)
        for observe in self.ctx.observers:
            observe(request, response.status_code, time.monotonic() - started)
        if self.ctx.audit is not None:
            self.ctx.audit.record(self._audit_event(request, path, response.status_code,
                                                    started))
        return response

    async def _answer(self, request: Request, path: str) -> Response:
        try:
            return await self._dispatch(request, path)
        except StoreUnavailable as exc:
            log.warning("store unavailable on %s %s: %s", request.method, path, exc)
            return self._error(ApiError(503, "ServiceUnavailable", "the store is unavailable; "
                                        "retry shortly", retry_after=1))
        except ApiError as exc:
            return self._error(exc)
        except Exception:
            log.exception("internal error on %s %s", request.method, path)
            return json_response(ApiError(500, "InternalError", "an internal error occurred; "
                                          "see the server log").status(), 500)

    @staticmethod
    def _audit_event(request: Request, path: str, code: int, started: float) -> AuditEvent:
        """Read from the ASGI scope and its state dict: Starlette's ``url``,
        ``query_params`` and ``state`` wrappers cost more than the event itself."""
        scope = request.scope
        state = scope.get("state") or {}
        user: User | None = state.get("user")
        info: RequestInfo | None = state.get("info")
        decision: tuple[str, str] = state.get("decision", ("", ""))
        client = scope.get("client")
        return AuditEvent(
            user=user.name if user else "system:anonymous",
            verb=info.verb if info else request.method.lower(),
            groups=user.groups if user else (),
            source_ip=client[0] if client else "",
            user_agent=_header(scope, b"user-agent"),
            api_group=info.api_group if info else "", resource=info.resource if info else "",
            subresource=info.subresource if info else "",
            namespace=info.namespace if info else "", name=info.name if info else "",
            path=path, query_keys=query_keys(scope.get("query_string", b"")),
            response_code=code, latency_ms=(time.monotonic() - started) * 1000,
            decision=decision[0], reason=decision[1],
            annotations=state.get("audit_annotations") or {},
            request_id=_REQUEST_IDS.next())

    @staticmethod
    def _error(exc: ApiError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return json_response(exc.status(), exc.code, headers)

    async def _dispatch(self, request: Request, path: str) -> Response:
        check_header_size(request.scope)
        mount = self.mount_for(path)
        if mount is not None:
            return await mount(request, self)
        if path in ANONYMOUS_PATHS:
            return self.non_resource(path)
        if path in (OPENID_CONFIGURATION_PATH, JWKS_PATH) and self.ctx.service_accounts:
            return self.issuer_discovery(path, self.ctx.service_accounts)
        user = await self.identify(request)
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if request.method not in METHODS:
            raise errors.method_not_allowed(f"{request.method} is not supported")
        info = request_info(request.method, path,
                            request.query_params.get("watch") in ("1", "true", "True"))
        request.state.info = info
        self.authorize(info.attributes(user), request)
        parts = [p for p in path.split("/") if p]
        if not info.is_resource:
            return await self.non_resource_authenticated(request, parts)
        target = self.virtual_or_target(info)
        if target is None:
            return await self.review(request, info, user)
        if target.subresource == "token":
            return await self.token_request(request, target)
        if target.subresource in target.rt.action_subresources:
            return await self.action(request, target)
        served = self.ctx.served.get((target.rt.group, target.rt.plural))
        if served is not None:
            return await served(request, target)
        response = await self.handlers.handle(request, target)
        if target.rt.kind == "CustomResourceDefinition" and request.method != "GET":
            await self.serving_written_crd(response)
            # the roles cover the kinds now served
            await off_loop(self.ctx.store, ensure_bootstrap_roles, self.ctx.resources)
        return response

    def mount_for(self, path: str) -> Mount | None:
        for prefix, mount in self.ctx.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return mount
        return None

    async def identify(self, request: Request) -> User | None:
        """The caller (None: no credentials), rate-limited and recorded for the audit log;
        credentials that are bad or expired raise 401, as do none where one is needed."""
        header = request.headers.get("authorization")
        user = await self.ctx.authenticator.authenticate(header)
        if user is None:
            if header:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return None
        request.state.user = user
        self.rate_limit(user)
        return user

    async def serving_written_crd(self, response: Response) -> None:
        """Answer a CRD write once this replica's CRD informer has it, so the client can use
        the new kind at once (every replica learns CRDs from the watch, this one too)."""
        try:
            written = json.loads(bytes(response.body))["metadata"]["resourceVersion"]
            await crds_include(self.ctx.informers, int(written))
        except (AttributeError, KeyError, TypeError, ValueError):
            return  # no object in the answer (a Status): nothing to wait for

    def rate_limit(self, user: User) -> None:
        limiter = self.ctx.rate_limiter
        if limiter is None or MASTERS in user.groups:
            return
        delay = limiter.check(user.name)
        if delay is not None:
            raise ApiError(429, "TooManyRequests", "too many requests, please try again later",
                           retry_after=retry_after_seconds(delay))

    def authorize(self, attrs: Attributes, request: Request | None = None) -> None:
        decision = self.ctx.authorizer.authorize(attrs)
        if request is not None:
            request.state.decision = ("allow" if decision.allowed else "forbid",
                                      decision.reason)
        if not decision.allowed:
            raise forbidden(attrs, decision.reason)

    @staticmethod
    def issuer_discovery(path: str, tokens: ServiceAccountTokens) -> Response:
        headers = {"Cache-Control": DISCOVERY_CACHE_CONTROL}
        if path == JWKS_PATH:
            return json_response(tokens.keys.jwks(), headers=headers,
                                 media_type=JWKS_CONTENT_TYPE)
        return json_response(openid_configuration(tokens.issuer), headers=headers)

    async def token_request(self, request: Request, target: Target) -> Response:
        """``kubectl create token``: a signed, audience-bound, expiring token for the SA."""
        tokens = self.ctx.service_accounts
        if tokens is None or request.method != "POST":
            raise errors.method_not_allowed("only create is supported on serviceaccounts/token")
        body = await parse_object(await read_body(request), media_type(request))
        audiences, seconds = parse_token_request(body, tokens.audiences, target.name)
        account = await off_loop(self.ctx.store, self.ctx.resources.get, target.rt,
                                 target.namespace or "", target.name)
        meta = account["metadata"]
        self.check_token_escalation(request.state.user, meta["namespace"], meta["name"])
        token, expiry = tokens.issuer_for_tokens.issue(meta["namespace"], meta["name"],
                                                       meta["uid"], audiences, seconds)
        return json_response(token_request_response(meta["name"], meta["namespace"],
                                                    audiences, seconds, token, expiry), 201)

    async def action(self, request: Request, target: Target) -> Response:
        rt = target.rt
        handler = self.ctx.actions.get((rt.group, rt.plural, target.subresource))
        if handler is None:
            raise ApiError(501, "NotImplemented", f"{rt.plural}/{target.subresource} is not "
                           "available: this server runs without the backend that answers it")
        return await handler(request, target)

    def check_token_escalation(self, user: User, namespace: str, name: str) -> None:
        rules_for = self.ctx.rules_for
        if rules_for is None:
            raise ApiError(501, "NotImplemented", "token requests need the RBAC authorizer")

        def held(who: User, scope: str) -> list[dict[str, Any]]:
            resource_rules, non_resource_rules = rules_for(who, scope)
            return resource_rules + non_resource_rules

        problem = token_escalation(held, user, namespace, name)
        if problem:
            raise ApiError(403, "Forbidden", f'serviceaccounts "{name}" is forbidden: {problem}',
                           kind="serviceaccounts", name=name)

    def virtual_or_target(self, info: RequestInfo) -> Target | None:
        """The stored resource a path names; None for a review resource."""
        if discovery.virtual(info.api_group, info.api_version, info.resource) and \
                not info.namespace and not info.name:
            return None
        rest = [info.resource, info.name, info.subresource]
        rest = [p for p in rest if p]
        if info.namespace and not (info.resource == "namespaces" and info.name == info.namespace):
            rest = ["namespaces", info.namespace, *rest]
        return resolve(self.ctx.catalog, info.api_group, info.api_version, rest)

    async def non_resource_authenticated(self, request: Request, parts: list[str]
                                         ) -> Response:
        endpoint = self.ctx.endpoints.get(request.url.path)
        if endpoint is not None:
            return await endpoint()
        document = await self.documents.answer(request, request.url.path, parts)
        if document is not None:
            return document
        raise errors.not_found("", "")

    async def review(self, request: Request, info: RequestInfo, user: User) -> Response:
        if request.method != "POST":
            raise errors.method_not_allowed("only create is supported")
        body = await parse_object(await read_body(request), media_type(request))
        if info.resource == "selfsubjectreviews":
            return json_response(reviews.self_subject_review(user, info.api_version), 201)
        if info.resource == "selfsubjectaccessreviews":
            return json_response(reviews.self_subject_access_review(
                user, body, self.ctx.authorizer), 201)
        if self.ctx.rules_for is None:
            raise ApiError(501, "NotImplemented", "rules reviews need the RBAC authorizer")
        return json_response(reviews.self_subject_rules_review(user, body, self.ctx.rules_for),
                             201)

    @functools.cached_property
    def handlers(self) -> ResourceHandlers:
        """Built on first use: the watch hub only exists once the app has started."""
        handlers = ResourceHandlers(self.ctx.resources, self.ctx.hub)
        handlers.watches.per_user = self.ctx.limits.watches_per_user
        return handlers

    def non_resource(self, path: str) -> Response:
        if path == "/version":
            return json_response(version_info())
        return PlainTextResponse("ok")

    @functools.cached_property
    def documents(self) -> ApiDocuments:
        """Discovery and OpenAPI, built once per catalog generation."""
        return ApiDocuments(self.ctx.catalog)


def build_app(ctx: ServerContext, background: Background | None = None) -> Starlette:
    """The ASGI app; ``background`` runs beside it once the watch hub and the system
    objects are ready (the assembly's controllers)."""
    api = CentralApi(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx.hub = await off_loop(ctx.store, WatchHub, ctx.store)
        ctx.hub.start()
        ctx.informers.start(ctx.hub)
        await ctx.informers.wait_synced()  # CRDs served, RBAC known: then requests
        await off_loop(ctx.store, ensure_system_namespaces, ctx)
        await off_loop(ctx.store, ensure_bootstrap_roles, ctx.resources)
        running = background(ctx) if background is not None else contextlib.nullcontext()
        try:
            async with running:
                # Everything built so far (kinds, schemas, the garbage collector's index of
                # every stored object) lives as long as the process: keep Python's cyclic GC
                # from walking it on every full collection (at 100k objects each walk took
                # ~200 ms, the page p99).
                gc.freeze()
                yield
        finally:
            await ctx.informers.stop()
            await ctx.hub.stop()
            if ctx.audit is not None:
                ctx.audit.close()

    return ApiApp(api, lifespan)


class ApiApp(Starlette):
    """Starlette for the lifespan; HTTP requests go straight to :meth:`CentralApi.dispatch`.

    Every path goes to the API, with no route pattern in between: Starlette's path
    convertor does not match a newline, so "/a%0Ab" got a plain-text 404 before
    authentication instead of the API's own Status. The router and the two exception
    middlewares it would pass through chose nothing (dispatch answers every path and turns
    its errors into Statuses) and wrapped every ``send``: 4-5 % of a GET's CPU."""

    def __init__(self, api: CentralApi,
                 lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]
                 ) -> None:
        super().__init__(lifespan=lifespan)
        self.api = api
        self.router.default = request_response(api.dispatch)  # other scope types, as before

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        try:
            response = await self.api.dispatch(Request(scope, receive, send))
        except Exception:
            # what Starlette's ServerErrorMiddleware answered; the server logs the error
            await PlainTextResponse("Internal Server Error", status_code=500)(
                scope, receive, send)
            raise
        await (await compress_large(scope, response))(scope, receive, send)
