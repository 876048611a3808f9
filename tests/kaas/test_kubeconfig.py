"""Kubeconfigs of clusters (``clusters/kubeconfig``, ``clusters/adminkubeconfig``) end to end:
the real ``scs serve`` with the sandbox KaaS, identities holding real tokens and roles.

The sandbox's clusters are simulated, but their CA and admin certificates are real X.509, so
the tests check what a client would: the CA verifies the admin certificate, which is valid for
the time asked and names the caller. Identities are ServiceAccounts in ``identities`` (real
TokenRequest tokens) bound to the SCS roles in the cluster's namespace; ``outsider`` is a
tenant admin of another namespace.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from central_api.providers.sandbox import clear_faults, inject_fault
from tests.controllers.conftest import Cluster as Harness
from tests.controllers.conftest import Launcher, condition, eventually, unique
from tests.security.support import (
    bind,
    can_i,
    client,
    create_namespace,
    create_service_account,
    request_token,
    sa_subject,
)

pytestmark = pytest.mark.slow

KAAS = "/apis/kaas.scs.community/v1alpha1"
API_VERSION = "kaas.scs.community/v1alpha1"
DEFAULT_SECONDS, MAX_SECONDS = 1800, 7200
CONFIG: dict[str, Any] = {
    "services": ["tenancy", "kaas"],
    "providers": {"kaas": {"type": "sandbox", "speed": 20, "kubeconfigs": {
        "defaultSeconds": DEFAULT_SECONDS, "maxSeconds": MAX_SECONDS}}}}
OIDC = {"issuerURL": "https://idp.example.test/realms/acme", "clientID": "acme-kubernetes"}
IDENTITIES = "identities"
ROLES = ("tenant-admin", "member", "viewer")


class World:
    """One server, one tenant namespace with a reachable cluster ``c1`` (with OIDC) and
    ``plain`` (without), and a client per identity."""

    def __init__(self, harness: Harness, audit_log: Path) -> None:
        self.harness = harness
        self.audit_log = audit_log
        admin = harness.http
        self.ns, self.other = unique("acme"), unique("globex")
        for ns in (self.ns, self.other, IDENTITIES):
            create_namespace(admin, ns)
        self.users: dict[str, str] = {}
        self.clients: dict[str, httpx.Client] = {}
        for role, where in [*((r, self.ns) for r in ROLES), ("outsider", self.other)]:
            account = unique(role)
            create_service_account(admin, IDENTITIES, account)
            bind(admin, "tenant-admin" if role == "outsider" else role,
                 sa_subject(IDENTITIES, account), where)
            self.users[role] = f"system:serviceaccount:{IDENTITIES}:{account}"
            self.clients[role] = client(harness.server, request_token(admin, IDENTITIES,
                                                                      account))
        self.cluster = make_cluster(harness, self.ns, "c1", oidc=OIDC)
        self.plain = make_cluster(harness, self.ns, "plain")

    def close(self) -> None:
        for http in self.clients.values():
            http.close()

    def path(self, sub: str, name: str = "c1", ns: str = "") -> str:
        return f"{KAAS}/namespaces/{ns or self.ns}/clusters/{name}/{sub}"


def make_cluster(harness: Harness, ns: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": API_VERSION, "kind": "Cluster", "metadata": {"name": name},
            "spec": {"kubernetesVersion": "1.33", **spec,
                     "nodePools": [{"name": "general", "flavor": "SCS-2V-4", "replicas": 1}]}}
    response = harness.http.post(f"{KAAS}/namespaces/{ns}/clusters", json=body)
    assert response.status_code == 201, response.text
    return reachable(harness, ns, name)


def reachable(harness: Harness, ns: str, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = harness.http.get(f"{KAAS}/namespaces/{ns}/clusters/{name}").json()
        up = condition(found, "ControlPlaneReady")
        return found if up and up["status"] == "True" and \
            found["status"].get("apiEndpoint") else None
    return eventually(check, 30, what=f"cluster {name} reachable")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("kubeconfig")
    launcher = Launcher(base)
    audit_log = base / "audit.log"
    try:
        found = World(launcher.start(CONFIG, extra_args=["--audit-log", str(audit_log)]),
                      audit_log)
        yield found
        found.close()
    finally:
        launcher.cleanup()


def admin_request(seconds: object = None) -> dict[str, Any]:
    spec = {} if seconds is None else {"expirationSeconds": seconds}
    return {"apiVersion": API_VERSION, "kind": "AdminKubeconfigRequest", "spec": spec}


def issued(response: httpx.Response, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the answered request object, its decoded kubeconfig)."""
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert answer["kind"] == kind and answer["apiVersion"] == API_VERSION, answer
    return answer, yaml.safe_load(base64.b64decode(answer["status"]["kubeconfig"]))


