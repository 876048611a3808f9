"""No blocking store call on the event loop (issue 20 item 4), checked on a real server.

``scs serve`` runs on a real PostgreSQL with the loop guard on (``SCS_LOOP_GUARD=1``,
``central_api/store/guard.py``): every store call made from the thread that runs the event
loop is logged at ERROR with its call chain. The tests drive each path that reaches the store
— resource handlers, watches, tokens, reviews, ServiceAccount authentication, the IaaS
controllers on the sandbox, garbage collection and tenancy — and fail on any such line, so a
blocking call that comes back is named by file and function.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from central_api.registry import watch
from central_api.registry.watch import WatchHub
from central_api.store import open_store
from central_api.store.base import Compacted, Key, Store
from central_api.store.guard import ENV, MESSAGE, LoopGuard, install
from tests.integration.conftest import (
    client_for,
    create_database,
    tenant,
    tls,
    unique,
    wait_for,
)
from tests.pg import PostgresServer
from tests.server import ScsServer

CONFIG: dict[str, Any] = {"services": ["tenancy", "iaas", "kaas"],
                          "providers": {"iaas": {"type": "sandbox", "speed": 10},
                                        "kaas": {"type": "sandbox", "speed": 20}}}
KAAS = "/apis/kaas.scs.community/v1alpha1"
IAAS = "/apis/iaas.scs.community/v1alpha1"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
AUTHN = "/apis/authentication.k8s.io/v1"
AUTHZ = "/apis/authorization.k8s.io/v1"
TENANTS = "/apis/tenancy.scs.community/v1alpha1/tenants"
TENANT_LABEL = "tenancy.scs.community/tenant"
GUARD_LINE = re.compile(re.escape(MESSAGE) + r": (?P<site>.+?) \(further calls")


@pytest.fixture
def guarded(postgres_server: PostgresServer) -> Iterator[tuple[Store, LoopGuard]]:
    """A PostgreSQL store in this process with a guard of its own."""
    store = open_store(create_database(postgres_server))
    try:
        yield store, install(store)
    finally:
        store.close()


def test_the_guard_counts_calls_on_the_loop_only(guarded: tuple[Store, LoopGuard]) -> None:
    store, guard = guarded

    async def main() -> None:
        store.current_revision()  # on the loop: reported
        list(store.iter_list("core/secrets", None, 0, None, 10))
        await asyncio.to_thread(store.current_revision)  # in a worker thread: fine

    asyncio.run(main())
    store.current_revision()  # no loop at all: fine
    assert list(guard.calls) == ["<outside central_api> -> current_revision",
                                 "<outside central_api> -> iter_list"]


def test_the_guard_is_off_unless_switched_on(postgres_server: PostgresServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    store = open_store(create_database(postgres_server))
    try:
        assert "get" not in vars(store)  # the class' method: nothing wrapped, nothing paid
    finally:
        store.close()


def test_a_watch_from_before_the_hubs_memory_is_gap_free_and_off_the_loop(
        guarded: tuple[Store, LoopGuard], monkeypatch: pytest.MonkeyPatch) -> None:
    """History older than memory is read in a worker thread while writes go on; the replay
    and the live stream join without a gap or a duplicate."""
    store, guard = guarded
    monkeypatch.setattr(watch, "HISTORY_EVENTS", 3)
    start = store.current_revision()
    hub = WatchHub(store)

    def write(first: int, last: int) -> None:
        for i in range(first, last):
            store.create(Key("core/secrets", "ns", f"s{i}"), {"n": i})

    async def main() -> list[int]:
        hub.start()
        try:
            await asyncio.to_thread(write, 0, 10)
            while hub.revision < start + 10:
                await asyncio.sleep(0.01)
            writer = asyncio.create_task(asyncio.to_thread(write, 10, 40))
            sub = await hub.asubscribe("core/secrets", "ns", start)
            await writer
            events = [await asyncio.wait_for(sub.wait(), 5) for _ in range(40)]
            return [event.object["n"] for event in events if event is not None]
        finally:
            await hub.stop()

    assert asyncio.run(main()) == list(range(40))
    assert not guard.calls


def test_a_watch_ahead_of_the_hub_skips_what_the_hub_delivers_up_to_its_start(
        guarded: tuple[Store, LoopGuard]) -> None:
    """The hub does not read the store to catch up first (it did, on the loop)."""
    store, _ = guarded
    hub = WatchHub(store)
    for i in range(3):
        store.create(Key("core/secrets", "ns", f"s{i}"), {"n": i})
    sub = hub.subscribe("core/secrets", "ns", hub.revision + 2)
    hub.pump()
    event = sub.take()
    assert event is not None and event.object["n"] == 2 and sub.take() is None


def test_a_watch_from_a_compacted_revision_is_refused_off_the_loop(
        guarded: tuple[Store, LoopGuard]) -> None:
    """Replayed from memory, a compacted revision is still 410 Gone, as from the store."""
    store, guard = guarded
    start = store.current_revision()
    hub = WatchHub(store)
    key = Key("core/secrets", "ns", "s")

    def write_and_compact() -> None:
        store.create(key, {"n": 0})
        store.update(key, {"n": 1}, None)

    async def main() -> None:
        hub.start()
        try:
            await asyncio.to_thread(write_and_compact)
            while hub.revision < start + 2:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(store.compact, hub.revision)
            with pytest.raises(Compacted):
                await hub.asubscribe("core/secrets", "ns", start)
        finally:
            await hub.stop()

    asyncio.run(main())
    assert not guard.calls


@pytest.fixture(scope="module")
def server(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ScsServer]:
    """``scs serve`` on its own PostgreSQL database, with the sandbox cloud and the guard."""
    config = tmp_path_factory.mktemp("guard") / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    srv = ScsServer(store=create_database(postgres_server),
                    extra_args=["--config", str(config), "--rate-limit", "100000",
                                "--rate-burst", "100000"])
    with pytest.MonkeyPatch.context() as env:
        env.setenv(ENV, "1")
        try:
            srv.start()
        except Exception:
            srv.cleanup()
            raise
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def admin(server: ScsServer) -> Iterator[httpx.Client]:
    with client_for(server) as http:
        yield http


def blocking_calls(server: ScsServer) -> list[str]:
    """The call chains the guard reported in the server's log so far."""
    text = Path(server.log_path).read_text(errors="replace")
    return [match["site"] for match in GUARD_LINE.finditer(text)]


