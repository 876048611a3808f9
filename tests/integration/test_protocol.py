"""The HTTP protocol as kube-apiserver speaks it, observed with raw HTTPS requests.

These are the details that client libraries, kubectl and GitOps tools depend on but that a
typed client hides: status codes, ``Status`` bodies and their field causes, content types,
query parameters (dryRun, fieldValidation, pagination, selectors, watch options), request
limits and the encryption of Secrets at rest.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
from typing import Any

import httpx
import pytest

from tests.integration.conftest import TENANTS, secret, tenant, tls, unique, wait_for
from tests.server import ScsServer

pytestmark = pytest.mark.slow

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
MiB = 1024 * 1024


def secrets_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets"


def assert_status(response: httpx.Response, code: int, reason: str | None = None
                  ) -> dict[str, Any]:
    """The response is a ``Status`` failure with ``code`` (and ``reason``); returns it."""
    assert response.status_code == code, response.text
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == code
    if reason is not None:
        assert body["reason"] == reason
    return body


def assert_absent(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 404


def watch_lines(http: httpx.Client, path: str, params: dict[str, str], count: int,
                deadline: float = 10.0) -> list[dict[str, Any]]:
    """The first ``count`` events of a watch (fewer if the server ends the stream first)."""
    events: list[dict[str, Any]] = []
    end = time.monotonic() + deadline
    with http.stream("GET", path, params={"watch": "true", **params}) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.strip():
                events.append(json.loads(line))
            if len(events) >= count or time.monotonic() > end:
                break
    return events


def raw_get(server: ScsServer, path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (httpx would normalise ``..`` segments away)."""
    context = ssl.create_default_context(cafile=str(server.ca_file))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, \
            context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {server.token}\r\nConnection: close\r\n\r\n"
                    .encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# -- authentication ---------------------------------------------------------------------------

@pytest.mark.parametrize("authorization", [None, "Bearer not-the-token", "Basic YWRtaW46YWRtaW4="])
def test_requests_without_a_valid_token_get_401_and_no_data(
        server: ScsServer, http: httpx.Client, authorization: str | None) -> None:
    name = unique("authsecret")
    assert http.post(secrets_path("default"), json=secret(name, token="hush-123")
                     ).status_code == 201
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(base_url=server.url, verify=tls(server), headers=headers) as anon:
        for path in (f"{secrets_path('default')}/{name}", secrets_path("default"),
                     "/api/v1/namespaces", "/api", "/apis", "/openapi/v2", TENANTS):
            response = anon.get(path)
            body = assert_status(response, 401, "Unauthorized")
            assert name not in response.text and "hush" not in response.text
            assert "items" not in body
        assert_status(anon.post(TENANTS, json=tenant(unique("anon"))), 401, "Unauthorized")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez"])
def test_health_endpoints_answer_anonymously(server: ScsServer, path: str) -> None:
    response = httpx.get(server.url + path, verify=tls(server))
    assert response.status_code == 200
    assert response.text == "ok"


def test_version_answers_anonymously_with_kube_version_fields(server: ScsServer) -> None:
    response = httpx.get(server.url + "/version", verify=tls(server))
    assert response.status_code == 200
    body = response.json()
    assert body["major"] == "1" and body["gitVersion"].startswith("v1.")


# -- discovery and OpenAPI --------------------------------------------------------------------

def test_openapi_v3_index_links_group_version_documents(http: httpx.Client) -> None:
    index = http.get("/openapi/v3")
    assert index.status_code == 200
    paths = index.json()["paths"]
    assert {"api/v1", "apis/tenancy.scs.community/v1alpha1"} <= set(paths)

    doc = http.get(paths["apis/tenancy.scs.community/v1alpha1"]["serverRelativeURL"])
    assert doc.status_code == 200
    body = doc.json()
    assert body["openapi"].startswith("3.")
    assert any(schema.get("x-kubernetes-group-version-kind", [{}])[0].get("kind") == "Tenant"
               for schema in body["components"]["schemas"].values())


def test_openapi_v2_is_a_swagger_document_with_kind_definitions(http: httpx.Client) -> None:
    response = http.get("/openapi/v2")
    assert response.status_code == 200
    body = response.json()
    assert body["swagger"] == "2.0"
    kinds = {gvk["kind"] for schema in body["definitions"].values()
             for gvk in schema.get("x-kubernetes-group-version-kind", [])}
    assert {"Namespace", "Secret", "Tenant"} <= kinds