def only(config: dict[str, Any], section: str) -> dict[str, Any]:
    assert len(config[section]) == 1, config[section]
    return dict(config[section][0][section[:-1]])


def ca_of(config: dict[str, Any]) -> x509.Certificate:
    data = only(config, "clusters")["certificate-authority-data"]
    return x509.load_pem_x509_certificate(base64.b64decode(data))


def client_cert(config: dict[str, Any]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(
        base64.b64decode(only(config, "users")["client-certificate-data"]))


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- the OIDC kubeconfig -----------------------------------------------------------------------
def test_the_oidc_kubeconfig_runs_scs_token_for_the_clusters_issuer_and_holds_no_secret(
        world: World, tmp_path: Path) -> None:
    _, config = issued(world.clients["member"].post(world.path("kubeconfig"), json={
        "apiVersion": API_VERSION, "kind": "KubeconfigRequest"}), "KubeconfigRequest")
    cluster = only(config, "clusters")
    assert cluster["server"] == world.cluster["status"]["apiEndpoint"]
    ca = ca_of(config)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    user = only(config, "users")
    assert set(user) == {"exec"}, user  # no token, no certificate, no key
    assert user["exec"]["command"] == "scs"
    assert user["exec"]["args"] == ["token", "--issuer", OIDC["issuerURL"], "--client-id",
                                    OIDC["clientID"]]
    assert user["exec"]["apiVersion"] == "client.authentication.k8s.io/v1"
    assert config["current-context"] == f"{world.ns}-c1"
    # kubectl reads it as it is (and the empty request body works too)
    _, again = issued(world.clients["tenant-admin"].post(world.path("kubeconfig")),
                      "KubeconfigRequest")
    assert again == config, "the same cluster must give the same kubeconfig"
    path = tmp_path / "c1.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    view = world.harness.kubectl("config", "view", "--raw", "-o", "json", "--kubeconfig",
                                 str(path))
    assert json.loads(view.stdout)["users"][0]["user"]["exec"]["args"][2] == OIDC["issuerURL"]


def test_a_cluster_without_oidc_or_not_reachable_yet_is_a_409_naming_the_field(
        world: World) -> None:
    member = world.clients["member"]
    refused = member.post(world.path("kubeconfig", "plain"))
    assert refused.status_code == 409, refused.text
    assert refused.json()["details"]["causes"][0]["field"] == "spec.oidc", refused.text
    fault = unique("kaas-down")
    store = world.harness.store()
    inject_fault(store, fault, kind="Cluster", operation="create", scope=world.ns,
                 error="BackendUnavailable")
    try:
        body = {"apiVersion": API_VERSION, "kind": "Cluster", "metadata": {"name": "early"},
                "spec": {"kubernetesVersion": "1.33", "oidc": OIDC}}
        assert world.harness.http.post(f"{KAAS}/namespaces/{world.ns}/clusters",
                                       json=body).status_code == 201
        for sub, http in (("kubeconfig", member), ("adminkubeconfig",
                                                    world.clients["tenant-admin"])):
            early = http.post(world.path(sub, "early"), json={})
            assert early.status_code == 409, early.text
            assert early.json()["details"]["causes"][0]["field"] == "status.apiEndpoint"
            assert "not reachable yet" in early.json()["message"]
            assert early.headers.get("retry-after") == "5"
    finally:
        clear_faults(store, fault)
        world.harness.http.delete(f"{KAAS}/namespaces/{world.ns}/clusters/early")
    eventually(lambda: world.harness.http.get(
        f"{KAAS}/namespaces/{world.ns}/clusters/early").status_code == 404,
        what="the cluster early gone")
    missing = member.post(world.path("kubeconfig", "nope"))
    assert missing.status_code == 404, missing.text


