"""The SDK against a real ``scs serve``: typed CRUD, lists, watches, apply, deletion with
finalizers, waiting, and each refusal as its exception carrying the server's Status."""

from __future__ import annotations

import threading
import time

import pytest

from central_api.client import (
    ALL_NAMESPACES,
    AlreadyExists,
    ApiError,
    Client,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ObjectMeta,
    WaitTimeout,
)
from central_api.client import api as sdk_api
from central_api.kinds.common import LocalRef
from central_api.kinds.core import Namespace, Secret
from central_api.kinds.iaas import Network, NetworkSpec, Server, ServerSpec, Subnet, SubnetSpec
from central_api.kinds.tenancy import Tenant, TenantSpec
from tests.client.conftest import service_account_token, token_client
from tests.integration.conftest import unique
from tests.server import ScsServer

pytestmark = pytest.mark.slow


def network(name: str, namespace: str, description: str = "") -> Network:
    return Network(metadata={"name": name, "namespace": namespace},
                   spec=NetworkSpec(description=description))


def test_a_tenant_is_created_read_changed_and_deleted_as_its_model(client: Client) -> None:
    name = unique("crud")
    created = client.create(Tenant(metadata={"name": name, "labels": {"tier": "gold"}},
                                   spec=TenantSpec(displayName="Typed Corp")))
    read = client.get(Tenant, name)
    updated = client.modify(Tenant, name, lambda t: setattr(t.spec, "contact",
                                                            "noc@typed.example"))
    patched = client.patch(Tenant, name, {"spec": {"displayName": "Typed Renamed"}})
    gold = client.list(Tenant, label_selector="tier=gold")

    assert isinstance(created, Tenant) and isinstance(read, Tenant)
    assert created.spec.enabledServices == ["iaas", "iam"]  # the server's defaults
    assert updated.spec.contact == "noc@typed.example"
    assert patched.spec.displayName == "Typed Renamed" and patched.metadata.generation == 3
    assert name in {t.metadata.name for t in gold.items} and gold.resource_version
    client.patch(Tenant, name, {"metadata": {"annotations": {  # offboarding is confirmed
        "tenancy.scs.community/confirm-deletion": name}}})
    client.delete(Tenant, name, wait=True, timeout=60)  # onboarding added a finalizer
    assert client.find(Tenant, name) is None


def test_update_keeps_the_finalizers_the_model_does_not_declare(client: Client,
                                                                tenant: str) -> None:
    created = client.create(Secret(metadata=ObjectMeta(
        name=unique("fin"), namespace=tenant, finalizers=["example.com/hold"])))
    created.metadata.labels["changed"] = "yes"
    updated = client.update(created)

    assert updated.metadata.finalizers == ["example.com/hold"]
    client.patch(Secret, created.metadata.name, {"metadata": {"finalizers": None}}, tenant)


def test_a_namespace_is_deleted_once_its_finalizer_ran(client: Client) -> None:
    name = unique("ns")
    client.create(Namespace(metadata={"name": name}))
    client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "stringData": {"k": "v"}}, namespace=name)

    client.delete(Namespace, name, wait=True, timeout=30)

    assert client.find(Namespace, name) is None


def test_a_server_in_the_sandbox_becomes_ready(client: Client, tenant: str) -> None:
    client.create(network("net", tenant))
    client.create(Subnet(metadata={"name": "net-v4", "namespace": tenant},
                         spec=SubnetSpec(networkRef=LocalRef(name="net"), cidr="10.1.0.0/24")))
    server = client.create(Server(metadata={"name": unique("vm"), "namespace": tenant},
                                  spec=ServerSpec(flavor="SCS-2V-4", image="ubuntu-24.04",
                                                  networks=[LocalRef(name="net")])))

    ready = client.wait_ready(server, timeout=30)

    assert isinstance(ready, Server)
    assert ready.status.is_true("Ready") and ready.status.addresses


