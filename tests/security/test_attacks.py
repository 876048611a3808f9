"""What an attacker tries against a real ``scs serve``: missing, malformed, forged and revoked
credentials, oversized headers, path tricks, cross-tenant watches, request floods — and that
the audit log records every request without ever recording a secret or a token.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.security.support import (
    NO_RATE_LIMIT,
    TENANTS,
    assert_forbidden,
    assert_unauthorized,
    bind,
    can_i,
    client,
    create_namespace,
    create_service_account,
    created,
    describe,
    raw_get,
    raw_request,
    request_token,
    sa_subject,
    secret,
    start_server,
    tenant,
    unique,
    wait_for,
)
from tests.server import ScsServer

pytestmark = pytest.mark.slow

OWN, FOREIGN, SA_NS = "acme-a", "globex-a", "identities"
FOREIGN_VALUE = "globex-launch-codes-7f3a"


class Target:
    def __init__(self, server: ScsServer, admin: httpx.Client, member_token: str,
                 foreign_secret: dict[str, Any]) -> None:
        self.server = server
        self.admin = admin
        self.member_token = member_token
        self.member = client(server, member_token)
        self.foreign_secret = foreign_secret


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    """acme-a and globex-a; ServiceAccount identities/member bound ``member`` in acme-a."""
    server = start_server(NO_RATE_LIMIT)
    admin = client(server, server.token)
    found: Target | None = None
    try:
        created(admin.post(TENANTS, json=tenant("acme")), "tenant acme")
        created(admin.post(TENANTS, json=tenant("globex")), "tenant globex")
        create_namespace(admin, OWN, "acme")
        create_namespace(admin, FOREIGN, "globex")
        create_namespace(admin, SA_NS)
        create_service_account(admin, SA_NS, "member")
        bind(admin, "member", sa_subject(SA_NS, "member"), OWN)
        created(admin.post(f"/api/v1/namespaces/{OWN}/secrets", json=secret("target")),
                "acme's secret")
        foreign = created(admin.post(f"/api/v1/namespaces/{FOREIGN}/secrets",
                                     json=secret("target", code=FOREIGN_VALUE)),
                          "globex's secret")
        found = Target(server, admin, request_token(admin, SA_NS, "member"), foreign)
        wait_for(lambda: can_i(found.member, "list", "secrets", "", OWN),
                 what="the member binding")
        yield found
    finally:
        if found is not None:
            found.member.close()
        admin.close()
        server.cleanup()


# --- authentication ----------------------------------------------------------------------------

PROTECTED = [
    ("GET", "/api"), ("GET", "/apis"), ("GET", "/api/v1"), ("GET", "/api/v1/namespaces"),
    ("GET", f"/api/v1/namespaces/{OWN}/secrets/target"), ("GET", "/api/v1/secrets"),
    ("POST", f"/api/v1/namespaces/{OWN}/secrets"), ("DELETE", f"/api/v1/namespaces/{OWN}"),
    ("GET", TENANTS), ("GET", "/openapi/v2"), ("GET", "/openapi/v3"),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
    ("GET", "/no/such/path"), ("GET", "/metrics"), ("GET", "/healthz/verbose"),
    ("GET", "/api/v1/namespaces/a%0Ab"), ("OPTIONS", "/api/v1/namespaces"),
]
PUBLIC = ["/healthz", "/livez", "/readyz", "/version", "/.well-known/openid-configuration",
          "/openid/v1/jwks"]
BAD_CREDENTIALS = {
    "no-header": None,
    "empty": "",
    "basic-auth": "Basic " + base64.b64encode(b"admin:admin").decode(),
    "bearer-without-token": "Bearer",
    "other-scheme": "Token abcdef",
    "two-tokens": "Bearer abc def",
    "10-KiB-token": "Bearer " + "a" * 10 * 1024,
    "unknown-token": "Bearer " + "x" * 43,
    "unknown-jwt": "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
}


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS.values()), ids=list(BAD_CREDENTIALS))
def test_requests_without_valid_credentials_are_unauthorized_everywhere(
        target: Target, credential: str | None) -> None:
    headers = {} if credential is None else {"Authorization": credential}
    with client(target.server, None) as anonymous:
        for method, path in PROTECTED:
            request = anonymous.build_request(method, path, headers=headers,
                                              json={} if method == "POST" else None)
            assert_unauthorized(anonymous.send(request), f"{method} {path}")
    assert target.admin.get(f"/api/v1/namespaces/{OWN}").status_code == 200, \
        "the namespace must survive the refused DELETE"


@pytest.mark.parametrize("authorization", [b"Bearer    ", b"Bearer t\xf6ken\xff",
                                           b"Bearer \x00admin", b"Bearer\tabc",
                                           b"bearer", b"Bearer " + b"a" * 9000],
                         ids=["blank", "latin-1", "nul", "tab", "scheme-only", "over-8-KiB"])
def test_malformed_authorization_bytes_are_unauthorized(target: Target,
                                                        authorization: bytes) -> None:
    for _method, path in PROTECTED[:6]:
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   ).encode() + b"Authorization: " + authorization + b"\r\n\r\n"
        answer = raw_request(target.server, request)
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith((b"HTTP/1.1 401", b"HTTP/1.1 400")), \
            f"{authorization[:30]!r} on {path}: {answer[:300]!r}"


def test_paths_the_router_would_not_match_and_unknown_methods_get_a_status(
        target: Target) -> None:
    odd = target.admin.get("/api/v1/namespaces/a%0Ab")
    assert odd.status_code in (400, 404) and odd.json()["kind"] == "Status", odd.text
    options = target.admin.request("OPTIONS", "/api/v1/namespaces")
    assert options.status_code == 405 and options.json()["reason"] == "MethodNotAllowed"


@pytest.mark.parametrize("path", PUBLIC)
def test_health_version_and_issuer_discovery_are_public(target: Target, path: str) -> None:
    with client(target.server, None) as anonymous:
        response = anonymous.get(path)
    assert response.status_code == 200, f"{path} must answer without a token: " \
                                        f"{describe(response)}"


def _jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={
        "verify_signature": False})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forgeries(real: str) -> dict[str, str]:
    header, claims = _jwt_parts(real)
    own_key = ec.generate_private_key(ec.SECP256R1())
    admin_claims = {**claims, "sub": "system:serviceaccount:kube-system:admin"}
    head, _, signature = real.split(".")
    return {
        # same kid, issuer and claims, signed by a key the server never had
        "own-ec-key-same-kid": jwt.encode(claims, own_key, algorithm="ES256", headers=header),
        # the real signature over other claims
        "tampered-claims": ".".join([head, _b64(json.dumps(admin_claims).encode()),
                                     signature]),
        # the oldest trick: no signature at all
        "alg-none": ".".join([_b64(json.dumps({"alg": "none", "kid": header["kid"]}).encode()),
                              _b64(json.dumps(claims).encode()), ""]),
        # HS256 "signed" with the published public key material
        "hs256-with-kid": jwt.encode(claims, "public-key-as-secret-" * 2, algorithm="HS256",
                                     headers={"kid": header["kid"]}),
        # a valid-looking token for another audience, by our own key
        "own-key-other-audience": jwt.encode({**claims, "aud": ["https://elsewhere"]}, own_key,
                                             algorithm="ES256", headers=header),
    }


FORGERIES = ["own-ec-key-same-kid", "tampered-claims", "alg-none", "hs256-with-kid",
             "own-key-other-audience"]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_service_account_tokens_are_unauthorized(target: Target, forgery: str) -> None:
    jwks = target.admin.get("/openid/v1/jwks").json()
    header, claims = _jwt_parts(target.member_token)
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}, "the real token's kid is served"
    issuer = target.admin.get("/.well-known/openid-configuration").json()["issuer"]
    assert claims["iss"] == issuer
    token = forgeries(target.member_token)[forgery]
    with client(target.server, token) as forger:
        assert_unauthorized(forger.get(f"/api/v1/namespaces/{OWN}/secrets"), forgery)


def test_service_account_token_dies_with_its_account_and_stays_dead_after_recreation(
        target: Target) -> None:
    name = unique("doomed")
    create_service_account(target.admin, SA_NS, name)
    token = request_token(target.admin, SA_NS, name)
    whoami = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    review = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    with client(target.server, token) as account:
        assert account.post(review, json=whoami).status_code == 201, "the fresh token works"
        deleted = target.admin.delete(f"/api/v1/namespaces/{SA_NS}/serviceaccounts/{name}")
        assert deleted.status_code == 200, describe(deleted)
        assert_unauthorized(account.post(review, json=whoami), "a deleted account's token")
        create_service_account(target.admin, SA_NS, name)
        assert_unauthorized(account.post(review, json=whoami),
                            "the old token after the account was re-created")


# --- malformed requests ------------------------------------------------------------------------

def test_request_headers_beyond_kubes_one_mebibyte_limit_are_rejected(target: Target) -> None:
    """kube-apiserver refuses header blocks over 1 MiB (Go's MaxHeaderBytes) with 431."""
    for padding in ("X-Padding: " + "p" * 1024 * 1024 + "\r\n",
                    "".join(f"X-H{i}: {'v' * 1000}\r\n" for i in range(1100))):
        status, _ = raw_get(target.server, "/api/v1/namespaces", target.server.token, padding)
        assert status == 0 or 400 <= status < 500, \
            f"a {len(padding) // 1024} KiB header block must be refused, got HTTP {status}"
    assert target.admin.get("/api/v1/namespaces").status_code == 200, \
        "the server must keep serving after the oversized requests"


def test_header_blocks_are_capped_at_32_KiB_and_the_server_stays_healthy(
        target: Target) -> None:
    """``scs serve`` caps request line plus headers at 32 KiB (MAX_HEADER_BYTES): a 24 KiB
    header (a token with very many groups) is served, a 40 KiB one refused promptly, never
    with a 5xx or a hang."""
    status, _ = raw_get(target.server, "/api/v1/namespaces", target.server.token,
                        "X-Padding: " + "p" * 24 * 1024 + "\r\n")
    assert status == 200, f"a 24 KiB header block is within the limit, got HTTP {status}"
    started = time.monotonic()
    status, _ = raw_get(target.server, "/api/v1/namespaces", target.server.token,
                        "X-Padding: " + "p" * 40 * 1024 + "\r\n")
    assert status == 0 or 400 <= status < 500, f"a 40 KiB header answered HTTP {status}"
    assert time.monotonic() - started < 5, "an oversized header must be refused promptly"
    with client(target.server, None) as anonymous:
        assert anonymous.get("/healthz").status_code == 200


TRAVERSALS = [
    f"/api/v1/namespaces/{OWN}/secrets/../../{FOREIGN}/secrets/target",
    f"/api/v1/namespaces/{OWN}/secrets/%2e%2e/%2e%2e/{FOREIGN}/secrets/target",
    f"/api/v1/namespaces/{OWN}/secrets/%2E%2E%2F%2E%2E%2F{FOREIGN}%2Fsecrets%2Ftarget",
    f"/api/v1/namespaces/{OWN}/../{FOREIGN}/secrets/target",
    f"/api/v1/namespaces/{OWN}/secrets/{FOREIGN}%2Ftarget",
    f"/api/v1/namespaces/{OWN}%2F..%2F{FOREIGN}/secrets/target",
    f"/api/v1/namespaces/{OWN}/secrets/..",
    f"/api/v1/namespaces/{OWN}/secrets/%2e%2e",
    "/api/v1/namespaces/%2e%2e/secrets",
    f"/api/v1/namespaces/{OWN}/secrets/target/..",
    f"/api/v1/namespaces/{OWN}/secrets/./target",
    f"/api/v1/namespaces/{OWN}//secrets/target/../../../{FOREIGN}/secrets/target",
    f"/api/v1/namespaces/{OWN}/secrets/target%00",
    # a cluster-scoped kind below a namespace the caller may read (tenant roles may get
    # their Namespace): must not turn into "get any Namespace"
    f"/api/v1/namespaces/{OWN}/namespaces",
    f"/api/v1/namespaces/{OWN}/namespaces/{FOREIGN}",
    f"/apis/tenancy.scs.community/v1alpha1/namespaces/{OWN}/tenants/globex",
    f"/api/v1/watch/namespaces/{FOREIGN}/secrets",
]


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize("who", ["member", "admin"])
def test_path_traversal_and_encoded_names_never_reach_another_object(
        target: Target, who: str, path: str) -> None:
    token = target.member_token if who == "member" else target.server.token
    status, body = raw_get(target.server, path, token)
    assert 400 <= status < 500, f"{path} as {who}: expected 4xx, got HTTP {status}: {body[:300]!r}"
    text = body.decode(errors="replace")
    foreign = target.foreign_secret
    assert foreign["metadata"]["uid"] not in text, f"{path} answered globex's secret: {text}"
    assert base64.b64encode(FOREIGN_VALUE.encode()).decode() not in text, text


@pytest.mark.parametrize("name", ["..", ".", "a/b", "%2e%2e", "..%2F" + FOREIGN, "a\\b"])
def test_objects_with_path_like_names_cannot_be_created(target: Target, name: str) -> None:
    response = target.member.post(f"/api/v1/namespaces/{OWN}/secrets", json=secret(name))
    assert 400 <= response.status_code < 500, \
        f"a secret named {name!r} must be refused: {describe(response)}"
    names = [s["metadata"]["name"] for s in
             target.admin.get(f"/api/v1/namespaces/{OWN}/secrets").json()["items"]]
    assert name not in names, f"a secret named {name!r} was stored"


def test_a_body_naming_another_namespace_is_refused(target: Target) -> None:
    name = unique("smuggled")
    body = secret(name)
    body["metadata"]["namespace"] = FOREIGN
    response = target.member.post(f"/api/v1/namespaces/{OWN}/secrets", json=body)
    assert 400 <= response.status_code < 500, \
        f"a body for {FOREIGN} posted to {OWN} must be refused: {describe(response)}"
    for ns in (OWN, FOREIGN):
        stored = target.admin.get(f"/api/v1/namespaces/{ns}/secrets/{name}")
        assert stored.status_code == 404, f"the smuggled secret was stored: {describe(stored)}"


def test_an_update_whose_body_names_another_object_is_refused(target: Target) -> None:
    body = secret("target", k="overwritten")
    body["metadata"]["namespace"] = FOREIGN
    response = target.member.put(f"/api/v1/namespaces/{OWN}/secrets/target", json=body)
    assert 400 <= response.status_code < 500, describe(response)
    other = secret(unique("renamed"), k="x")
    response = target.member.put(f"/api/v1/namespaces/{OWN}/secrets/target", json=other)
    assert 400 <= response.status_code < 500, describe(response)
    foreign = target.admin.get(f"/api/v1/namespaces/{FOREIGN}/secrets/target").json()
    assert foreign["metadata"]["resourceVersion"] == \
        target.foreign_secret["metadata"]["resourceVersion"], "globex's secret was changed"


@pytest.mark.parametrize("headers", [
    {"Impersonate-User": "scs:bootstrap-admin"},
    {"Impersonate-User": "system:admin", "Impersonate-Group": "system:masters"},
    {"Impersonate-Uid": "0", "Impersonate-Group": "system:masters"},
], ids=["user", "user-and-masters", "group-only"])
def test_impersonation_headers_grant_nothing(target: Target, headers: dict[str, str]) -> None:
    response = target.member.get(f"/api/v1/namespaces/{FOREIGN}/secrets/target",
                                 headers=headers)
    assert_forbidden(response, f"member impersonating with {headers}")


def test_member_cannot_mint_tokens_for_another_tenants_service_accounts(target: Target) -> None:
    create_service_account(target.admin, FOREIGN, "globex-robot")
    response = target.member.post(
        f"/api/v1/namespaces/{FOREIGN}/serviceaccounts/globex-robot/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert_forbidden(response, "member requesting a token for globex's service account")


def test_member_cannot_mint_service_account_tokens(target: Target) -> None:
    """The escalation of issue 22: a member minted a tenant-admin account's token and bound
    itself tenant-admin. Refusing only accounts that hold more than the member was not
    enough: a token minted while its account held nothing gained tenant-admin with the
    account's later binding. A token acts as its account, so only tenant admins mint them."""
    later = unique("later")
    create_service_account(target.admin, OWN, later)
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    assert_forbidden(target.member.post(
        f"/api/v1/namespaces/{OWN}/serviceaccounts/{later}/token", json=body),
        "member minting the token of an account not bound yet")
    assert not can_i(target.member, "create", "serviceaccounts", "", OWN, later, "token")


def test_a_token_is_minted_only_by_whom_holds_all_its_accounts_rights(target: Target) -> None:
    """Defence in depth for whoever may mint tokens: the account's rights must be held.
    A tenant admin mints tenant-admin tokens, not those of an account the operator bound
    cloud-admin."""
    robot, operator_robot = unique("admin-robot"), unique("operator-robot")
    for name, role in ((robot, "tenant-admin"), (operator_robot, "cloud-admin")):
        create_service_account(target.admin, OWN, name)
        bind(target.admin, role, sa_subject(OWN, name), OWN)
    tenant_admin = unique("tenant-admin")
    create_service_account(target.admin, SA_NS, tenant_admin)
    bind(target.admin, "tenant-admin", sa_subject(SA_NS, tenant_admin), OWN)
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    with client(target.server, request_token(target.admin, SA_NS, tenant_admin)) as admin_sa:
        wait_for(lambda: can_i(admin_sa, "create", "rolebindings", "rbac.authorization.k8s.io",
                               OWN), what="the tenant-admin binding")
        # RBAC caches follow new bindings through the watch within moments (kube's informers)
        refused = assert_forbidden(wait_for(
            lambda: (r := admin_sa.post(
                f"/api/v1/namespaces/{OWN}/serviceaccounts/{operator_robot}/token",
                json=body)).status_code == 403 and r, what="the operator robot's binding"),
            "tenant admin minting a cloud-admin account's token")
        assert "the account holds permissions the user does not" in refused["message"]
        minted = request_token(admin_sa, OWN, robot)
    with client(target.server, minted) as robot_client:
        assert can_i(robot_client, "create", "rolebindings", "rbac.authorization.k8s.io", OWN)


def test_tokens_for_another_audience_do_not_authenticate_here(target: Target) -> None:
    create_service_account(target.admin, OWN, "vault-client")
    response = target.admin.post(
        f"/api/v1/namespaces/{OWN}/serviceaccounts/vault-client/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"audiences": ["https://vault.example"]}})
    review = created(response, "a token for vault")
    assert review["spec"]["audiences"] == ["https://vault.example"], review["spec"]
    with client(target.server, review["status"]["token"]) as vault_token:
        assert_unauthorized(vault_token.get(f"/api/v1/namespaces/{OWN}/secrets"),
                            "a token minted for another audience")


# --- watches across tenants --------------------------------------------------------------------

def test_member_cannot_watch_secrets_of_another_tenant(target: Target) -> None:
    response = target.member.get(f"/api/v1/namespaces/{FOREIGN}/secrets",
                                 params={"watch": "1"})
    assert_forbidden(response, "member watching globex's secrets")


def test_member_cannot_watch_secrets_cluster_wide(target: Target) -> None:
    response = target.member.get("/api/v1/secrets", params={"watch": "1"})
    assert_forbidden(response, "member watching all secrets")


def test_member_cannot_watch_one_foreign_secret_by_field_selector(target: Target) -> None:
    response = target.member.get(f"/api/v1/namespaces/{FOREIGN}/secrets",
                                 params={"watch": "1", "fieldSelector": "metadata.name=target"})
    assert_forbidden(response, "member watching globex's secret by name")


def test_watch_in_own_namespace_sees_only_that_namespace(target: Target) -> None:
    listed = target.member.get(f"/api/v1/namespaces/{OWN}/secrets")
    assert listed.status_code == 200, describe(listed)
    version = listed.json()["metadata"]["resourceVersion"]
    marker = unique("mark")
    events: list[dict[str, Any]] = []
    params = {"watch": "1", "resourceVersion": version, "timeoutSeconds": "10"}
    with target.member.stream("GET", f"/api/v1/namespaces/{OWN}/secrets",
                              params=params) as stream:
        assert stream.status_code == 200, stream.read()
        created(target.admin.post(f"/api/v1/namespaces/{FOREIGN}/secrets",
                                  json=secret(unique("foreign"))), "a foreign secret")
        created(target.admin.post(f"/api/v1/namespaces/{OWN}/secrets", json=secret(marker)),
                "the marker secret")
        for line in stream.iter_lines():
            if not line.strip():
                continue
            events.append(json.loads(line))
            if events[-1]["object"]["metadata"].get("name") == marker:
                break
    namespaces = {e["object"]["metadata"].get("namespace") for e in events
                  if e["type"] != "BOOKMARK"}
    assert namespaces == {OWN}, f"the watch in {OWN} delivered events of {namespaces}"
    assert events and events[-1]["object"]["metadata"]["name"] == marker, events


def test_watch_history_replay_in_own_namespace_holds_no_foreign_events(target: Target) -> None:
    """A watch from an old resourceVersion replays history: only its own namespace's."""
    start = target.admin.get(f"/api/v1/namespaces/{OWN}/secrets").json()
    version = start["metadata"]["resourceVersion"]
    foreign, marker = unique("old-foreign"), unique("old-mark")
    created(target.admin.post(f"/api/v1/namespaces/{FOREIGN}/secrets", json=secret(foreign)),
            "a foreign secret")
    created(target.admin.post(f"/api/v1/namespaces/{OWN}/secrets", json=secret(marker)),
            "the marker secret")
    events: list[dict[str, Any]] = []
    params = {"watch": "1", "resourceVersion": version, "timeoutSeconds": "10"}
    with target.member.stream("GET", f"/api/v1/namespaces/{OWN}/secrets",
                              params=params) as stream:
        assert stream.status_code == 200, stream.read()
        for line in stream.iter_lines():
            if line.strip():
                events.append(json.loads(line))
                if events[-1]["object"]["metadata"].get("name") == marker:
                    break
    names = [e["object"]["metadata"].get("name") for e in events]
    assert foreign not in names and {e["object"]["metadata"].get("namespace")
                                     for e in events} == {OWN}, events
    assert names[-1] == marker, names


# --- rate limiting -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def limited() -> Iterator[tuple[ScsServer, str]]:
    server = start_server(["--rate-limit", "5", "--rate-burst", "5"])
    try:
        with client(server, server.token) as admin:
            create_namespace(admin, "team")
            create_service_account(admin, "team", "member")
            bind(admin, "member", sa_subject("team", "member"), "team")
            yield server, request_token(admin, "team", "member")
    finally:
        server.cleanup()


def test_a_burst_beyond_the_rate_limit_gets_429_with_retry_after(
        limited: tuple[ScsServer, str]) -> None:
    server, token = limited
    time.sleep(1.2)  # a full bucket (5 tokens at 5/s)
    with client(server, token) as member:
        answers = [member.get("/api/v1/namespaces/team/secrets") for _ in range(20)]
    codes = [r.status_code for r in answers]
    assert codes[:5] == [200] * 5, f"the burst of 5 must be served: {codes}"
    limited_answers = [r for r in answers if r.status_code == 429]
    assert len(limited_answers) >= 10, f"most of 20 rapid requests must be limited: {codes}"
    assert set(codes) <= {200, 429}, codes
    for response in limited_answers:
        retry = response.headers.get("Retry-After", "")
        assert retry.isdigit() and int(retry) >= 1, \
            f"429 needs Retry-After in whole seconds: {response.headers}"
        status = response.json()
        assert status["kind"] == "Status" and status["reason"] == "TooManyRequests", status


def test_the_bootstrap_admin_is_exempt_from_the_rate_limit(
        limited: tuple[ScsServer, str]) -> None:
    server, _ = limited
    with client(server, server.token) as admin:
        codes = [admin.get("/api/v1/namespaces/team/secrets").status_code for _ in range(30)]
    assert codes == [200] * 30, f"the admin must never be limited: {codes}"


def test_one_identity_exhausting_its_limit_does_not_limit_another(
        limited: tuple[ScsServer, str]) -> None:
    server, token = limited
    with client(server, server.token) as admin:
        create_service_account(admin, "team", "other")
        other_token = request_token(admin, "team", "other")
    with client(server, token) as member, client(server, other_token) as other:
        for _ in range(15):
            member.get("/api/v1/namespaces/team/secrets")
        whoami = other.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                            json={"apiVersion": "authentication.k8s.io/v1",
                                  "kind": "SelfSubjectReview"})
    assert whoami.status_code == 201, f"another identity must be served: {describe(whoami)}"


# --- the audit log -----------------------------------------------------------------------------

SECRET_VALUE = "hunter2-audit-canary-9c1e"


class Audited:
    def __init__(self, server: ScsServer, audit: Path,
                 requests: dict[tuple[str, str], tuple[str, int]], tokens: list[str]) -> None:
        self.server = server
        self.audit = audit
        self.requests = requests  # (path, verb) -> (user, code) of the requests made
        self.tokens = tokens

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    audit = tmp_path_factory.mktemp("audit") / "audit.log"
    server = start_server(["--audit-log", str(audit)])
    requests: dict[tuple[str, str], tuple[str, int]] = {}
    try:
        with client(server, server.token) as admin:
            admin_user = "scs:bootstrap-admin"

            def made(response: httpx.Response, verb: str, user: str) -> httpx.Response:
                requests[(response.request.url.path, verb)] = (user, response.status_code)
                return response

            ns = unique("audit")
            made(admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}),
                 "create", admin_user)
            made(admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts",
                            json={"metadata": {"name": "robot"}}), "create", admin_user)
            bind(admin, "member", sa_subject(ns, "robot"), ns)
            sa_token = request_token(admin, ns, "robot")
            requests[(f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token", "create")] = (
                admin_user, 201)
            robot_user = f"system:serviceaccount:{ns}:robot"
            with client(server, sa_token) as robot:
                wait_for(lambda: can_i(robot, "create", "secrets", "", ns),
                         what="the robot's binding")
                made(robot.post(f"/api/v1/namespaces/{ns}/secrets",
                                json=secret("db", password=SECRET_VALUE)), "create", robot_user)
                made(robot.get(f"/api/v1/namespaces/{ns}/secrets/db"), "get", robot_user)
                made(robot.get(f"/api/v1/namespaces/{ns}/secrets/db/"), "get", robot_user)
                made(robot.get(f"/api/v1/namespaces/{ns}/serviceaccounts",
                               params={"token": sa_token}), "list", robot_user)
                made(robot.get("/api/v1/namespaces/kube-system/secrets"), "list", robot_user)
            made(admin.delete(f"/api/v1/namespaces/{ns}/secrets/db"), "delete", admin_user)
            bad = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"},
                   "data": {"password": SECRET_VALUE + "!*"}}  # not base64: refused
            made(admin.put(f"/api/v1/namespaces/{ns}/secrets/bad", json=bad), "update",
                 admin_user)
            bogus = "bogus-" + "t" * 30
            with client(server, bogus) as stranger:
                made(stranger.get(f"/api/v1/namespaces/{ns}/configmaps"), "get",
                     "system:anonymous")
        yield Audited(server, audit, requests, [sa_token, server.token, bogus])
    finally:
        server.cleanup()