# -- the admin kubeconfig ----------------------------------------------------------------------
def test_the_admin_kubeconfig_holds_a_client_certificate_of_the_clusters_ca_for_the_time_asked(
        world: World) -> None:
    asked = dt.datetime.now(dt.UTC)
    answer, config = issued(world.clients["tenant-admin"].post(
        world.path("adminkubeconfig"), json=admin_request(1200)), "AdminKubeconfigRequest")
    expires = parse_time(answer["status"]["expirationTimestamp"])
    assert answer["spec"]["expirationSeconds"] == 1200
    cert, ca = client_cert(config), ca_of(config)
    cert.verify_directly_issued_by(ca)
    assert abs((cert.not_valid_after_utc - asked).total_seconds() - 1200) < 10
    assert abs((cert.not_valid_after_utc - expires).total_seconds()) < 1
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        world.users["tenant-admin"]
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "kubeadm:cluster-admins"
    key = serialization.load_pem_private_key(
        base64.b64decode(only(config, "users")["client-key-data"]), password=None)
    assert key.public_key() == cert.public_key()
    assert only(config, "clusters")["server"] == world.cluster["status"]["apiEndpoint"]
    # one CA per cluster, the same for every kubeconfig of it
    _, oidc = issued(world.clients["member"].post(world.path("kubeconfig")),
                     "KubeconfigRequest")
    assert ca_of(oidc) == ca
    _, plain = issued(world.clients["tenant-admin"].post(world.path("adminkubeconfig", "plain"),
                                                         json=admin_request()),
                      "AdminKubeconfigRequest")
    assert ca_of(plain) != ca


def test_kubectl_create_raw_gets_an_admin_kubeconfig_and_discovery_lists_the_subresources(
        world: World) -> None:
    done = world.harness.kubectl("create", "--raw", world.path("adminkubeconfig"), "-f", "-",
                                 input=json.dumps(admin_request(900)))
    answer = json.loads(done.stdout)
    assert answer["kind"] == "AdminKubeconfigRequest" and answer["status"]["kubeconfig"]
    assert answer["spec"]["expirationSeconds"] == 900
    listed = world.harness.http.get(KAAS).json()["resources"]
    subs = {r["name"]: (r["kind"], r["verbs"]) for r in listed if "/" in r["name"]}
    assert subs["clusters/kubeconfig"] == ("KubeconfigRequest", ["create"])
    assert subs["clusters/adminkubeconfig"] == ("AdminKubeconfigRequest", ["create"])
    explained = world.harness.http.get("/openapi/v3/apis/kaas.scs.community/v1alpha1").json()
    post = explained["paths"][f"{KAAS}/namespaces/{{namespace}}/clusters/{{name}}/"
                              "adminkubeconfig"]["post"]
    assert post["x-kubernetes-group-version-kind"]["kind"] == "AdminKubeconfigRequest"
    schema = explained["components"]["schemas"][
        "community.scs.kaas.v1alpha1.AdminKubeconfigRequest"]
    assert "expirationSeconds" in schema["properties"]["spec"]["properties"]


def test_the_cluster_keeps_its_ca_when_it_changes(world: World) -> None:
    """The backend re-plans a changed cluster; its CA, and every kubeconfig out there, stay."""
    admin = world.clients["tenant-admin"]
    _, before = issued(admin.post(world.path("adminkubeconfig"), json=admin_request()),
                       "AdminKubeconfigRequest")
    scaled = world.harness.http.patch(
        f"{KAAS}/namespaces/{world.ns}/clusters/c1", json=[
            {"op": "replace", "path": "/spec/nodePools/0/replicas", "value": 2}],
        headers={"Content-Type": "application/json-patch+json"})
    assert scaled.status_code == 200, scaled.text

    def rescaled() -> bool:
        found = world.harness.http.get(f"{KAAS}/namespaces/{world.ns}/clusters/c1").json()
        return [p["desiredReplicas"] for p in found["status"].get("nodePools", [])] == [2]
    eventually(rescaled, 30, what="the backend re-planned the cluster")
    _, after = issued(admin.post(world.path("adminkubeconfig"), json=admin_request()),
                      "AdminKubeconfigRequest")
    assert ca_of(after) == ca_of(before)
    client_cert(after).verify_directly_issued_by(ca_of(before))


