"""The official ``kubernetes`` Python client works against ``scs serve`` unchanged.

The client is configured only from the generated ``admin.kubeconfig`` (server URL, CA, token),
exactly as a user would do, and every assertion is on what the client library returns.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from central_api.store.sqlite import SqliteStore
from tests.integration.conftest import unique, wait_for
from tests.server import ScsServer

pytestmark = pytest.mark.slow

GROUP, VERSION, PLURAL = "tenancy.scs.community", "v1alpha1", "tenants"


@pytest.fixture(scope="module")
def api_client(server: ScsServer) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="module")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def tenant_body(name: str, display: str = "ACME Corp") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Tenant", "metadata": {"name": name},
            "spec": {"displayName": display, "contact": "ops@acme.example"}}


def create_tenant(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    created: dict[str, Any] = custom.create_cluster_custom_object(
        GROUP, VERSION, PLURAL, tenant_body(name))
    return created


def set_display_name(custom: client.CustomObjectsApi, name: str, display: str
                     ) -> dict[str, Any]:
    patched: dict[str, Any] = custom.patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, name, {"spec": {"displayName": display}})
    return patched


def collect_watch(custom: client.CustomObjectsApi, resource_version: str,
                  timeout_seconds: int = 5) -> list[tuple[str, dict[str, Any]]]:
    """Every event of a tenants watch from ``resource_version`` until the server ends it."""
    events = watch.Watch().stream(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                                  resource_version=resource_version,
                                  timeout_seconds=timeout_seconds)
    return [(event["type"], event["object"]) for event in events]


def test_namespaces_can_be_listed_created_and_read(core: client.CoreV1Api) -> None:
    name = unique("pyns")

    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    read = core.read_namespace(name)
    listed = core.list_namespace()

    assert created.metadata.name == name and created.metadata.uid
    assert read.metadata.uid == created.metadata.uid
    names = {ns.metadata.name for ns in listed.items}
    assert {"default", name} <= names
    assert listed.metadata.resource_version


def test_secrets_round_trip_string_data_as_base64_data(core: client.CoreV1Api) -> None:
    ns = unique("pysec")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    body = client.V1Secret(metadata=client.V1ObjectMeta(name="db"),
                           string_data={"password": "s3cret"}, type="Opaque")

    core.create_namespaced_secret(ns, body)
    read = core.read_namespaced_secret("db", ns)
    listed = core.list_namespaced_secret(ns)

    assert base64.b64decode(read.data["password"]) == b"s3cret"
    assert [s.metadata.name for s in listed.items] == ["db"]


def test_tenants_can_be_created_listed_and_patched(custom: client.CustomObjectsApi) -> None:
    name = unique("pyt")

    created = create_tenant(custom, name)
    listed = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    patched = set_display_name(custom, name, "ACME Renamed")

    assert created["metadata"]["generation"] == 1
    assert created["spec"]["enabledServices"] == ["iaas", "iam"]  # schema default applied
    assert name in {t["metadata"]["name"] for t in listed["items"]}
    assert patched["spec"]["displayName"] == "ACME Renamed"
    assert patched["metadata"]["generation"] == 2
    assert int(patched["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"])


def test_watch_stream_sees_added_modified_and_deleted(custom: client.CustomObjectsApi) -> None:
    name = unique("pyw")
    start = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"][
        "resourceVersion"]
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    watcher = watch.Watch()

    def run() -> None:
        for event in watcher.stream(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                                    resource_version=start, timeout_seconds=15):
            if event["object"]["metadata"]["name"] == name:
                seen.put((event["type"], event["object"]["spec"]["displayName"]))
                if event["type"] == "DELETED":
                    watcher.stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    create_tenant(custom, name)
    set_display_name(custom, name, "Changed")
    custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
    thread.join(20)

    events = [seen.get_nowait() for _ in range(seen.qsize())]
    assert events == [("ADDED", "ACME Corp"), ("MODIFIED", "Changed"), ("DELETED", "Changed")]


def test_watch_resumed_from_a_list_resource_version_sees_only_later_changes(
        custom: client.CustomObjectsApi) -> None:
    before, after = unique("pyold"), unique("pynew")
    create_tenant(custom, before)
    resume_at = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["metadata"][
        "resourceVersion"]
    create_tenant(custom, after)
    set_display_name(custom, after, "Later")

    events = collect_watch(custom, resume_at, timeout_seconds=2)

    names = [(kind, obj["metadata"]["name"]) for kind, obj in events]
    assert ("ADDED", after) in names and ("MODIFIED", after) in names
    assert all(name != before for _, name in names)
    assert all(int(obj["metadata"]["resourceVersion"]) > int(resume_at) for _, obj in events)


def test_replace_with_a_stale_resource_version_is_a_409_conflict(
        custom: client.CustomObjectsApi) -> None:
    name = unique("pystale")
    stale = create_tenant(custom, name)
    set_display_name(custom, name, "Someone else was faster")
    stale["spec"]["displayName"] = "Mine"

    with pytest.raises(ApiException) as caught:
        custom.replace_cluster_custom_object(GROUP, VERSION, PLURAL, name, stale)

    assert caught.value.status == 409
    assert json.loads(caught.value.body)["reason"] == "Conflict"
    current = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
    assert current["spec"]["displayName"] == "Someone else was faster"


def test_watch_from_a_compacted_revision_is_410_gone(
        server: ScsServer, custom: client.CustomObjectsApi) -> None:
    """The server compacts on a 60 s timer keeping 5 minutes of history and has no hook to
    force it, so the test compacts the store file itself: SQLite in WAL mode allows a second
    connection to write while the server runs, which is what ``SqliteStore.compact`` does."""
    name = unique("pycomp")
    old_rv = create_tenant(custom, name)["metadata"]["resourceVersion"]
    set_display_name(custom, name, "v2")
    compact_to = set_display_name(custom, name, "v3")["metadata"]["resourceVersion"]
    set_display_name(custom, name, "v4")
    # Opening a watch makes the server's watch hub catch up with the log before compaction.
    wait_for(lambda: collect_watch(custom, compact_to, timeout_seconds=1),
             what="the watch hub to see the last update")

    store = SqliteStore(server.data_dir / "state.db")
    try:
        store.compact(int(compact_to))
    finally:
        store.close()

    with pytest.raises(ApiException) as caught:
        collect_watch(custom, old_rv, timeout_seconds=2)
    assert caught.value.status == 410
    # A watch from a revision that is still kept keeps working.
    assert collect_watch(custom, compact_to, timeout_seconds=1)