def _wait_for_audit(audited: Audited) -> list[dict[str, Any]]:
    def complete() -> list[dict[str, Any]] | None:
        if not audited.audit.exists():
            return None
        lines = audited.lines()
        logged = {(line["path"], line["verb"]) for line in lines}
        return lines if set(audited.requests) <= logged else None

    return wait_for(complete, timeout=10, what="the audit lines of every request")


def test_every_request_is_one_audit_line_with_who_what_where_and_result(
        audited: Audited) -> None:
    lines = _wait_for_audit(audited)
    for (path, verb), (user, code) in audited.requests.items():
        matching = [line for line in lines if (line["path"], line["verb"]) == (path, verb)]
        assert len(matching) == 1, f"{verb} {path} must be logged exactly once: {matching}"
        line = matching[0]
        for field in ("user", "verb", "resource", "namespace", "code", "latencyMs"):
            assert field in line, f"audit line lacks {field!r}: {line}"
        assert line["user"] == user, f"{path}: user {line['user']!r}, expected {user!r}"
        assert line["code"] == code, f"{path}: code {line['code']}, expected {code}"
        assert isinstance(line["latencyMs"], int | float) and line["latencyMs"] >= 0, line
        if "/namespaces/" in path and "/secrets" in path:
            assert line["resource"] == "secrets", line
            assert line["namespace"] == path.split("/")[4], line