@pytest.mark.parametrize("path", ["/api", "/apis"])
def test_aggregated_discovery_answers_api_group_discovery_list(http: httpx.Client,
                                                                path: str) -> None:
    response = http.get(path, headers={"Accept": AGGREGATED})
    assert response.status_code == 200
    content_type = response.headers["content-type"].replace(" ", "")
    assert content_type.startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    assert "as=APIGroupDiscoveryList" in content_type
    body = response.json()
    assert body["kind"] == "APIGroupDiscoveryList"
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2"
    resources = {r["resource"] for g in body["items"] for v in g["versions"]
                 for r in v["resources"]}
    assert ({"namespaces", "secrets"} if path == "/api" else {"tenants"}) <= resources


# -- request bodies ---------------------------------------------------------------------------

def test_a_body_over_3_mib_is_refused_with_413_and_nothing_is_stored(http: httpx.Client) -> None:
    name = unique("huge")
    body = tenant(name)
    body["metadata"]["annotations"] = {"blob": "x" * (3 * MiB + 1024)}

    response = http.post(TENANTS, json=body)

    assert_status(response, 413, "RequestEntityTooLarge")
    assert_absent(http, f"{TENANTS}/{name}")


def test_malformed_json_is_a_400(http: httpx.Client) -> None:
    response = http.post(TENANTS, content=b'{"metadata": {"name": "x"', headers={
        "Content-Type": "application/json"})
    assert_status(response, 400, "BadRequest")


def test_malformed_yaml_is_a_400(http: httpx.Client) -> None:
    response = http.post(TENANTS, content=b"metadata: {name: [unclosed\n  spec: : :\n",
                         headers={"Content-Type": "application/yaml"})
    assert_status(response, 400, "BadRequest")


def test_a_yaml_alias_bomb_is_a_400_and_nothing_is_stored(http: httpx.Client) -> None:
    name = unique("bomb")
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, current in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{current}: &{current} [" + ",".join([f"*{previous}"] * 9) + "]")
    bomb = (f"apiVersion: tenancy.scs.community/v1alpha1\nkind: Tenant\n"
            f"metadata: {{name: {name}}}\nspec:\n  displayName: boom\n"
            + "".join(f"  {line}\n" for line in lines)).encode()

    started = time.monotonic()
    response = http.post(TENANTS, content=bomb, headers={"Content-Type": "application/yaml"})

    assert_status(response, 400, "BadRequest")
    assert time.monotonic() - started < 5
    assert_absent(http, f"{TENANTS}/{name}")


def test_a_schema_violation_is_a_422_naming_each_field_and_nothing_is_stored(
        http: httpx.Client) -> None:
    name = unique("invalid")

    response = http.post(TENANTS, json=tenant(name, displayName="", quotas={"cores": -1}))

    body = assert_status(response, 422, "Invalid")
    fields = {cause["field"] for cause in body["details"]["causes"]}
    assert {"spec.displayName", "spec.quotas.cores"} <= fields
    assert body["details"]["name"] == name and body["details"]["kind"] == "Tenant"
    listed = http.get(TENANTS).json()["items"]
    assert name not in {t["metadata"]["name"] for t in listed}


def test_dry_run_create_returns_the_object_but_stores_nothing(http: httpx.Client) -> None:
    name = unique("dry")

    response = http.post(TENANTS, params={"dryRun": "All"}, json=tenant(name))

    assert response.status_code == 201, response.text
    obj = response.json()
    assert obj["metadata"]["name"] == name and obj["metadata"]["uid"]
    assert obj["spec"]["enabledServices"] == ["iaas", "iam"]  # defaulted like a real create
    assert_absent(http, f"{TENANTS}/{name}")
    assert name not in {t["metadata"]["name"] for t in http.get(TENANTS).json()["items"]}


def test_strict_field_validation_refuses_an_unknown_field_with_400(http: httpx.Client) -> None:
    name = unique("strict")
    body = tenant(name, colour="blue")

    response = http.post(TENANTS, params={"fieldValidation": "Strict"}, json=body)

    status = assert_status(response, 400, "BadRequest")
    assert "strict decoding error" in status["message"]
    assert "colour" in status["message"]
    assert_absent(http, f"{TENANTS}/{name}")


def test_warn_field_validation_creates_and_sends_a_warning_header(http: httpx.Client) -> None:
    name = unique("warn")

    response = http.post(TENANTS, params={"fieldValidation": "Warn"},
                         json=tenant(name, colour="blue"))

    assert response.status_code == 201, response.text
    warning = response.headers["Warning"]
    assert warning == '299 - "unknown field \\"spec.colour\\""'
    assert "colour" not in response.json()["spec"]  # the unknown field was pruned