def assert_loop_never_blocked(server: ScsServer) -> None:
    found = blocking_calls(server)
    assert not found, "store calls on the event loop (coroutine > ... > store method):\n" + \
        "\n".join(found)


def ok(response: httpx.Response, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (200, 201)), \
        f"{response.request.method} {response.request.url.path}: {response.status_code} " \
        f"{response.text[:400]}"
    return dict(response.json())


def namespace(admin: httpx.Client, tenant_name: str = "") -> str:
    name = unique("guard")
    meta: dict[str, Any] = {"name": name}
    if tenant_name:
        meta["labels"] = {TENANT_LABEL: tenant_name}
    ok(admin.post("/api/v1/namespaces", json={"metadata": meta}))
    return name


def secret(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, **meta},
            "stringData": {"k": "v"}}


def test_the_server_under_test_runs_with_the_guard(server: ScsServer) -> None:
    """Else every test below would pass without looking."""
    environ = Path(f"/proc/{server.proc.pid}/environ").read_bytes() if server.proc else b""
    assert f"{ENV}=1".encode() in environ.split(b"\0")


def test_resource_handlers(server: ScsServer, admin: httpx.Client) -> None:
    ns = namespace(admin)
    base = f"/api/v1/namespaces/{ns}/secrets"
    ok(admin.post(base, json=secret("a", labels={"app": "x"})))
    ok(admin.post(base, json=secret("big", annotations={"pad": "x" * 20_000})))
    current = ok(admin.get(f"{base}/a"))
    ok(admin.put(f"{base}/a", json={**current, "stringData": {"k": "w"}}))
    ok(admin.patch(f"{base}/a", json={"stringData": {"m": "1"}},
                   headers={"Content-Type": "application/merge-patch+json"}))
    ok(admin.patch(f"{base}/a", json=[{"op": "add", "path": "/data/j", "value": "Mg=="}],
                   headers={"Content-Type": "application/json-patch+json"}))
    ok(admin.patch(f"{base}/a", json={"stringData": {"s": "3"}},
                   headers={"Content-Type": "application/strategic-merge-patch+json"}))
    ok(admin.patch(f"{base}/applied?fieldManager=test", json=secret("applied"),
                   headers={"Content-Type": "application/apply-patch+yaml"}))
    ok(admin.get(base, params={"labelSelector": "app=x"}))
    page = ok(admin.get(base, params={"limit": "1"}))
    ok(admin.get(base, params={"limit": "1", "continue": page["metadata"]["continue"]}))
    ok(admin.get(base, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}))
    ok(admin.delete(f"{base}/a"))
    ok(admin.delete(base, params={"labelSelector": "app=x"}))
    assert_loop_never_blocked(server)


