"""Acknowledged writes survive a crash, and replicas on one PostgreSQL share state and watches.

The crash test is what an operator cares about: whatever the server answered ``201 Created``
for must still be there after ``kill -9`` and a restart on the same data directory (SQLite) or
the same database (PostgreSQL).
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from tests.auth.conftest import start_provider
from tests.integration.conftest import (
    TENANTS,
    client_for,
    create_database,
    tenant,
    tls,
    unique,
    wait_for,
)
from tests.oidc import CLIENT_ID, USERS, OidcProvider, device_login
from tests.pg import PostgresServer
from tests.server import TENANTS_AS_PLAIN_OBJECTS, ScsServer

pytestmark = pytest.mark.slow

MIN_ACKED = 100
WRITERS = 4


class Writer(threading.Thread):
    """Creates tenants back to back and records each acknowledged (201) name and version."""

    def __init__(self, server: ScsServer, prefix: str) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.prefix = prefix
        self.acked: dict[str, str] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        with client_for(self.server) as http:
            index = 0
            while not self.stopping.is_set():
                name = f"{self.prefix}-{index:06d}"
                index += 1
                try:
                    response = http.post(TENANTS, json=tenant(name))
                except httpx.HTTPError:
                    return  # the server died mid-request: this write was never acknowledged
                if response.status_code == 201:
                    self.acked[name] = response.json()["metadata"]["resourceVersion"]


def crash_and_restart(data_dir: Path, store: str = "") -> dict[str, str]:
    """SIGKILL the server while clients are writing; returns the acknowledged writes.

    Several client threads keep requests in flight, so the kill lands in the middle of
    transactions and of responses, not between them."""
    first = ScsServer(data_dir=data_dir, store=store, config=TENANTS_AS_PLAIN_OBJECTS).start()
    writers = [Writer(first, f"crash-{i}") for i in range(WRITERS)]
    try:
        for writer in writers:
            writer.start()
        wait_for(lambda: sum(len(w.acked) for w in writers) >= MIN_ACKED, timeout=60,
                 what=f"{MIN_ACKED} acknowledged creates")
        first.kill()
        for writer in writers:
            writer.join(15)
            assert not writer.is_alive(), "a client did not notice the crash"
    finally:
        for writer in writers:
            writer.stopping.set()
        first.kill()
    return {name: rv for writer in writers for name, rv in writer.acked.items()}


def assert_all_present(server: ScsServer, acked: dict[str, str]) -> None:
    with client_for(server) as http:
        listed = http.get(TENANTS)
        assert listed.status_code == 200, listed.text
        found = {t["metadata"]["name"]: t for t in listed.json()["items"]}
        missing = sorted(set(acked) - set(found))
        assert not missing, f"{len(missing)} acknowledged creates lost, e.g. {missing[:5]}"
        for name, rv in acked.items():
            assert found[name]["metadata"]["resourceVersion"] == rv
            assert found[name]["spec"]["displayName"] == f"Tenant {name}"
        # The restarted server keeps writing after the last acknowledged revision.
        later = http.post(TENANTS, json=tenant(unique("after-crash")))
        assert later.status_code == 201, later.text
        assert int(later.json()["metadata"]["resourceVersion"]) > max(map(int, acked.values()))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="scs-crash-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_sqlite_keeps_every_acknowledged_create_across_sigkill(data_dir: Path) -> None:
    acked = crash_and_restart(data_dir)

    restarted = ScsServer(data_dir=data_dir, config=TENANTS_AS_PLAIN_OBJECTS).start()
    try:
        assert_all_present(restarted, acked)
    finally:
        restarted.stop()


def test_postgresql_keeps_every_acknowledged_create_across_sigkill(
        data_dir: Path, postgres_server: PostgresServer) -> None:
    store = create_database(postgres_server)
    acked = crash_and_restart(data_dir, store)

    restarted = ScsServer(data_dir=data_dir, store=store,
                          config=TENANTS_AS_PLAIN_OBJECTS).start()
    try:
        assert_all_present(restarted, acked)
    finally:
        restarted.stop()


# -- two replicas on one PostgreSQL -----------------------------------------------------------

@dataclass
class Replicas:
    a: ScsServer
    b: ScsServer
    store: str


@pytest.fixture(scope="module")
def oidc_idp() -> Iterator[OidcProvider]:
    """A tenant's own OpenID provider (https on 127.0.0.1 with its own CA)."""
    provider = start_provider(tls=True)
    try:
        yield provider
    finally:
        provider.cleanup()