def test_expiration_defaults_is_clamped_to_the_maximum_and_too_short_is_a_422(
        world: World) -> None:
    admin = world.clients["tenant-admin"]
    for asked, granted in ((None, DEFAULT_SECONDS), (10 * MAX_SECONDS, MAX_SECONDS)):
        before = dt.datetime.now(dt.UTC)
        answer, config = issued(admin.post(world.path("adminkubeconfig"),
                                           json=admin_request(asked)), "AdminKubeconfigRequest")
        assert answer["spec"]["expirationSeconds"] == granted
        lifetime = (client_cert(config).not_valid_after_utc - before).total_seconds()
        assert granted - 5 < lifetime < granted + 10, (asked, lifetime)
    for bad in (599, "3600", -1):
        refused = admin.post(world.path("adminkubeconfig"), json=admin_request(bad))
        assert refused.status_code == 422, refused.text
        causes = refused.json()["details"]["causes"]
        assert causes[0]["field"] == "spec.expirationSeconds", causes
    wrong_kind = admin.post(world.path("adminkubeconfig"), json={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert wrong_kind.status_code == 400, wrong_kind.text
    assert admin.get(world.path("adminkubeconfig")).status_code == 403  # no verb get
    assert world.harness.http.get(world.path("adminkubeconfig")).status_code == 405


# -- who may -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("role", "kubeconfig", "admin"), [
    ("tenant-admin", 201, 201),
    ("member", 201, 403),
    ("viewer", 403, 403),
    ("outsider", 403, 403),
])
def test_roles_decide_who_gets_which_kubeconfig(world: World, role: str, kubeconfig: int,
                                                admin: int) -> None:
    http = world.clients[role]
    for sub, code in (("kubeconfig", kubeconfig), ("adminkubeconfig", admin)):
        assert can_i(http, "create", "clusters", "kaas.scs.community", world.ns, "c1",
                     sub) == (code == 201), f"kubectl auth can-i disagrees on {sub}"
    got = http.post(world.path("kubeconfig"), json={})
    assert got.status_code == kubeconfig, got.text
    got_admin = http.post(world.path("adminkubeconfig"), json=admin_request())
    assert got_admin.status_code == admin, got_admin.text
    for response in (got, got_admin):
        if response.status_code == 403:
            assert response.json()["reason"] == "Forbidden"
            assert "kubeconfig" not in response.json().get("status", {})


def test_only_who_may_get_an_admin_kubeconfig_may_change_whom_a_cluster_trusts(
        world: World) -> None:
    """An issuer of one's own with an empty groupsPrefix signs in as kubeadm:cluster-admins:
    a member who may not get an admin kubeconfig must not get one this way either."""
    body = {"apiVersion": API_VERSION, "kind": "Cluster", "metadata": {"name": "trust"},
            "spec": {"kubernetesVersion": "1.33", "oidc": OIDC, "nodePools": [
                {"name": "general", "flavor": "SCS-2V-4", "replicas": 1}]}}
    created = world.harness.http.post(f"{KAAS}/namespaces/{world.ns}/clusters", json=body)
    assert created.status_code == 201, created.text
    path = f"{KAAS}/namespaces/{world.ns}/clusters/trust"
    merge = {"Content-Type": "application/merge-patch+json"}
    own = {"issuerURL": "https://idp.mine.example", "clientID": "mine", "groupsPrefix": ""}
    try:
        member, admin = world.clients["member"], world.clients["tenant-admin"]
        refused = member.patch(path, json={"spec": {"oidc": own}}, headers=merge)
        assert refused.status_code == 403, refused.text
        assert refused.json()["details"]["causes"][0]["field"] == "spec.oidc", refused.text
        prefix = member.patch(path, json={"spec": {"oidc": {"groupsPrefix": ""}}},
                              headers=merge)
        assert prefix.status_code == 403, prefix.text
        stored = world.harness.http.get(path).json()["spec"]["oidc"]
        assert stored["issuerURL"] == OIDC["issuerURL"] and stored["groupsPrefix"] == "oidc:"
        scaled = member.patch(path, json={"spec": {"nodePools": [
            {"name": "general", "flavor": "SCS-2V-4", "replicas": 2}]}}, headers=merge)
        assert scaled.status_code == 200, scaled.text  # members still run the cluster
        changed = admin.patch(path, json={"spec": {"oidc": own}}, headers=merge)
        assert changed.status_code == 200, changed.text
        dropped = member.patch(path, json={"spec": {"oidc": None}}, headers=merge)
        assert dropped.status_code == 200, dropped.text  # trusting nobody grants nothing
    finally:
        world.harness.http.delete(path)


