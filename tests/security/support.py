"""Helpers shared by the security suites: clients per identity, fixtures built as the admin,
and assertions on refusals.

Everything talks to a real ``scs serve`` over HTTPS and trusts exactly the server's CA.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import ssl
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest

from tests.polling import poll
from tests.server import TENANTS_AS_PLAIN_OBJECTS, ScsServer

T = TypeVar("T")

TENANT_LABEL = "tenancy.scs.community/tenant"
TENANTS = "/apis/tenancy.scs.community/v1alpha1/tenants"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSRR = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
NO_RATE_LIMIT = ["--rate-limit", "100000", "--rate-burst", "100000"]
"""The matrix suites send hundreds of requests per identity; the rate limit has its own test."""

_counter = itertools.count()


def unique(prefix: str) -> str:
    """A DNS-label name nobody else on the shared server uses."""
    return f"{prefix}-{os.getpid() % 1000}-{next(_counter)}-{uuid.uuid4().hex[:5]}"


def start_server(extra_args: list[str] | None = None) -> ScsServer:
    """A server where Tenants are plain objects, unless ``extra_args`` bring a config."""
    plain = None if "--config" in (extra_args or []) else TENANTS_AS_PLAIN_OBJECTS
    server = ScsServer(extra_args=extra_args, config=plain)
    try:
        return server.start()
    except Exception:
        server.cleanup()
        raise


def tls(server: ScsServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_file))


def client(server: ScsServer, token: str | None, **kwargs: Any) -> httpx.Client:
    """An HTTPS client for ``server`` sending ``token`` (None: no Authorization header)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.Client(base_url=server.url, verify=tls(server), timeout=30, headers=headers,
                        **kwargs)


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05,
             what: str = "condition") -> T:
    return poll(check, timeout, interval, what)


def created(response: httpx.Response, what: str) -> dict[str, Any]:
    assert response.status_code == 201, \
        f"setup: creating {what} answered {response.status_code}: {response.text[:500]}"
    return dict(response.json())


# --- objects -----------------------------------------------------------------------------------

def tenant(name: str, admins: list[str] | None = None,
           namespaces: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"displayName": f"Tenant {name}", "admins": admins or []}
    if namespaces is not None:
        spec["quotas"] = {"namespaces": namespaces}
    return {"apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name}, "spec": spec}


def namespace(name: str, tenant_name: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if tenant_name is not None:
        meta["labels"] = {TENANT_LABEL: tenant_name}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def secret(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "labels": labels or {}},
            "type": "Opaque", "stringData": data or {"k": "v"}}


def role_binding(name: str, role: str, subject: dict[str, Any],
                 namespace_name: str | None = None) -> dict[str, Any]:
    """A RoleBinding in ``namespace_name`` (or a ClusterRoleBinding when None) of ClusterRole
    ``role``."""
    kind = "RoleBinding" if namespace_name else "ClusterRoleBinding"
    meta: dict[str, Any] = {"name": name}
    if namespace_name:
        meta["namespace"] = namespace_name
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [subject]}


def user_subject(name: str) -> dict[str, Any]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


def sa_subject(namespace_name: str, name: str) -> dict[str, Any]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace_name}


# --- setup as the admin ------------------------------------------------------------------------

def create_namespace(admin: httpx.Client, name: str, tenant_name: str | None = None) -> None:
    created(admin.post("/api/v1/namespaces", json=namespace(name, tenant_name)),
            f"namespace {name}")


def create_service_account(admin: httpx.Client, ns: str, name: str) -> dict[str, Any]:
    return created(admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts",
                              json={"metadata": {"name": name}}),
                   f"serviceaccount {ns}/{name}")


