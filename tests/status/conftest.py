"""Fixtures of the status-page suites: a real ``scs serve`` and a client that checks every
answer of the status-page API against spec 1.1.2.

Conformance: each response body is validated against the response schema the spec declares
for its path, method and status code (``openapi-schema-validator``'s OpenAPI 3.0 read
validator, so ``nullable`` and ``readOnly`` mean what they mean there); a success status the
spec does not declare fails the test, and an error must be the reference server's
``{"message": ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30ReadValidator

from tests.security.support import client, created, unique
from tests.server import ScsServer

SPEC = Path(__file__).resolve().parents[2] / "central_api/server/statuspage/openapi-1.1.2.yaml"
PREFIX = "/status"
ORIGIN = "https://status.example"
STATUS_CONFIG: dict[str, Any] = {"controllers": "external", "identity": {"type": "none"},
                                 "status": {"corsOrigins": [ORIGIN]}}
"""No controllers: no probe opens incidents behind the tests' backs."""
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@cache
def spec() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC.read_text()))


def template_of(path: str) -> str:
    for template in spec()["paths"]:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return str(template)
    raise AssertionError(f"{path} is no path of the spec")


def check_conformance(method: str, path: str, response: httpx.Response) -> None:
    """The response is one the spec declares, with a body its schema accepts."""
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"message"} and isinstance(body["message"], str), body
        return
    operation = spec()["paths"][template_of(path)][method.lower()]
    declared = operation["responses"].get(str(response.status_code))
    assert declared is not None, \
        f"{method} {path} answered {response.status_code}, which the spec does not declare"
    if "$ref" in declared:
        declared = spec()["components"]["responses"][declared["$ref"].rsplit("/", 1)[1]]
    if "content" not in declared:
        assert response.content == b"", response.content
        return
    schema = {**declared["content"]["application/json"]["schema"],
              "components": spec()["components"]}
    assert response.headers["content-type"].startswith("application/json")
    OAS30ReadValidator(schema, format_checker=OAS30ReadValidator.FORMAT_CHECKER).validate(
        response.json())


class StatusApi:
    """The status-page API as one caller (a token, or None for anonymous)."""

    def __init__(self, server: ScsServer, token: str | None) -> None:
        self.http = client(server, token)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, PREFIX + path, **kwargs)
        if path.split("?")[0] != "/openapi.json":
            check_conformance(method, path.split("?")[0], response)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: Any) -> httpx.Response:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)

    def create(self, path: str, body: Any) -> str:
        response = self.post(path, body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def data(self, path: str) -> Any:
        response = self.get(path)
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    srv = ScsServer(config=STATUS_CONFIG, extra_args=["--rate-limit", "100000",
                                                      "--rate-burst", "100000"])
    srv.start()
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def admin(server: ScsServer) -> Iterator[StatusApi]:
    api = StatusApi(server, server.token)
    yield api
    api.http.close()


@pytest.fixture(scope="module")
def kube(server: ScsServer) -> Iterator[httpx.Client]:
    """The KRM API as the bootstrap admin."""
    with client(server, server.token) as http:
        yield http


@pytest.fixture(scope="module")
def anonymous(server: ScsServer) -> Iterator[StatusApi]:
    api = StatusApi(server, None)
    yield api
    api.http.close()


def service_account_token(kube: httpx.Client, name: str) -> str:
    """A real token of a new ServiceAccount in ``default`` (bound to nothing yet)."""
    created(kube.post("/api/v1/namespaces/default/serviceaccounts",
                      json={"metadata": {"name": name}}), f"serviceaccount {name}")
    review = created(kube.post(f"/api/v1/namespaces/default/serviceaccounts/{name}/token",
                               json={"apiVersion": "authentication.k8s.io/v1",
                                     "kind": "TokenRequest", "spec": {}}), "a token")
    return str(review["status"]["token"])


def bind_cluster_role(kube: httpx.Client, role: str, account: str) -> None:
    created(kube.post(f"{RBAC}/clusterrolebindings", json={
        "metadata": {"name": unique(f"{role}-{account}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "default"}]}),
        f"binding of {role}")