@pytest.fixture(scope="module")
def replicas(postgres_server: PostgresServer, oidc_idp: OidcProvider) -> Iterator[Replicas]:
    """Two ``scs serve`` processes on one PostgreSQL database.

    Each has its own data dir (own CA and admin token); they share the encryption key and the
    ServiceAccount issuer with its signing keys, as replicas must so that each can read the
    Secrets the other wrote and accept the tokens the other issued. Both trust tenant IdPs on
    loopback (the lab setting) with the test IdP's CA, for the IdentityProvider test. Tenants
    are plain objects here (no onboarding controller writing them or their namespaces), so
    what one replica wrote is exactly what the other reads."""
    store = create_database(postgres_server)
    b_dir = Path(tempfile.mkdtemp(prefix="scs-replica-"))
    config = b_dir / "federation.yaml"
    config.write_text(yaml.safe_dump({**TENANTS_AS_PLAIN_OBJECTS,
                                      "federation": {"allowPrivateIssuers": True,
                                                     "caFile": str(oidc_idp.verify)}}))
    args = ["--service-account-issuer", "https://scs.replicas.test", "--config", str(config)]
    a = ScsServer(store=store, extra_args=args)
    b = ScsServer(data_dir=b_dir, store=store, extra_args=args)
    try:
        a.start()
        shutil.copy2(a.data_dir / "encryption.key", b_dir / "encryption.key")
        shutil.copytree(a.data_dir / "sa-signing", b_dir / "sa-signing")  # one token issuer
        b.start()
        yield Replicas(a, b, store)
    finally:
        a.cleanup()
        b.cleanup()
        shutil.rmtree(b_dir, ignore_errors=True)


