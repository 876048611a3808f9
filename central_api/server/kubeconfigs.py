"""Kubeconfigs of KaaS clusters: the ``clusters/kubeconfig`` and ``clusters/adminkubeconfig``
subresources (modelled on Gardener's ``shoots/viewerkubeconfig`` and ``adminkubeconfig``).

The HTTP layer knows no backend: it reads the Cluster, checks what the request may get, and
asks an :data:`AccessSource` the assembly installs for the cluster's endpoint, CA and (for an
admin) a short-lived credential. Nothing is stored: the answer is the only copy of the
credential, so it is sent with ``Cache-Control: no-store`` and never logged; the audit line
of the request carries which credential was issued and until when (:data:`AUDIT_PREFIX`).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml
from starlette.requests import Request
from starlette.responses import Response

from ..config import KubeconfigConfig
from ..kinds.kaas_access import (
    ADMIN_KUBECONFIG_REQUEST,
    API_VERSION,
    KUBECONFIG_REQUEST,
    MIN_EXPIRATION_SECONDS,
)
from ..machinery.bodies import parse_object
from ..machinery.errors import ApiError, Cause, bad_request, invalid, method_not_allowed
from ..registry.resources import Resources
from ..store.offload import off_loop
from .handlers import json_response, media_type, read_body
from .routing import Target

EXEC_API_VERSION = "client.authentication.k8s.io/v1"
AUDIT_PREFIX = "kaas.scs.community/"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
HARD_MAX_SECONDS = 1 << 32
"""Beyond this a request is nonsense rather than long (Kubernetes' TokenRequest bound)."""


@dataclass(frozen=True)
class AdminGrant:
    """Who receives an admin credential, and for how long (already within the maximum)."""

    user: str
    seconds: int


class Access(Protocol):
    """How to reach a cluster (the provider's ``ClusterAccess`` has this shape)."""

    @property
    def server(self) -> str: ...
    @property
    def certificate_authority(self) -> bytes: ...
    @property
    def client_certificate(self) -> bytes: ...
    @property
    def client_key(self) -> bytes: ...
    @property
    def token(self) -> str: ...
    @property
    def expires(self) -> dt.datetime | None: ...


AccessSource = Callable[[dict[str, Any], AdminGrant | None], Awaitable[Access]]
"""The cluster's endpoint and CA from its backend, with a credential for an AdminGrant;
raises ApiError (409 while the backend has no cluster yet, 503 when it does not answer)."""


class KubeconfigIssuer:
    """Answers both subresources; ``limits`` are the operator's (default and maximum)."""

    def __init__(self, resources: Resources, source: AccessSource,
                 limits: KubeconfigConfig) -> None:
        self.resources = resources
        self.source = source
        self.limits = limits

    async def kubeconfig(self, request: Request, target: Target) -> Response:
        """A kubeconfig whose user runs ``scs token`` for the cluster's issuer: the caller's
        own login reaches the cluster, and the file holds no secret."""
        body = await _body(request, KUBECONFIG_REQUEST.kind)
        cluster = await self._cluster(target)
        oidc = (cluster.get("spec") or {}).get("oidc") or {}
        if not oidc.get("issuerURL") or not oidc.get("clientID"):
            raise _state_conflict(cluster, "spec.oidc", "the cluster trusts no OIDC issuer, "
                                  "so no login reaches it: set spec.oidc (or ask a tenant "
                                  "admin for an adminkubeconfig)", "FieldValueRequired")
        if _dry_run(request):
            return _dry_run_answer(KUBECONFIG_REQUEST.kind, target, body)
        access = await self.source(cluster, None)
        user = oidc_user(oidc["issuerURL"], oidc["clientID"])
        config = build_kubeconfig(cluster, access, "oidc", user)
        request.state.audit_annotations = {f"{AUDIT_PREFIX}kubeconfig": "oidc",
                                           f"{AUDIT_PREFIX}issuer": oidc["issuerURL"]}
        answer = _answer(KUBECONFIG_REQUEST.kind, target, body, config)
        return json_response(answer, 201, headers=NO_STORE)

    async def admin_kubeconfig(self, request: Request, target: Target) -> Response:
        """A kubeconfig with the backend's short-lived admin credential for the caller."""
        body = await _body(request, ADMIN_KUBECONFIG_REQUEST.kind)
        requested = _expiration(body, target.name, self.limits.default_seconds)
        seconds = min(requested, self.limits.max_seconds)
        cluster = await self._cluster(target)
        if _dry_run(request):
            return _dry_run_answer(ADMIN_KUBECONFIG_REQUEST.kind, target,
                                   {**body, "spec": {"expirationSeconds": seconds}})
        access = await self.source(cluster, AdminGrant(request.state.user.name, seconds))
        if not access.token and not (access.client_certificate and access.client_key):
            raise ApiError(502, "InternalError", "the KaaS backend issued no credential")
        expires = access.expires or dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        user = {"token": access.token} if access.token else {
            "client-certificate-data": _b64(access.client_certificate),
            "client-key-data": _b64(access.client_key)}
        config = build_kubeconfig(cluster, access, "admin", user)
        request.state.audit_annotations = {
            f"{AUDIT_PREFIX}kubeconfig": "admin",
            f"{AUDIT_PREFIX}requestedSeconds": str(requested),
            f"{AUDIT_PREFIX}expirationTimestamp": rfc3339(expires)}
        answer = _answer(ADMIN_KUBECONFIG_REQUEST.kind, target, body, config)
        answer["spec"] = {"expirationSeconds": seconds}
        answer["status"]["expirationTimestamp"] = rfc3339(expires)
        return json_response(answer, 201, headers=NO_STORE)

    async def _cluster(self, target: Target) -> dict[str, Any]:
        """The Cluster, if a kubeconfig can be made for it now (404 if there is none)."""
        cluster = await off_loop(self.resources.store, self.resources.get, target.rt,
                                 target.namespace or "", target.name)
        if cluster["metadata"].get("deletionTimestamp"):
            raise _state_conflict(cluster, "metadata.deletionTimestamp",
                                  "the cluster is being deleted")
        if not (cluster.get("status") or {}).get("apiEndpoint"):
            phase = (cluster.get("status") or {}).get("phase") or "not built yet"
            raise _state_conflict(cluster, "status.apiEndpoint", "the cluster's API server is "
                                  f"not reachable yet ({phase}); retry once its "
                                  "ControlPlaneReady condition is True", retry_after=5)
        return cluster


# -- the kubeconfig ----------------------------------------------------------------------------
def build_kubeconfig(cluster: dict[str, Any], access: Access, kind: str,
                     user: dict[str, Any]) -> str:
    """One cluster, one user, one context named ``<namespace>-<name>`` (``-admin`` for the
    admin's), so that files of several clusters merge without clashes."""
    meta = cluster["metadata"]
    name = f"{meta['namespace']}-{meta['name']}"
    context = name if kind == "oidc" else f"{name}-admin"
    entry: dict[str, Any] = {"server": access.server or cluster["status"]["apiEndpoint"]}
    if access.certificate_authority:
        entry["certificate-authority-data"] = _b64(access.certificate_authority)
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": entry}],
        "users": [{"name": f"{name}-{kind}", "user": user}],
        "contexts": [{"name": context, "context": {"cluster": name, "user": f"{name}-{kind}"}}],
        "current-context": context,
    }
    return yaml.safe_dump(config, sort_keys=False)


