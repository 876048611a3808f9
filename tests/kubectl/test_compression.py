"""kubectl (which always asks for gzip) gets large answers compressed, and the same content
as a client that does not ask (issue 21, item 6)."""

from __future__ import annotations

import json
import re
import ssl

import httpx
import pytest

from .conftest import Kubectl

pytestmark = pytest.mark.slow

IDENTITY = {"Accept-Encoding": "identity"}


def plain_client(kubectl: Kubectl) -> httpx.Client:
    server = kubectl.server
    return httpx.Client(base_url=server.url, timeout=30,
                        verify=ssl.create_default_context(cafile=str(server.ca_file)),
                        headers={"Authorization": f"Bearer {server.token}", **IDENTITY})


def test_kubectl_gets_the_openapi_document_gzipped_with_the_same_content(
        kubectl: Kubectl) -> None:
    fetched = kubectl.ok("get", "--raw", "/openapi/v2", "-v=8")
    # Go's transport decompresses and drops Content-Encoding before kubectl logs the
    # headers; the ETag of the gzip form is the weak one
    assert re.search(r'Etag: W/"[0-9a-f]+"', fetched.stderr), fetched.stderr[-2000:]
    with plain_client(kubectl) as http:
        plain = http.get("/openapi/v2")
    assert "content-encoding" not in plain.headers
    assert json.loads(fetched.stdout) == plain.json()


def test_kubectl_lists_a_large_list_gzipped_with_the_same_objects(kubectl: Kubectl,
                                                                   namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    with plain_client(kubectl) as http:
        for i in range(40):
            created = http.post(path, json={"metadata": {"name": f"big-{i}"},
                                            "stringData": {"blob": f"{i}" * 4096}})
            assert created.status_code == 201, created.text
        plain = http.get(path)
    assert len(plain.content) > 128 * 1024
    listed = kubectl.ok("get", "secrets", "-n", namespace, "-o", "json", "-v=8")
    assert "Vary: Accept-Encoding" in listed.stderr
    by_kubectl = {item["metadata"]["name"]: item["data"]
                  for item in json.loads(listed.stdout)["items"]}
    assert by_kubectl == {item["metadata"]["name"]: item["data"]
                          for item in plain.json()["items"]}