def test_strategic_merge_patch_on_a_custom_resource_is_415(http: httpx.Client) -> None:
    """Kubernetes serves strategic merge patch for built-in kinds only; CRDs answer 415."""
    group = "smp.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                            "type": "object",
                            "properties": {"size": {"type": "integer"}}}}}}}]}}
    assert http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                     json=crd).status_code == 201
    widgets = f"/apis/{group}/v1/namespaces/default/widgets"
    wait_for(lambda: http.get(widgets).status_code == 200, what="the CRD to be served")
    response = http.post(widgets, json={"apiVersion": f"{group}/v1", "kind": "Widget",
                                        "metadata": {"name": "w"}, "spec": {"size": 1}})
    assert response.status_code == 201, response.text

    response = http.patch(f"{widgets}/w", content=b'{"spec":{"size":2}}',
                          headers={"Content-Type": "application/strategic-merge-patch+json"})

    assert_status(response, 415, "UnsupportedMediaType")
    assert http.get(f"{widgets}/w").json()["spec"]["size"] == 1


# -- lists --------------------------------------------------------------------------------------

def test_paginated_list_returns_each_object_once_from_one_snapshot(
        http: httpx.Client, namespace: str) -> None:
    path = secrets_path(namespace)
    original = [f"s-{i:02d}" for i in range(10)]
    for name in original:
        assert http.post(path, json=secret(name, k="v")).status_code == 201

    seen: list[str] = []
    first = http.get(path, params={"limit": "3"}).json()
    seen += [s["metadata"]["name"] for s in first["items"]]
    # Written between pages: one sorts into a later page, one after everything.
    for late in ("s-05a", "s-99"):
        assert http.post(path, json=secret(late, k="v")).status_code == 201
    token = first["metadata"]["continue"]
    pages = 1
    while token:
        page = http.get(path, params={"limit": "3", "continue": token})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        seen += [s["metadata"]["name"] for s in body["items"]]
        token = body["metadata"].get("continue")
        pages += 1

    assert seen == original
    assert pages == 4
    assert len(http.get(path).json()["items"]) == 12


def test_an_invalid_continue_token_is_a_400(http: httpx.Client, namespace: str) -> None:
    response = http.get(secrets_path(namespace), params={"limit": "1",
                                                         "continue": "not-a-token!!"})
    assert_status(response, 400, "BadRequest")


@pytest.mark.parametrize("selector", ["tier in (gold", "a=b,,", "!=x", "tier notin gold"])
def test_an_unparsable_label_selector_is_a_400(http: httpx.Client, selector: str) -> None:
    response = http.get(TENANTS, params={"labelSelector": selector})
    assert_status(response, 400, "BadRequest")