def oidc_user(issuer: str, client_id: str, extra_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """A kubeconfig user that signs in as the caller (the one ``scs login`` writes, too):
    kubectl runs ``scs token``, which prints the caller's ID token from its private cache and
    refreshes it; the kubeconfig itself holds no token."""
    return {"exec": {
        "apiVersion": EXEC_API_VERSION, "command": "scs",
        "args": ["token", "--issuer", issuer, "--client-id", client_id, *extra_args],
        "interactiveMode": "IfAvailable", "provideClusterInfo": False,
        "installHint": "scs is the SCS Central API CLI (pip install central_api); sign in "
                       f"with: scs login --issuer {issuer} --client-id {client_id} (the "
                       f"identity provider {urlsplit(issuer).netloc})"}}


def _answer(kind: str, target: Target, body: dict[str, Any], config: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind,
            "metadata": {"name": target.name, "namespace": target.namespace,
                         "creationTimestamp": None},
            "spec": body.get("spec") or {},
            "status": {"kubeconfig": _b64(config.encode())}}


# -- the request -------------------------------------------------------------------------------
async def _body(request: Request, kind: str) -> dict[str, Any]:
    """The request object (an empty body is an empty request); its kind must be ``kind``."""
    if request.method != "POST":
        raise method_not_allowed("only create (POST) is supported on this subresource")
    _dry_run(request)
    raw = await read_body(request)
    body = await parse_object(raw, media_type(request)) if raw.strip() else {}
    api_version, given = body.get("apiVersion"), body.get("kind")
    if api_version not in (None, "", API_VERSION) or given not in (None, "", kind):
        raise bad_request(f"expected {API_VERSION} {kind}, got {str(api_version)[:60]} "
                          f"{str(given)[:60]}")
    if not isinstance(body.get("spec") or {}, dict):
        raise invalid(kind, "", [Cause("spec", "Invalid value: must be an object")],
                      ADMIN_KUBECONFIG_REQUEST.group)
    return body


def _dry_run(request: Request) -> bool:
    """``?dryRun=All``: check the request, issue nothing. Any other value is refused, not
    ignored: a caller who meant a dry run must not get a live admin credential."""
    values = request.query_params.getlist("dryRun")
    if any(v != "All" for v in values):
        raise bad_request('dryRun: Unsupported value: only "All" is supported')
    return bool(values)


def _dry_run_answer(kind: str, target: Target, body: dict[str, Any]) -> Response:
    """The answer to a dry run: the request as it would be served, without a kubeconfig."""
    answer = _answer(kind, target, body, "")
    answer["status"] = {}
    return json_response(answer, 201, headers=NO_STORE)


def _expiration(body: dict[str, Any], name: str, default: int) -> int:
    """The requested lifetime: the default when left out, at least 600 s (shorter is
    refused, like Gardener and TokenRequest); the caller bounds it by the maximum."""
    seconds = (body.get("spec") or {}).get("expirationSeconds")
    if seconds is None:
        return default
    field = "spec.expirationSeconds"
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        problem = f"Invalid value: {str(seconds)[:40]!r}: must be an integer"
    elif seconds < MIN_EXPIRATION_SECONDS:
        problem = f"Invalid value: {seconds}: must be at least {MIN_EXPIRATION_SECONDS}"
    elif seconds > HARD_MAX_SECONDS:
        problem = f"Invalid value: {seconds}: must be at most 2^32"
    else:
        return seconds
    raise invalid(ADMIN_KUBECONFIG_REQUEST.kind, name, [Cause(field, problem)],
                  ADMIN_KUBECONFIG_REQUEST.group)


def _state_conflict(cluster: dict[str, Any], field: str, why: str,
                    reason: str = "FieldValueInvalid", retry_after: int | None = None
                    ) -> ApiError:
    """409: the request is fine, the Cluster is not (yet) in a state to answer it; the
    cause names the Cluster's field that decides."""
    name = cluster["metadata"]["name"]
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on '
                    f'clusters.kaas.scs.community "{name}": {why}',
                    causes=[Cause(field, why, reason)], group="kaas.scs.community",
                    kind="clusters", name=name, retry_after=retry_after)


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
