"""The SCS role model as a matrix: identity × verb × kind × scope against an explicit table.

Two tenants, ``acme`` (namespace ``acme-a``) and ``globex`` (``globex-a``). The identities are
ServiceAccounts in the neutral namespace ``identities`` holding real TokenRequest tokens:

- ``tenant-admin``, ``member``, ``viewer``: a RoleBinding of that ClusterRole in ``acme-a``;
- ``cloud-admin``: a ClusterRoleBinding of ``cloud-admin``;
- ``unbound``: no binding at all (only what ``system:authenticated`` gets).

The EXPECTED table is written out from the role table in ``central_api/auth/bootstrap_roles.py``
with Kubernetes semantics (a RoleBinding grants only inside its namespace; a cluster-scoped
kind or a cluster-wide request needs a ClusterRoleBinding). The whole matrix is asked through
SelfSubjectAccessReview; every verb on Secrets is also performed for real in the own and the
foreign namespace, so the authorizer and the request path are proven to agree, and refusals are
checked to be kube's 403 Status that neither reveals existence nor changes anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.security.support import (
    NO_RATE_LIMIT,
    TENANTS,
    assert_forbidden,
    bind,
    can_i,
    client,
    create_namespace,
    create_service_account,
    created,
    describe,
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
SCOPES = {"own": OWN, "foreign": FOREIGN, "cluster": ""}
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
NAMED = ("get", "update", "patch", "delete")

ALL = frozenset(VERBS)
NONE: frozenset[str] = frozenset()
READ = frozenset({"get", "list", "watch"})
WRITE = ALL - {"deletecollection"}  # member: create/get/list/watch/update/patch/delete
NS_READ = frozenset({"get", "watch"})  # get/list/watch namespaces, on the Namespace object

# (api group, applicable scopes). The Namespace object is asked about as itself in the own and
# the foreign namespace (kube's request attributes for /api/v1/namespaces/<ns>: namespace =
# name = <ns>), which only makes sense for verbs naming one object.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "secrets": ("", ("own", "foreign", "cluster")),
    "serviceaccounts": ("", ("own", "foreign", "cluster")),
    "roles": ("rbac.authorization.k8s.io", ("own", "foreign", "cluster")),
    "rolebindings": ("rbac.authorization.k8s.io", ("own", "foreign", "cluster")),
    "namespaces": ("", ("own", "foreign", "cluster")),
    "tenants": ("tenancy.scs.community", ("cluster",)),
    "customresourcedefinitions": ("apiextensions.k8s.io", ("cluster",)),
    "clusterroles": ("rbac.authorization.k8s.io", ("cluster",)),
    "clusterrolebindings": ("rbac.authorization.k8s.io", ("cluster",)),
    "clusters": ("kaas.scs.community", ("own", "foreign", "cluster")),
    "clusterprofiles": ("kaas.scs.community", ("cluster",)),
}
NAMESPACE_OBJECT_VERBS = ("get", "watch", "update", "patch", "delete")
NAMESPACE_COLLECTION_VERBS = ("list", "watch", "create", "deletecollection")

# The verbs each identity is allowed, per kind, in (own acme-a, foreign globex-a, cluster-wide).
# For cluster-scoped kinds only the cluster column applies (None elsewhere).
EXPECTED: dict[str, dict[str, tuple[frozenset[str] | None, ...]]] = {
    "tenant-admin": {
        #                            own       foreign  cluster
        "secrets":                   (ALL,     NONE,    NONE),
        "serviceaccounts":           (ALL,     NONE,    NONE),
        "roles":                     (ALL,     NONE,    NONE),
        "rolebindings":              (ALL,     NONE,    NONE),
        "namespaces":                (NS_READ, NONE,    NONE),
        "tenants":                   (None,    None,    NONE),
        "customresourcedefinitions": (None,    None,    NONE),
        "clusterroles":              (None,    None,    NONE),
        "clusterrolebindings":       (None,    None,    NONE),
        "clusters":                  (ALL,     NONE,    NONE),
        "clusterprofiles":           (None,    None,    READ),  # every signed-in user
    },
    "member": {
        "secrets":                   (WRITE,   NONE,    NONE),
        "serviceaccounts":           (WRITE,   NONE,    NONE),
        "roles":                     (READ,    NONE,    NONE),
        "rolebindings":              (READ,    NONE,    NONE),
        "namespaces":                (NS_READ, NONE,    NONE),
        "tenants":                   (None,    None,    NONE),
        "customresourcedefinitions": (None,    None,    NONE),
        "clusterroles":              (None,    None,    NONE),
        "clusterrolebindings":       (None,    None,    NONE),
        "clusters":                  (WRITE,   NONE,    NONE),
        "clusterprofiles":           (None,    None,    READ),  # every signed-in user
    },
    "viewer": {
        "secrets":                   (NONE,    NONE,    NONE),
        "serviceaccounts":           (READ,    NONE,    NONE),
        "roles":                     (READ,    NONE,    NONE),
        "rolebindings":              (READ,    NONE,    NONE),
        "namespaces":                (NS_READ, NONE,    NONE),
        "tenants":                   (None,    None,    NONE),
        "customresourcedefinitions": (None,    None,    NONE),
        "clusterroles":              (None,    None,    NONE),
        "clusterrolebindings":       (None,    None,    NONE),
        "clusters":                  (READ,    NONE,    NONE),
        "clusterprofiles":           (None,    None,    READ),  # every signed-in user
    },
    "cloud-admin": {
        "secrets":                   (ALL,     ALL,     ALL),
        "serviceaccounts":           (ALL,     ALL,     ALL),
        "roles":                     (ALL,     ALL,     ALL),
        "rolebindings":              (ALL,     ALL,     ALL),
        "namespaces":                (ALL,     ALL,     ALL),
        "tenants":                   (None,    None,    ALL),
        "customresourcedefinitions": (None,    None,    ALL),
        "clusterroles":              (None,    None,    ALL),
        "clusterrolebindings":       (None,    None,    ALL),
        "clusters":                  (ALL,     ALL,     ALL),
        "clusterprofiles":           (None,    None,    ALL),  # every signed-in user
    },
    "unbound": {
        "secrets":                   (NONE,    NONE,    NONE),
        "serviceaccounts":           (NONE,    NONE,    NONE),
        "roles":                     (NONE,    NONE,    NONE),
        "rolebindings":              (NONE,    NONE,    NONE),
        "namespaces":                (NONE,    NONE,    NONE),
        "tenants":                   (None,    None,    NONE),
        "customresourcedefinitions": (None,    None,    NONE),
        "clusterroles":              (None,    None,    NONE),
        "clusterrolebindings":       (None,    None,    NONE),
        "clusters":                  (NONE,    NONE,    NONE),
        "clusterprofiles":           (None,    None,    READ),  # every signed-in user
    },
}
IDENTITIES = tuple(EXPECTED)
SCOPE_INDEX = {"own": 0, "foreign": 1, "cluster": 2}


def expected(identity: str, kind: str, scope: str) -> frozenset[str]:
    allowed = EXPECTED[identity][kind][SCOPE_INDEX[scope]]
    assert allowed is not None, f"{kind} has no {scope} scope"
    return allowed


def verbs_for(kind: str, scope: str) -> tuple[str, ...]:
    if kind == "namespaces":
        return NAMESPACE_COLLECTION_VERBS if scope == "cluster" else NAMESPACE_OBJECT_VERBS
    return VERBS


def matrix_cases() -> Iterator[Any]:
    for identity in IDENTITIES:
        for kind, (_group, scopes) in KINDS.items():
            for scope in scopes:
                yield pytest.param(identity, kind, scope, id=f"{identity}-{kind}-{scope}")


# --- the world ---------------------------------------------------------------------------------

class World:
    def __init__(self, server: ScsServer, admin: httpx.Client,
                 clients: dict[str, httpx.Client]) -> None:
        self.server = server
        self.admin = admin
        self.clients = clients


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    server = start_server(NO_RATE_LIMIT)
    clients: dict[str, httpx.Client] = {}
    try:
        admin = client(server, server.token)
        clients["admin"] = admin
        created(admin.post(TENANTS, json=tenant("acme")), "tenant acme")
        created(admin.post(TENANTS, json=tenant("globex")), "tenant globex")
        create_namespace(admin, OWN, "acme")
        create_namespace(admin, FOREIGN, "globex")
        create_namespace(admin, SA_NS)
        for identity in IDENTITIES:
            create_service_account(admin, SA_NS, identity)
            subject = sa_subject(SA_NS, identity)
            if identity == "cloud-admin":
                bind(admin, "cloud-admin", subject)
            elif identity != "unbound":
                bind(admin, identity, subject, OWN)
            clients[identity] = client(server, request_token(admin, SA_NS, identity))
        # the bindings are in effect once each identity sees one right it is meant to have
        for identity, (verb, resource, ns) in {
                "tenant-admin": ("create", "rolebindings", OWN),
                "member": ("create", "secrets", OWN), "viewer": ("list", "roles", OWN),
                "cloud-admin": ("create", "tenants", "")}.items():
            group = KINDS[resource][0]
            wait_for(lambda i=identity, v=verb, r=resource, n=ns, g=group:
                     can_i(clients[i], v, r, g, n), what=f"the binding of {identity}")
        yield World(server, admin, {k: v for k, v in clients.items() if k != "admin"})
    finally:
        for http in clients.values():
            http.close()
        server.cleanup()


# --- the full matrix through SelfSubjectAccessReview ------------------------------------------

@pytest.mark.parametrize(("identity", "kind", "scope"), list(matrix_cases()))
def test_each_identity_may_do_exactly_what_the_role_table_grants(
        world: World, identity: str, kind: str, scope: str) -> None:
    group = KINDS[kind][0]
    ns = SCOPES[scope]
    allowed = expected(identity, kind, scope)
    wrong = []
    for verb in verbs_for(kind, scope):
        if kind == "namespaces":
            name = ns if scope != "cluster" else ""
        else:
            name = "probe" if verb in NAMED else ""
        answer = can_i(world.clients[identity], verb, kind, group, ns, name)
        if answer != (verb in allowed):
            wrong.append(f"{verb}: expected {'allowed' if verb in allowed else 'denied'}, "
                         f"got {'allowed' if answer else 'denied'}")
    assert not wrong, (f"{identity} on {kind} ({scope} scope, namespace {ns!r}) disagrees with "
                       "the role table:\n  " + "\n  ".join(wrong))


# --- real requests on Secrets ------------------------------------------------------------------

def secrets_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/secrets" + (f"/{name}" if name else "")


def perform(http: httpx.Client, verb: str, ns: str, name: str, label: str) -> httpx.Response:
    """Do ``verb`` on Secret ``name`` (or the Secrets labelled ``probe=label``) for real."""
    selector = {"labelSelector": f"probe={label}"}
    if verb == "get":
        return http.get(secrets_path(ns, name))
    if verb == "list":
        return http.get(secrets_path(ns), params=selector)
    if verb == "watch":
        params = {**selector, "watch": "1", "timeoutSeconds": "1"}
        with http.stream("GET", secrets_path(ns), params=params) as response:
            if response.status_code != 200:
                response.read()
            return response
    if verb == "create":
        return http.post(secrets_path(ns), json=secret(name, {"probe": label}, k="created"))
    if verb == "update":
        return http.put(secrets_path(ns, name),
                        json=secret(name, {"probe": label}, k="updated"))
    if verb == "patch":
        return http.patch(secrets_path(ns, name), json={"metadata": {"labels": {"x": "y"}}},
                          headers={"Content-Type": "application/merge-patch+json"})
    if verb == "delete":
        return http.delete(secrets_path(ns, name))
    assert verb == "deletecollection"
    return http.delete(secrets_path(ns), params=selector)


def without(text: str, *names: str) -> str:
    for name in names:
        text = re.sub(re.escape(name), "<name>", text)
    return text


def secret_cases() -> Iterator[Any]:
    for identity in IDENTITIES:
        for scope in ("own", "foreign"):
            for verb in VERBS:
                yield pytest.param(identity, scope, verb, id=f"{identity}-{verb}-{scope}")


@pytest.mark.parametrize(("identity", "scope", "verb"), list(secret_cases()))
def test_real_secret_requests_agree_with_the_role_table_and_the_access_review(
        world: World, identity: str, scope: str, verb: str) -> None:
    ns = SCOPES[scope]
    http = world.clients[identity]
    label = unique("p")
    existing, missing = unique("s"), unique("missing")
    created(world.admin.post(secrets_path(ns), json=secret(existing, {"probe": label})),
            f"secret {ns}/{existing}")
    before = world.admin.get(secrets_path(ns, existing)).json()

    allowed = verb in expected(identity, "secrets", scope)
    reviewed = can_i(http, verb, "secrets", "", ns, existing if verb in NAMED else "")
    assert reviewed == allowed, (f"SelfSubjectAccessReview says {identity} "
                                 f"{'may' if reviewed else 'may not'} {verb} secrets in {ns}")

    target = existing if verb in NAMED else missing if verb == "create" else ""
    response = perform(http, verb, ns, target, label)
    if allowed:
        assert response.status_code in (200, 201), \
            f"{identity} may {verb} secrets in {ns}, but {describe(response)}"
        return

    assert_forbidden(response, f"{identity} doing {verb} on secrets in {ns}")
    if verb in NAMED or verb == "create":
        # the same refusal for an object that exists and one that does not
        other = perform(http, verb, ns, existing if verb == "create" else missing, label)
        assert_forbidden(other, f"{identity} doing {verb} on secrets in {ns} (other name)")
        assert without(response.text, existing, missing) == \
            without(other.text, existing, missing), (
            "a refusal must not reveal whether the object exists:\n"
            f"  existing: {response.text}\n  missing:  {other.text}")
    after = world.admin.get(secrets_path(ns, existing))
    assert after.status_code == 200, f"a refused {verb} removed the secret: {describe(after)}"
    assert after.json()["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], \
        f"a refused {verb} by {identity} changed the secret: {after.text}"
    gone = world.admin.get(secrets_path(ns, missing))
    assert gone.status_code == 404, f"a refused {verb} created {missing}: {describe(gone)}"


def namespace_cases() -> Iterator[Any]:
    for identity in IDENTITIES:
        for scope in ("own", "foreign"):
            for verb in ("get", "patch", "delete"):
                yield pytest.param(identity, scope, verb, id=f"{identity}-{verb}-{scope}")


@pytest.mark.parametrize(("identity", "scope", "verb"), list(namespace_cases()))
def test_real_requests_on_the_namespace_object_agree_with_the_role_table(
        world: World, identity: str, scope: str, verb: str) -> None:
    """Writes use dryRun=All, so even an allowed delete leaves the namespace in place."""
    ns = SCOPES[scope]
    http = world.clients[identity]
    path = f"/api/v1/namespaces/{ns}"
    dry = {"dryRun": "All"}
    if verb == "get":
        response = http.get(path)
    elif verb == "patch":
        response = http.patch(path, params=dry, json={"metadata": {"labels": {"x": "y"}}},
                              headers={"Content-Type": "application/merge-patch+json"})
    else:
        response = http.delete(path, params=dry)
    allowed = verb in expected(identity, "namespaces", scope)
    assert can_i(http, verb, "namespaces", "", ns, ns) == allowed, \
        f"SelfSubjectAccessReview disagrees with the table for {identity} {verb} {ns}"
    if allowed:
        assert response.status_code == 200, f"{identity} may {verb} {ns}: {describe(response)}"
    else:
        assert_forbidden(response, f"{identity} doing {verb} on namespace {ns}")
    after = world.admin.get(path).json()
    assert not after["metadata"].get("deletionTimestamp") and \
        "x" not in (after["metadata"].get("labels") or {}), f"{ns} was changed: {after}"


def test_refusals_name_the_identity_the_verb_and_the_namespace(world: World) -> None:
    response = world.clients["member"].get(secrets_path(FOREIGN, "anything"))
    status = assert_forbidden(response, "member reading a foreign secret")
    message = status["message"]
    for part in (f"system:serviceaccount:{SA_NS}:member", "get", "secrets", FOREIGN):
        assert part in message, f"the refusal message should mention {part!r}: {message}"


def test_member_cannot_read_other_tenants_clusters(world: World) -> None:
    """Real requests, not only the access review: a Cluster of globex stays invisible to
    acme's member, who works with the Clusters of its own namespace."""
    path = "/apis/kaas.scs.community/v1alpha1/namespaces/{}/clusters"
    http = world.clients["member"]
    assert_forbidden(http.get(path.format(FOREIGN)), "member listing foreign clusters")
    assert_forbidden(http.get(path.format(FOREIGN) + "/any"), "member reading a foreign one")
    own = http.get(path.format(OWN))
    assert own.status_code == 200, describe(own)


def test_cluster_wide_secret_list_is_refused_not_filtered(world: World) -> None:
    """A tenant identity listing Secrets across namespaces gets 403, never a filtered list
    that would confirm which namespaces hold what."""
    for identity in ("tenant-admin", "member", "viewer", "unbound"):
        response = world.clients[identity].get("/api/v1/secrets")
        assert_forbidden(response, f"{identity} listing secrets cluster-wide")


def test_cloud_admin_lists_secrets_of_every_tenant(world: World) -> None:
    response = world.clients["cloud-admin"].get("/api/v1/secrets")
    assert response.status_code == 200, describe(response)
    namespaces = {item["metadata"]["namespace"] for item in response.json()["items"]}
    assert {OWN, FOREIGN} <= namespaces, f"cloud-admin should see both tenants: {namespaces}"