def test_audit_records_refusals_with_their_decision(audited: Audited) -> None:
    lines = _wait_for_audit(audited)
    refused = [line for line in lines if line["path"] == "/api/v1/namespaces/kube-system/secrets"]
    assert refused and refused[0]["code"] == 403, refused
    assert refused[0]["decision"] == "forbid", refused


def test_the_audit_file_is_private(audited: Audited) -> None:
    _wait_for_audit(audited)
    mode = audited.audit.stat().st_mode & 0o777
    assert mode == 0o600, f"the audit log names users and objects; mode {oct(mode)}"


def test_neither_secret_values_nor_tokens_reach_the_audit_log_or_the_server_log(
        audited: Audited) -> None:
    _wait_for_audit(audited)
    secrets = {"the secret value": SECRET_VALUE,
               "the base64 secret value": base64.b64encode(SECRET_VALUE.encode()).decode()}
    for index, token in enumerate(audited.tokens):
        secrets[f"token #{index}"] = token
        secrets[f"token #{index} (signature part)"] = token.rsplit(".", 1)[-1][-20:]
    sources = {"audit log": audited.audit.read_text(),
               "server log": audited.server.log_path.read_text(errors="replace")}
    for source, text in sources.items():
        assert text, f"the {source} is empty"
        for what, value in secrets.items():
            assert value not in text, f"{what} appears in the {source}"