def test_watches(server: ScsServer, admin: httpx.Client) -> None:
    ns = namespace(admin)
    base = f"/api/v1/namespaces/{ns}/secrets"
    first = ok(admin.post(base, json=secret("w0")))["metadata"]["resourceVersion"]
    for i in range(1, 4):
        ok(admin.post(base, json=secret(f"w{i}")))
    for params in ({"watch": "1", "timeoutSeconds": "1"},
                   {"watch": "1", "timeoutSeconds": "1", "resourceVersion": first},
                   {"watch": "1", "timeoutSeconds": "1", "resourceVersion": "1"},
                   {"watch": "1", "timeoutSeconds": "1", "labelSelector": "a=b",
                    "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
                    "allowWatchBookmarks": "true"}):
        with admin.stream("GET", base, params=params) as response:
            assert response.status_code == 200, params
            frames = [line for line in response.iter_lines() if line]
        assert frames or "labelSelector" in params, params
    assert_loop_never_blocked(server)


def test_tokens_reviews_and_service_account_authentication(server: ScsServer,
                                                           admin: httpx.Client) -> None:
    ns = namespace(admin)
    for name in ("requester", "target"):
        ok(admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts",
                      json={"metadata": {"name": name}}))
    ok(admin.post(f"{RBAC}/namespaces/{ns}/roles", json={
        "metadata": {"name": "mint"}, "rules": [{
            "apiGroups": [""], "resources": ["serviceaccounts", "serviceaccounts/token"],
            "verbs": ["get", "create"]}]}))
    ok(admin.post(f"{RBAC}/namespaces/{ns}/rolebindings", json={
        "metadata": {"name": "mint"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mint"},
        "subjects": [{"kind": "ServiceAccount", "name": "requester", "namespace": ns}]}))
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    token = ok(admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts/requester/token",
                          json=request))["status"]["token"]
    with httpx.Client(base_url=server.url, verify=tls(server), timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as account:
        target = f"/api/v1/namespaces/{ns}/serviceaccounts/target"
        wait_for(lambda: account.get(target).status_code == 200 or None,
                 what="the binding in effect (RBAC follows its informer)")
        ok(account.post(f"/api/v1/namespaces/{ns}/serviceaccounts/target/token",
                        json=request))
        ok(account.post(f"{AUTHN}/selfsubjectreviews",
                        json={"apiVersion": "authentication.k8s.io/v1",
                              "kind": "SelfSubjectReview"}))
        review = ok(account.post(f"{AUTHZ}/selfsubjectaccessreviews", json={
            "spec": {"resourceAttributes": {"verb": "get", "resource": "serviceaccounts",
                                            "namespace": ns}}}))
        assert review["status"]["allowed"] is True
        ok(account.post(f"{AUTHZ}/selfsubjectrulesreviews", json={"spec": {"namespace": ns}}))
    assert_loop_never_blocked(server)


def test_controllers_on_the_sandbox(server: ScsServer, admin: httpx.Client) -> None:
    ns = namespace(admin)
    base = f"{IAAS}/namespaces/{ns}/networks"
    ok(admin.post(base, json={"apiVersion": "iaas.scs.community/v1alpha1", "kind": "Network",
                              "metadata": {"name": "net"}, "spec": {}}))
    ok(admin.post(f"{IAAS}/namespaces/{ns}/subnets", json={
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Subnet",
        "metadata": {"name": "sub"}, "spec": {"networkRef": {"name": "net"},
                                              "cidr": "10.0.0.0/24"}}))
    for plural, name in (("networks", "net"), ("subnets", "sub")):
        wait_for(lambda p=plural, n=name: _ready(admin, f"{IAAS}/namespaces/{ns}/{p}/{n}"),
                 timeout=30, what=f"{plural}/{name} Ready")
    ok(admin.delete(f"{IAAS}/namespaces/{ns}/subnets/sub"))
    ok(admin.delete(f"{base}/net"))
    wait_for(lambda: admin.get(f"{base}/net").status_code == 404 or None, timeout=30,
             what="the network gone")
    assert_loop_never_blocked(server)


def _ready(admin: httpx.Client, path: str) -> bool | None:
    conditions = (admin.get(path).json().get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in conditions) or None


def test_garbage_collection(server: ScsServer, admin: httpx.Client) -> None:
    ns = namespace(admin)
    base = f"/api/v1/namespaces/{ns}/secrets"
    for policy in ("Background", "Foreground"):
        owner = ok(admin.post(base, json=secret(f"owner-{policy.lower()}")))
        ref = {"apiVersion": "v1", "kind": "Secret", "name": owner["metadata"]["name"],
               "uid": owner["metadata"]["uid"]}
        dependent = f"dependent-{policy.lower()}"
        ok(admin.post(base, json=secret(dependent, ownerReferences=[ref])))
        ok(admin.request("DELETE", f"{base}/{ref['name']}",
                         json={"propagationPolicy": policy}))
        wait_for(lambda d=dependent: admin.get(f"{base}/{d}").status_code == 404 or None,
                 timeout=20, what=f"the {policy} dependent collected")
    ok(admin.delete(f"/api/v1/namespaces/{ns}"))
    wait_for(lambda: admin.get(f"/api/v1/namespaces/{ns}").status_code == 404 or None,
             timeout=20, what="the namespace terminated")
    assert_loop_never_blocked(server)


def test_tenancy(server: ScsServer, admin: httpx.Client) -> None:
    name = unique("tn")
    ok(admin.post(TENANTS, json=tenant(name, admins=["alice@example.com"])))
    ns = namespace(admin, name)
    wait_for(lambda: admin.get(f"{RBAC}/namespaces/{ns}/rolebindings").json()["items"] or None,
             timeout=20, what="the tenant-access controller's bindings")
    wait_for(lambda: (ok(admin.get(f"{TENANTS}/{name}")).get("status") or {}).get("apiUsage"),
             timeout=20, what="the tenant's usage report")
    ok(admin.delete(f"{TENANTS}/{name}"))
    assert_loop_never_blocked(server)


def test_kaas_admission_kubeconfigs_and_the_cluster_controller(server: ScsServer,
                                                                admin: httpx.Client) -> None:
    """Cluster admission (quota, OIDC default, trust), the KaaS controller on the sandbox,
    and both kubeconfig subresources."""
    name = unique("kt")
    ok(admin.post(TENANTS, json=tenant(name, admins=["alice@example.com"])))
    ok(admin.patch(f"{TENANTS}/{name}", json={"spec": {
        "quotas": {"clusters": 2, "cores": 40, "ramMiB": 81920},
        "federation": {"issuerURL": "https://idp.example.test", "clientID": "scs"}}},
        headers={"Content-Type": "application/merge-patch+json"}))
    ns = namespace(admin, name)
    base = f"{KAAS}/namespaces/{ns}/clusters"
    ok(admin.post(base, json={
        "apiVersion": "kaas.scs.community/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "c1"}, "spec": {"kubernetesVersion": "1.33", "nodePools": [
            {"name": "general", "flavor": "SCS-2V-4", "replicas": 1}]}}))

    def reachable() -> bool | None:
        return bool((admin.get(f"{base}/c1").json().get("status") or {}).get(
            "apiEndpoint")) or None
    wait_for(reachable, timeout=30, what="the cluster's endpoint")
    ok(admin.post(f"{base}/c1/kubeconfig", json={}))
    ok(admin.post(f"{base}/c1/adminkubeconfig", json={}))
    ok(admin.patch(f"{base}/c1", json={"spec": {"oidc": {
        "issuerURL": "https://other.example.test", "clientID": "k8s"}}},
        headers={"Content-Type": "application/merge-patch+json"}))
    ok(admin.delete(f"{base}/c1"))
    wait_for(lambda: admin.get(f"{base}/c1").status_code == 404 or None, timeout=30,
             what="the cluster gone")
    assert_loop_never_blocked(server)


def test_custom_resource_definitions(server: ScsServer, admin: httpx.Client) -> None:
    group = f"{unique('g')}.example.com"
    ok(admin.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json={
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields":
                                         True}}}]}}))
    widgets = f"/apis/{group}/v1/namespaces/default/widgets"
    wait_for(lambda: admin.get(widgets).status_code == 200 or None, what="the CRD served")
    ok(admin.post(widgets, json={"apiVersion": f"{group}/v1", "kind": "Widget",
                                 "metadata": {"name": "w"}, "spec": {"size": 1}}))
    ok(admin.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}"))
    assert_loop_never_blocked(server)