def test_wait_ready_names_the_last_condition_when_it_times_out(client: Client,
                                                               tenant: str) -> None:
    server = client.create(Server(metadata={"name": unique("lost"), "namespace": tenant},
                                  spec=ServerSpec(flavor="SCS-2V-4", image="ubuntu-24.04",
                                                  networks=[LocalRef(name="missing")])))

    with pytest.raises(WaitTimeout) as caught:
        client.wait_ready(server, timeout=3)

    ready = caught.value.last.status.condition("Ready")
    assert ready is not None and ready.status == "False"
    assert f"reason={ready.reason}" in str(caught.value)
    assert server.metadata.name in str(caught.value)


def test_wait_for_returns_once_the_predicate_holds(client: Client, tenant: str) -> None:
    name = unique("later")
    client.create(network(name, tenant))
    threading.Timer(1.0, client.patch, (Network, name, {"metadata": {"labels": {
        "phase": "two"}}}, tenant)).start()

    found = client.wait_for(Network, name, lambda n: n is not None and
                            n.metadata.labels.get("phase") == "two", tenant, timeout=10)

    assert found.metadata.labels["phase"] == "two"


def test_watch_resumes_from_a_resource_version_across_streams(
        client: Client, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk_api, "WATCH_CHUNK", 1)  # the server ends each stream after 1 s
    label = unique("w")
    first = client.create(Secret(metadata={"name": f"{label}-1", "namespace": tenant,
                                           "labels": {"set": label}}))

    def later() -> None:
        time.sleep(1.5)
        client.create(Secret(metadata={"name": f"{label}-2", "namespace": tenant,
                                       "labels": {"set": label}}))
        time.sleep(1.0)
        client.patch(Secret, f"{label}-1", {"stringData": {"k": "v"}}, tenant)
        client.delete(Secret, f"{label}-1", tenant)

    threading.Thread(target=later).start()
    events = list(client.watch(Secret, tenant, resource_version=first.metadata.resourceVersion,
                               label_selector=f"set={label}", timeout=5, bookmarks=False))

    assert [(e.type, e.object.metadata.name) for e in events] == [
        ("ADDED", f"{label}-2"), ("MODIFIED", f"{label}-1"), ("DELETED", f"{label}-1")]
    versions = [int(e.resource_version) for e in events]
    assert versions == sorted(set(versions))  # nothing replayed when a stream resumed


def test_a_watch_without_resource_version_starts_with_the_current_objects(
        client: Client, tenant: str) -> None:
    name = unique("now")
    client.create(Secret(metadata={"name": name, "namespace": tenant}))

    events = list(client.watch(Secret, tenant, field_selector=f"metadata.name={name}",
                               timeout=1))

    assert [(e.type, e.object.metadata.name) for e in events] == [("ADDED", name)]


def test_lists_follow_every_page(client: Client, tenant: str) -> None:
    label = unique("page")
    for i in range(5):
        client.create(Secret(metadata={"name": f"{label}-{i}", "namespace": tenant,
                                       "labels": {"set": label}}))

    listed = client.list(Secret, tenant, label_selector=f"set={label}", page_size=2)
    iterated = list(client.iterate(Secret, ALL_NAMESPACES, label_selector=f"set={label}",
                                   page_size=2))

    assert sorted(s.metadata.name for s in listed.items) == [f"{label}-{i}" for i in range(5)]
    assert len(iterated) == 5


def test_apply_owns_fields_and_conflicts_until_forced(client: Client, tenant: str) -> None:
    name = unique("apply")
    mine = network(name, tenant, "web tier")
    client.apply(mine, field_manager="alice")
    theirs = network(name, tenant, "db tier")

    with pytest.raises(Conflict) as caught:
        client.apply(theirs, field_manager="bob")
    forced = client.apply(theirs, field_manager="bob", force=True)

    assert caught.value.code == 409 and "spec.description" in caught.value.message
    assert forced.spec.description == "db tier"


def test_a_stale_update_is_a_conflict(client: Client, tenant: str) -> None:
    created = client.create(network(unique("stale"), tenant))
    client.patch(Network, created.metadata.name, {"spec": {"description": "newer"}}, tenant)
    created.spec.description = "older"

    with pytest.raises(Conflict):
        client.update(created)