def test_the_outsider_is_refused_in_its_own_namespace_for_a_cluster_that_is_not_there(
        world: World) -> None:
    """Their own tenant admin role does not make another tenant's cluster theirs: in their
    own namespace the name simply does not exist."""
    outsider = world.clients["outsider"]
    response = outsider.post(world.path("adminkubeconfig", ns=world.other),
                             json=admin_request())
    assert response.status_code == 404, response.text


def test_anonymous_callers_are_401(world: World) -> None:
    with client(world.harness.server, None) as anonymous:
        assert anonymous.post(world.path("adminkubeconfig"),
                              json=admin_request()).status_code == 401


# -- audit and storage -------------------------------------------------------------------------
def test_every_issuance_is_audited_without_the_credential(world: World) -> None:
    answer, config = issued(world.clients["tenant-admin"].post(
        world.path("adminkubeconfig"), json=admin_request(1111)), "AdminKubeconfigRequest")
    key = only(config, "users")["client-key-data"]
    pem_body = base64.b64decode(key).decode().splitlines()[1]

    def line() -> dict[str, Any] | None:
        for raw in world.audit_log.read_text().splitlines():
            event = json.loads(raw)
            notes = event.get("annotations", {})
            if event.get("subresource") == "adminkubeconfig" and event["code"] == 201 and \
                    notes.get("kaas.scs.community/requestedSeconds") == "1111":
                return dict(event)
        return None
    event = eventually(line, 5, what="the audit line of the issuance")
    assert event["user"] == world.users["tenant-admin"]
    assert (event["namespace"], event["name"], event["verb"]) == (world.ns, "c1", "create")
    assert event["annotations"]["kaas.scs.community/kubeconfig"] == "admin"
    assert event["annotations"]["kaas.scs.community/expirationTimestamp"] == \
        answer["status"]["expirationTimestamp"]
    for text in (world.audit_log.read_text(), world.harness.server.log_path.read_text()):
        assert key not in text and pem_body not in text
        assert answer["status"]["kubeconfig"] not in text
    denied = world.clients["viewer"].post(world.path("adminkubeconfig"), json=admin_request())
    assert denied.status_code == 403


def test_issuing_stores_nothing(world: World) -> None:
    """The CA was made with the cluster's first kubeconfig (the tests above); after that,
    issuing writes nothing anywhere: no Secret, no object, no sandbox record."""
    admin, member = world.clients["tenant-admin"], world.clients["member"]
    issued(admin.post(world.path("adminkubeconfig"), json=admin_request()),
           "AdminKubeconfigRequest")
    store = world.harness.store()

    def written_since(revision: int) -> list[Any]:
        return [e.key for e in store.events_since(revision)
                if e.key.resource != "coordination.k8s.io/leases"]

    def quiet() -> int | None:
        """A revision after which nothing but leases was written for a second."""
        revision = store.current_revision()
        time.sleep(1.0)
        return None if written_since(revision) else revision

    revision = eventually(quiet, 30, what="a quiet store")
    for _ in range(3):
        issued(admin.post(world.path("adminkubeconfig"), json=admin_request()),
               "AdminKubeconfigRequest")
        issued(member.post(world.path("kubeconfig")), "KubeconfigRequest")
    assert written_since(revision) == []