def test_table_output_has_column_definitions_and_rows(http: httpx.Client) -> None:
    name = unique("table")
    assert http.post(TENANTS, json=tenant(name, displayName="Table Co")).status_code == 201

    response = http.get(TENANTS, headers={"Accept": TABLE})

    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "Table" and body["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in body["columnDefinitions"]]
    assert columns[0] == "Name" and "Display Name" in columns and "Age" in columns
    rows = {row["cells"][0]: row for row in body["rows"]}
    assert rows[name]["cells"][columns.index("Display Name")] == "Table Co"
    assert rows[name]["object"]["kind"] == "PartialObjectMetadata"


# -- watch --------------------------------------------------------------------------------------

def test_watch_with_initial_events_sends_added_then_an_initial_events_end_bookmark(
        http: httpx.Client, namespace: str) -> None:
    path = secrets_path(namespace)
    for name in ("a", "b", "c"):
        assert http.post(path, json=secret(name, k="v")).status_code == 201

    events = watch_lines(http, path, {
        "allowWatchBookmarks": "true", "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "5"}, count=4)

    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:3]] == [
        ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    bookmark = events[3]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in events[:3])


@pytest.mark.parametrize("match", ["", "NotOlderThan", "Exact"])
def test_a_list_at_a_revision_not_reached_yet_is_kubes_too_large_resource_version(
        http: httpx.Client, namespace: str, match: str) -> None:
    path = secrets_path(namespace)
    future = int(http.get(path).json()["metadata"]["resourceVersion"]) + 1_000_000
    params = {"resourceVersion": str(future)}
    if match:
        params["resourceVersionMatch"] = match
    status = assert_status(http.get(path, params=params), 504, "Timeout")
    assert f"Too large resource version: {future}" in status["message"]


def test_a_watch_from_a_revision_not_reached_yet_is_refused_at_once(
        http: httpx.Client, namespace: str) -> None:
    path = secrets_path(namespace)
    future = int(http.get(path).json()["metadata"]["resourceVersion"]) + 1_000_000
    started = time.monotonic()
    response = http.get(path, params={"watch": "1", "resourceVersion": str(future),
                                      "timeoutSeconds": "10"})
    assert_status(response, 504, "Timeout")
    assert time.monotonic() - started < 5


def test_a_watch_pages_its_initial_objects_and_loses_no_event_between_pages(
        http: httpx.Client, namespace: str) -> None:
    """More objects than one initial page holds (500), with writes while the pages stream:
    each object arrives once, in order, then exactly the changes after the snapshot; a
    selector watch turns an object leaving the selection into DELETED, also for objects on
    pages not yet sent when the change happened."""
    path = secrets_path(namespace)
    names = [f"s-{i:04d}" for i in range(1100)]
    for name in names:
        body = secret(name, k="v")
        body["metadata"]["labels"] = {"tier": "gold"}
        assert http.post(path, json=body).status_code == 201
    with http.stream("GET", path, params={"watch": "true", "labelSelector": "tier=gold",
                                          "timeoutSeconds": "20"}) as response:
        lines = response.iter_lines()
        first = json.loads(next(line for line in lines if line.strip()))
        # the snapshot is fixed now: change an object on a later page and add one
        patch = {"metadata": {"labels": {"tier": "bronze"}}}
        assert http.patch(f"{path}/s-1050", json=patch, headers={
            "Content-Type": "application/merge-patch+json"}).status_code == 200
        late = secret("s-9999", k="v")
        late["metadata"]["labels"] = {"tier": "gold"}
        assert http.post(path, json=late).status_code == 201
        events = [first]
        for line in lines:
            if line.strip():
                events.append(json.loads(line))
            if len(events) == len(names) + 2:
                break
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert seen[:len(names)] == [("ADDED", name) for name in names]
    assert seen[len(names):] == [("DELETED", "s-1050"), ("ADDED", "s-9999")]


def test_watch_timeout_seconds_ends_the_stream(http: httpx.Client, namespace: str) -> None:
    started = time.monotonic()
    rv = http.get(secrets_path(namespace)).json()["metadata"]["resourceVersion"]

    events = watch_lines(http, secrets_path(namespace),
                         {"resourceVersion": rv, "timeoutSeconds": "1"}, count=1000, deadline=15)

    assert events == []
    assert time.monotonic() - started < 5


# -- names and namespaces -----------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/api/v1/namespaces/default/secrets/..",
    "/api/v1/namespaces/default/secrets/%2E%2E",
    "/api/v1/namespaces/default/secrets/a%2Fb",
    "/api/v1/namespaces/default/secrets/..%2F..%2Fnamespaces",
    "/api/v1/namespaces/../secrets",
    "/api/v1/namespaces/%2E%2E/secrets",
    "/api/v1/namespaces/default/secrets/../../namespaces/default",
])
def test_path_traversal_in_a_name_or_namespace_is_refused(server: ScsServer, http: httpx.Client,
                                                          path: str) -> None:
    assert http.post(secrets_path("default"), json=secret(unique("victim"), k="v")
                     ).status_code == 201

    status, body = raw_get(server, path)

    assert status in (400, 404)
    assert json.loads(body)["kind"] == "Status"
    assert b"items" not in body and b"victim" not in body


@pytest.mark.parametrize("name", ["..", "a/b", "a%2Fb"])
def test_a_name_that_is_not_a_path_segment_cannot_be_created(http: httpx.Client,
                                                             name: str) -> None:
    response = http.post(secrets_path("default"), json=secret(name, k="v"))
    body = assert_status(response, 422, "Invalid")
    assert "metadata.name" in {c["field"] for c in body["details"]["causes"]}


def test_creating_in_a_missing_namespace_is_404(http: httpx.Client) -> None:
    missing = unique("missing")
    response = http.post(secrets_path(missing), json=secret("s", k="v"))
    body = assert_status(response, 404, "NotFound")
    assert body["details"]["kind"] == "namespaces" and body["details"]["name"] == missing


# -- encryption at rest -------------------------------------------------------------------------

def test_secret_values_are_not_stored_in_plain_text_or_base64(
        server: ScsServer, http: httpx.Client, namespace: str) -> None:
    value = f"hunter2-{unique('pw')}"
    encoded = base64.b64encode(value.encode())
    response = http.post(secrets_path(namespace), json={
        "metadata": {"name": "creds"}, "stringData": {"password": value},
        "data": {"token": base64.b64encode(b"tok-" + value.encode()).decode()}})
    assert response.status_code == 201, response.text
    assert http.get(f"{secrets_path(namespace)}/creds").json()["data"]["password"] == \
        encoded.decode()

    files = [p for p in server.data_dir.glob("state.db*") if p.is_file()]
    assert any(p.name == "state.db" for p in files)
    on_disk = b"".join(p.read_bytes() for p in files)
    assert b"creds" in on_disk or b"secrets" in on_disk  # sanity: we read the right files
    for needle in (value.encode(), encoded, base64.b64encode(b"tok-" + value.encode())):
        assert needle not in on_disk