def test_json_and_strategic_merge_patches(client: Client, tenant: str) -> None:
    created = client.create(network(unique("p"), tenant))
    name = created.metadata.name

    client.patch(Network, name, [{"op": "add", "path": "/metadata/labels",
                                  "value": {"a": "1"}}], tenant, type="json")
    patched = client.patch(Network, name, {"metadata": {"labels": {"b": "2"}}}, tenant,
                           type="strategic")

    assert patched.metadata.labels == {"a": "1", "b": "2"}


def test_a_creation_of_a_taken_name_is_already_exists(client: Client, tenant: str) -> None:
    created = client.create(network(unique("dup"), tenant))

    with pytest.raises(AlreadyExists) as caught:
        client.create(network(created.metadata.name, tenant))

    assert caught.value.server_status["reason"] == "AlreadyExists"


def test_an_invalid_object_names_its_fields(client: Client, tenant: str) -> None:
    no_flavor = Server(metadata={"name": unique("bad"), "namespace": tenant},
                       spec=ServerSpec(image="ubuntu-24.04", networks=[LocalRef(name="n")]))

    with pytest.raises(Invalid) as caught:
        client.create(no_flavor)

    assert caught.value.code == 422
    assert "spec.flavor" in caught.value.fields
    assert caught.value.server_status["details"]["causes"]


def test_a_missing_object_is_not_found(client: Client, tenant: str) -> None:
    with pytest.raises(NotFound) as caught:
        client.get(Server, "nothing-here", tenant)

    assert caught.value.name == "nothing-here"
    assert client.find(Server, "nothing-here", tenant) is None


def test_a_tenant_viewer_is_forbidden_to_write_and_to_read_elsewhere(
        server: ScsServer, client: Client, tenant: str) -> None:
    token = service_account_token(client, tenant, "viewer")
    with token_client(server, token, namespace=tenant) as viewer:
        listed = viewer.list(Network)  # the configuration's namespace: the tenant's
        with pytest.raises(Forbidden) as write:
            viewer.create(network(unique("no"), tenant))
        with pytest.raises(Forbidden):
            viewer.list(Network, "default")

    assert listed.items is not None
    assert write.value.code == 403 and write.value.server_status["reason"] == "Forbidden"


def test_deletion_waits_for_the_finalizers(client: Client, tenant: str) -> None:
    name = unique("held")
    client.create(Secret(metadata=ObjectMeta(name=name, namespace=tenant,
                                             finalizers=["example.com/hold"])))
    threading.Timer(1.5, client.patch, (Secret, name, {"metadata": {"finalizers": None}},
                                        tenant)).start()

    started = time.monotonic()
    client.delete(Secret, name, tenant, wait=True, timeout=20)

    assert time.monotonic() - started >= 1.0
    assert client.find(Secret, name, tenant) is None


def test_deletion_that_stays_blocked_times_out(client: Client, tenant: str) -> None:
    name = unique("stuck")
    client.create(Secret(metadata=ObjectMeta(name=name, namespace=tenant,
                                             finalizers=["example.com/hold"])))

    with pytest.raises(WaitTimeout) as caught:
        client.delete(Secret, name, tenant, wait=True, timeout=2)

    assert caught.value.last.metadata.deletionTimestamp
    client.patch(Secret, name, {"metadata": {"finalizers": None}}, tenant)


def test_a_dict_answers_a_dict(client: Client, tenant: str) -> None:
    body = {"apiVersion": "iaas.scs.community/v1alpha1", "kind": "Network",
            "metadata": {"name": unique("d"), "namespace": tenant}}

    created = client.create(body)

    assert isinstance(created, dict) and created["metadata"]["uid"]


def test_server_errors_are_api_errors_too(client: Client) -> None:
    with pytest.raises(ApiError) as caught:
        client.patch(Tenant, "x", {"spec": {}}, type="strategic", dry_run=True)

    assert caught.value.code == 404