def request_token(http: httpx.Client, ns: str, name: str) -> str:
    """A real token from the TokenRequest subresource (``kubectl create token``)."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    review = created(http.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
                               json=body), f"a token for {ns}/{name}")
    return str(review["status"]["token"])


def bind(admin: httpx.Client, role: str, subject: dict[str, Any],
         namespace_name: str | None = None, name: str | None = None) -> None:
    name = name or unique(f"bind-{role}")
    if namespace_name:
        path = f"{RBAC}/namespaces/{namespace_name}/rolebindings"
    else:
        path = f"{RBAC}/clusterrolebindings"
    created(admin.post(path, json=role_binding(name, role, subject, namespace_name)),
            f"binding of {role}")


# --- questions and assertions ------------------------------------------------------------------

def can_i(http: httpx.Client, verb: str, resource: str, group: str = "", namespace_name: str = "",
          name: str = "", subresource: str = "") -> bool:
    """``kubectl auth can-i`` over SelfSubjectAccessReview."""
    attrs = {"verb": verb, "group": group, "resource": resource, "namespace": namespace_name,
             "name": name, "subresource": subresource}
    review = http.post(SSAR, json={"apiVersion": "authorization.k8s.io/v1",
                                   "kind": "SelfSubjectAccessReview",
                                   "spec": {"resourceAttributes": attrs}})
    assert review.status_code == 201, f"SelfSubjectAccessReview failed: {review.text[:300]}"
    return bool(review.json()["status"]["allowed"])


def rules_review(http: httpx.Client, namespace_name: str) -> dict[str, Any]:
    review = http.post(SSRR, json={"apiVersion": "authorization.k8s.io/v1",
                                   "kind": "SelfSubjectRulesReview",
                                   "spec": {"namespace": namespace_name}})
    assert review.status_code == 201, f"SelfSubjectRulesReview failed: {review.text[:300]}"
    return dict(review.json()["status"])


def rules_allow(rules: list[dict[str, Any]], verb: str, group: str, resource: str) -> bool:
    return any((set(r.get("verbs") or []) & {verb, "*"})
               and (set(r.get("apiGroups") or []) & {group, "*"})
               and (set(r.get("resources") or []) & {resource, "*"}) for r in rules)


def describe(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.raw_path.decode()} answered " \
           f"{response.status_code}: {response.text[:400]}"


def assert_forbidden(response: httpx.Response, what: str) -> dict[str, Any]:
    """A refusal must be kube's 403 ``Status`` with reason ``Forbidden``."""
    assert response.status_code == 403, f"{what} must be refused with 403; {describe(response)}"
    try:
        status = response.json()
    except json.JSONDecodeError:
        pytest.fail(f"{what}: the 403 body is not JSON: {response.text[:300]}")
    assert status.get("kind") == "Status" and status.get("reason") == "Forbidden" \
        and status.get("code") == 403, f"{what}: the 403 is not a Forbidden Status: {status}"
    return dict(status)


def assert_unauthorized(response: httpx.Response, what: str) -> None:
    assert response.status_code == 401, f"{what} must be 401; {describe(response)}"
    status = response.json()
    assert status.get("kind") == "Status" and status.get("reason") == "Unauthorized", \
        f"{what}: the 401 is not an Unauthorized Status: {status}"


def raw_request(server: ScsServer, request: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are (no client-side path normalisation) and return the raw answer,
    or b"" when the server closes the connection without one."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock, \
            tls(server).wrap_socket(sock, server_hostname="127.0.0.1") as conn:
        try:
            conn.sendall(request)
        except OSError:
            return b""
        answer = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except (OSError, ssl.SSLError):
                break
            if not chunk:
                break
            answer += chunk
        return answer


def raw_get(server: ScsServer, path: str, token: str, extra: str = "") -> tuple[int, bytes]:
    """GET ``path`` byte-for-byte; (status, body). Status 0: no HTTP answer at all."""
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
               f"Authorization: Bearer {token}\r\nAccept: application/json\r\n{extra}"
               "Connection: close\r\n\r\n").encode()
    answer = raw_request(server, request)
    if not answer.startswith(b"HTTP/"):
        return 0, answer
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
