"""Discovery and OpenAPI documents are cached with ETags, and large responses are gzipped
for clients that ask (issue 21, item 6): what a client (kubectl's HTTP cache, a browser)
observes over HTTPS from a real server."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

from tests.integration.conftest import secret, unique, wait_for

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}
THRESHOLD = 128 * 1024
DOCUMENTS = [
    ("/api", {}), ("/apis", {}), ("/api", {"Accept": AGGREGATED}),
    ("/apis", {"Accept": AGGREGATED}), ("/apis/tenancy.scs.community", {}),
    ("/apis/tenancy.scs.community/v1alpha1", {}), ("/api/v1", {}),
    ("/openapi/v2", {}), ("/openapi/v2", {"Accept": PROTOBUF}), ("/openapi/v3", {}),
    ("/openapi/v3/apis/tenancy.scs.community/v1alpha1", {}), ("/openapi/v3/api/v1", {}),
]


def vary(response: httpx.Response) -> list[str]:
    return [v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()]


def widget_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                         "type": "object",
                         "properties": {"size": {"type": "integer"}}}}}}}]},
    }


@pytest.mark.parametrize(("path", "headers"), DOCUMENTS)
def test_a_document_revalidated_with_its_etag_is_a_304_without_a_body(
        http: httpx.Client, path: str, headers: dict[str, str]) -> None:
    first = http.get(path, headers=headers)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    again = http.get(path, headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = http.get(path, headers={**headers, "If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.content == first.content


def test_a_new_crd_changes_every_document_and_its_etag_then_leaves_them(
        http: httpx.Client) -> None:
    group = f"{unique('docs')}.example.com"
    watched = {"/apis": {}, "/apis aggregated": {"Accept": AGGREGATED}, "/openapi/v2": {},
               "/openapi/v3": {}}
    before = {name: http.get(name.split()[0], headers=h) for name, h in watched.items()}
    created = http.post(CRDS, json=widget_crd(group))
    assert created.status_code == 201, created.text

    def changed(name: str) -> httpx.Response:
        headers = {**watched[name], "If-None-Match": before[name].headers["etag"]}
        response = http.get(name.split()[0], headers=headers)
        assert response.status_code == 200, f"{name} still answers {response.status_code}"
        return response

    assert group in changed("/apis").text
    assert group in changed("/apis aggregated").text
    assert "Widget" in json.dumps(changed("/openapi/v2").json()["paths"].get(
        f"/apis/{group}/v1/namespaces/{{namespace}}/widgets"))
    assert f"apis/{group}/v1" in changed("/openapi/v3").json()["paths"]
    assert http.get(f"/openapi/v3/apis/{group}/v1").status_code == 200
    assert http.get(f"/apis/{group}/v1").json()["resources"][0]["kind"] == "Widget"

    assert http.delete(f"{CRDS}/widgets.{group}").status_code == 200
    wait_for(lambda: http.get(f"/apis/{group}/v1").status_code == 404 or None,
             what="the deleted CRD's group/version to leave discovery")
    assert http.get(f"/openapi/v3/apis/{group}/v1").status_code == 404
    assert f"apis/{group}/v1" not in http.get("/openapi/v3").json()["paths"]
    assert group not in http.get("/apis").text


def test_root_discovery_varies_on_accept(http: httpx.Client) -> None:
    """The legacy and the aggregated form share a URL: caches must keep them apart."""
    for path in ("/api", "/apis"):
        legacy = http.get(path)
        aggregated = http.get(path, headers={"Accept": AGGREGATED})
        assert "accept" in vary(legacy) and "accept" in vary(aggregated)
        assert legacy.headers["etag"] != aggregated.headers["etag"]


def test_a_large_document_is_gzipped_for_who_asks_and_the_same_once_decoded(
        http: httpx.Client) -> None:
    plain = http.get("/openapi/v2", headers=IDENTITY)
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    assert len(plain.content) > THRESHOLD
    with http.stream("GET", "/openapi/v2", headers=GZIP) as compressed:
        raw = b"".join(compressed.iter_raw())
    assert compressed.headers["content-encoding"] == "gzip"
    assert int(compressed.headers["content-length"]) == len(raw) < len(plain.content) / 3
    assert gzip.decompress(raw) == plain.content
    assert "accept-encoding" in vary(plain) and "accept-encoding" in vary(compressed)
    # a weak ETag for the gzip form (other bytes), which If-None-Match still matches
    assert compressed.headers["etag"] == f"W/{plain.headers['etag']}"
    revalidated = http.get("/openapi/v2",
                           headers={**IDENTITY, "If-None-Match": compressed.headers["etag"]})
    assert revalidated.status_code == 304


def test_a_large_list_is_gzipped_for_who_asks_and_the_same_once_decoded(
        http: httpx.Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    for i in range(40):
        body = secret(f"big-{i}", blob="x" * 4096)
        assert http.post(path, json=body).status_code == 201
    plain = http.get(path, headers=IDENTITY)
    assert "content-encoding" not in plain.headers
    assert len(plain.content) > THRESHOLD
    compressed = http.get(path, headers=GZIP)
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.json() == plain.json()
    assert "accept-encoding" in vary(plain) and "accept-encoding" in vary(compressed)


@pytest.mark.parametrize("path", ["/api", "/apis/tenancy.scs.community/v1alpha1", "/version",
                                  "/api/v1/namespaces/default"])
def test_a_small_response_is_sent_as_it_is(http: httpx.Client, path: str) -> None:
    response = http.get(path, headers=GZIP)
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert "accept-encoding" not in vary(response)


def test_gzip_refused_with_q_0_is_not_used(http: httpx.Client) -> None:
    response = http.get("/openapi/v2", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers


def test_a_watch_stream_is_never_compressed(http: httpx.Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    for i in range(40):
        assert http.post(path, json=secret(f"w-{i}", blob="y" * 4096)).status_code == 201
    params = {"watch": "1", "timeoutSeconds": "1"}
    with http.stream("GET", path, params=params, headers=GZIP) as stream:
        assert stream.status_code == 200
        assert "content-encoding" not in stream.headers
        events = [json.loads(line) for line in stream.iter_lines() if line]
    assert len(events) == 40  # every initial object, sent as it is


def test_annotating_a_crd_keeps_the_documents_and_changing_its_schema_does_not(
        http: httpx.Client) -> None:
    group = f"{unique('annotated')}.example.com"
    crd = widget_crd(group)
    assert http.post(CRDS, json=crd).status_code == 201
    name = crd["metadata"]["name"]
    cached = http.get("/openapi/v2").headers["etag"]

    patched = http.patch(f"{CRDS}/{name}", json={"metadata": {"annotations": {"gitops": "x"}}},
                         headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    assert http.get("/openapi/v2", headers={"If-None-Match": cached}).status_code == 304

    schema = {"spec": {"versions": [{**crd["spec"]["versions"][0], "schema": {
        "openAPIV3Schema": {"type": "object", "properties": {"spec": {
            "type": "object", "properties": {"colour": {"type": "string"}}}}}}}]}}
    changed = http.patch(f"{CRDS}/{name}", json=schema,
                         headers={"Content-Type": "application/merge-patch+json"})
    assert changed.status_code == 200, changed.text
    after = http.get("/openapi/v2", headers={"If-None-Match": cached})
    assert after.status_code == 200
    assert "colour" in after.text
