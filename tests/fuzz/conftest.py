"""A real ``scs serve`` per module, its documents, and a user CRD served beside the built-ins.

The fuzz suites talk to the server as a client would: HTTPS with the generated CA and the
bootstrap admin token from ``admin.kubeconfig``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.polling import poll
from tests.server import ScsServer

CRD_GROUP = "fuzz.scs.community"
CRD_DOCUMENTS = (f"apis/{CRD_GROUP}/v1", f"apis/{CRD_GROUP}/v1beta1")
CRD_NAME = f"gadgets.{CRD_GROUP}"

_STRING = {"type": "string"}
_GADGET_SPEC: dict[str, Any] = {
    "type": "object",
    "description": "What the gadget should be: one field of every structural shape.",
    "required": ["size"],
    "x-kubernetes-validations": [{"rule": "self.min <= self.max",
                                  "message": "min must not exceed max"}],
    "properties": {
        "size": {"type": "string", "enum": ["small", "large"]},
        "label": {"type": "string", "maxLength": 63, "pattern": "^[a-z]([-a-z0-9]*)?$"},
        "min": {"type": "integer", "minimum": 0, "default": 1},
        "max": {"type": "integer", "maximum": 100, "default": 3},
        "ratio": {"type": "number", "nullable": True},
        "enabled": {"type": "boolean"},
        "port": {"x-kubernetes-int-or-string": True},
        "tags": {"type": "array", "items": _STRING, "x-kubernetes-list-type": "set",
                 "maxItems": 8},
        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                  "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "required": ["name"],
                            "properties": {"name": _STRING,
                                           "number": {"type": "integer", "format": "int32"}}}},
        "env": {"type": "object", "additionalProperties": _STRING},
        "nested": {"type": "object", "properties": {"deeper": {
            "type": "object", "properties": {"leaf": _STRING}}}},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def gadget_crd() -> dict[str, Any]:
    """A namespaced CRD with a status subresource and two served versions (v1 stored)."""
    def version(name: str, storage: bool) -> dict[str, Any]:
        return {"name": name, "served": True, "storage": storage,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "string",
                                              "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A Gadget: a user's custom kind.",
                    "properties": {"spec": _GADGET_SPEC, "status": {
                        "type": "object",
                        "properties": {"phase": _STRING, "count": {"type": "integer"}}}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": CRD_NAME},
            "spec": {"group": CRD_GROUP, "scope": "Namespaced",
                     "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                               "shortNames": ["gdg"]},
                     "versions": [version("v1", True), version("v1beta1", False)]}}


def client_for(server: ScsServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30,
                        verify=ssl.create_default_context(cafile=str(server.ca_file)),
                        headers={"Authorization": f"Bearer {server.token}"})


def served_documents(http: httpx.Client) -> dict[str, str]:
    """``/openapi/v3``'s index: group/version key → URL of its document."""
    response = http.get("/openapi/v3")
    assert response.status_code == 200, response.text
    return {key: entry["serverRelativeURL"] for key, entry in response.json()["paths"].items()}


def create_crd(http: httpx.Client) -> None:
    """Create the Gadget CRD and wait until its documents are listed."""
    response = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                         json=gadget_crd())
    assert response.status_code == 201, response.text
    poll(lambda: set(CRD_DOCUMENTS) <= set(served_documents(http)), 30, 0.1,
         "the Gadget documents")


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    srv = ScsServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def http(server: ScsServer) -> Iterator[httpx.Client]:
    with client_for(server) as client:
        create_crd(client)
        yield client