def test_an_object_created_through_one_replica_is_readable_through_the_other(
        replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    name = unique("shared")
    with client_for(a) as via_a, client_for(b) as via_b:
        created = via_a.post(TENANTS, json=tenant(name))
        assert created.status_code == 201, created.text

        read = via_b.get(f"{TENANTS}/{name}")

        assert read.status_code == 200, read.text
        assert read.json()["metadata"]["uid"] == created.json()["metadata"]["uid"]
        assert read.json()["metadata"]["resourceVersion"] == \
            created.json()["metadata"]["resourceVersion"]
        assert name in {t["metadata"]["name"] for t in via_b.get(TENANTS).json()["items"]}


def test_a_watch_on_one_replica_sees_a_write_made_through_the_other(
        replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    name = unique("watched")
    with client_for(a) as via_a, client_for(b) as via_b:
        start = via_b.get(TENANTS).json()["metadata"]["resourceVersion"]
        with via_b.stream("GET", TENANTS, params={"watch": "true", "resourceVersion": start,
                                                  "timeoutSeconds": "10"}) as stream:
            assert stream.status_code == 200
            written = time.monotonic()
            assert via_a.post(TENANTS, json=tenant(name)).status_code == 201
            seen = None
            for line in stream.iter_lines():
                event = json.loads(line) if line.strip() else None
                if event and event["object"]["metadata"]["name"] == name:
                    seen = event
                    break
        latency = time.monotonic() - written

    assert seen is not None, "the watch on replica B ended without the write made via A"
    assert seen["type"] == "ADDED"
    assert latency < 5


WIDGET_CRD = Path(__file__).resolve().parents[1] / "kubectl" / "manifests" / "widget-crd.yaml"


def test_a_crd_created_through_one_replica_is_served_by_the_other_within_a_second(
        replicas: Replicas) -> None:
    """Issue 20: only the writing replica reloaded CRDs; the other listed the CRD but
    answered 404 for its kind. Every replica now follows CRDs from the watch."""
    crd = yaml.safe_load(WIDGET_CRD.read_text())
    crd["metadata"]["name"] = "gadgets.replicas.scs.community"
    crd["spec"]["group"] = "replicas.scs.community"
    crd["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                            "listKind": "GadgetList"}
    path = "/apis/replicas.scs.community/v1/namespaces/default/gadgets"
    with client_for(replicas.a) as via_a, client_for(replicas.b) as via_b:
        assert via_b.get(path).status_code == 404
        created = via_a.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                             json=crd)
        assert created.status_code == 201, created.text
        wait_for(lambda: via_b.get(path).status_code == 200, timeout=1.0,
                 what="replica B to serve the CRD's kind")
        assert via_a.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                            f"{crd['metadata']['name']}").status_code == 200
        wait_for(lambda: via_b.get(path).status_code == 404, timeout=5.0,
                 what="replica B to stop serving the deleted CRD's kind")


def test_a_role_binding_made_through_one_replica_takes_effect_on_the_other_within_a_second(
        replicas: Replicas) -> None:
    name = unique("robot")
    with client_for(replicas.a) as via_a:
        assert via_a.post("/api/v1/namespaces/default/serviceaccounts",
                          json={"metadata": {"name": name}}).status_code == 201
        token = via_a.post(f"/api/v1/namespaces/default/serviceaccounts/{name}/token", json={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
        assert token.status_code == 201, token.text
        robot_b = httpx.Client(base_url=replicas.b.url, verify=tls(replicas.b),
                               timeout=30, headers={"Authorization":
                                                    f"Bearer {token.json()['status']['token']}"})
        with robot_b:
            assert robot_b.get("/api/v1/namespaces/default/serviceaccounts").status_code == 403
            binding = {"metadata": {"name": name},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                   "kind": "ClusterRole", "name": "viewer"},
                       "subjects": [{"kind": "ServiceAccount", "name": name,
                                     "namespace": "default"}]}
            assert via_a.post("/apis/rbac.authorization.k8s.io/v1/namespaces/default/"
                              "rolebindings", json=binding).status_code == 201
            wait_for(lambda: robot_b.get("/api/v1/namespaces/default/serviceaccounts")
                     .status_code == 200, timeout=1.0, what="the binding to take effect on B")


def test_an_identity_provider_registered_through_one_replica_logs_in_on_the_other_within_a_second(
        replicas: Replicas, oidc_idp: OidcProvider) -> None:
    """Issue 20: every replica learns tenant IdP registrations from the watch."""
    acme = unique("acme")
    token = device_login(oidc_idp, "alice")["id_token"]
    alice_b = httpx.Client(base_url=replicas.b.url, verify=tls(replicas.b), timeout=30,
                           headers={"Authorization": f"Bearer {token}"})
    whoami = ("/apis/authentication.k8s.io/v1/selfsubjectreviews",
              {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    with client_for(replicas.a) as via_a, alice_b:
        assert via_a.post(TENANTS, json=tenant(acme)).status_code == 201
        assert via_a.post("/api/v1/namespaces", json={"metadata": {
            "name": acme, "labels": {"tenancy.scs.community/tenant": acme}}}).status_code == 201
        assert alice_b.post(whoami[0], json=whoami[1]).status_code == 401

        idp = {"apiVersion": "iam.scs.community/v1alpha1", "kind": "IdentityProvider",
               "metadata": {"name": "corp"},
               "spec": {"issuerURL": oidc_idp.issuer, "clientID": CLIENT_ID,
                        "claimMappings": {"username": "email", "groups": "groups"}}}
        created = via_a.post(f"/apis/iam.scs.community/v1alpha1/namespaces/{acme}/"
                             "identityproviders", json=idp)
        assert created.status_code == 201, created.text

        accepted = wait_for(lambda: alice_b.post(whoami[0], json=whoami[1]).status_code == 201
                            or None, timeout=1.0, what="replica B to trust the new issuer")
        assert accepted
        info = alice_b.post(whoami[0], json=whoami[1]).json()["status"]["userInfo"]
        assert info["username"] == f"{acme}:{USERS['alice']['email']}"


def test_a_secret_written_through_one_replica_is_readable_through_the_other(
        replicas: Replicas) -> None:
    path = "/api/v1/namespaces/default/secrets"
    name = unique("shared-secret")
    with client_for(replicas.a) as via_a, client_for(replicas.b) as via_b:
        created = via_a.post(path, json={"metadata": {"name": name},
                                         "stringData": {"password": "s3cret"}})
        assert created.status_code == 201, created.text

        read = via_b.get(f"{path}/{name}")

    assert read.status_code == 200, read.text
    assert base64.b64decode(read.json()["data"]["password"]) == b"s3cret"


def test_secret_values_are_not_stored_in_plain_text_in_postgresql(replicas: Replicas) -> None:
    value = f"pg-hunter2-{unique('pw')}"
    name = unique("pg-secret")
    with client_for(replicas.a) as via_a:
        created = via_a.post("/api/v1/namespaces/default/secrets", json={
            "metadata": {"name": name}, "stringData": {"password": value}})
        assert created.status_code == 201, created.text

    with psycopg.connect(replicas.store) as conn:
        rows = conn.execute("SELECT value FROM kv WHERE name = %s", (name,)).fetchall()

    assert rows, "the secret row was not found in the kv table"
    for (raw,) in rows:
        stored = bytes(raw)
        assert value.encode() not in stored
        assert base64.b64encode(value.encode()) not in stored


def test_a_replica_with_another_encryption_key_refuses_to_start(replicas: Replicas) -> None:
    with client_for(replicas.a) as via_a:
        assert via_a.post("/api/v1/namespaces/default/secrets", json={
            "metadata": {"name": unique("keyed")}, "stringData": {"k": "v"}}).status_code == 201
    stranger = ScsServer(store=replicas.store)
    try:
        with pytest.raises(RuntimeError, match="another encryption key"):
            stranger.start()
    finally:
        stranger.cleanup()


def test_a_shared_key_file_lets_a_replica_read_secrets(replicas: Replicas) -> None:
    name = unique("shared-key")
    with client_for(replicas.a) as via_a:
        assert via_a.post("/api/v1/namespaces/default/secrets", json={
            "metadata": {"name": name}, "stringData": {"k": "v"}}).status_code == 201
    key = replicas.a.data_dir / "encryption.key"
    third = ScsServer(store=replicas.store, extra_args=["--encryption-key-file", str(key)])
    try:
        third.start()
        with client_for(third) as via_third:
            read = via_third.get(f"/api/v1/namespaces/default/secrets/{name}")
        assert read.status_code == 200 and read.json()["data"]["k"] == "dg=="
    finally:
        third.cleanup()
