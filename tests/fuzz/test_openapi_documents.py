"""Every served OpenAPI document is valid for generators (issue 18, item 1).

An OpenAPI validator library (openapi-spec-validator) checks each document the server serves,
``/openapi/v2`` and every group/version listed by ``/openapi/v3``, a user CRD's included; the
tests below spell out the properties generators tripped over: undeclared path parameters,
duplicate operation ids, dangling ``$ref``s, and kube's standard query parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV2SpecValidator, OpenAPIV30SpecValidator

from .conftest import CRD_DOCUMENTS, served_documents

METHODS = ("get", "put", "post", "delete", "patch")
BUILTIN_DOCUMENTS = {"api/v1", "apis/apiextensions.k8s.io/v1", "apis/coordination.k8s.io/v1",
                     "apis/iaas.scs.community/v1alpha1", "apis/iam.scs.community/v1alpha1",
                     "apis/kaas.scs.community/v1alpha1", "apis/status.scs.community/v1alpha1",
                     "apis/metering.scs.community/v1alpha1",
                     "apis/rbac.authorization.k8s.io/v1", "apis/tenancy.scs.community/v1alpha1",
                     "apis/authentication.k8s.io/v1", "apis/authentication.k8s.io/v1beta1",
                     "apis/authentication.k8s.io/v1alpha1", "apis/authorization.k8s.io/v1"}
LIST_QUERY = {"labelSelector": "string", "fieldSelector": "string", "limit": "integer",
              "continue": "string", "resourceVersion": "string",
              "resourceVersionMatch": "string", "watch": "boolean",
              "allowWatchBookmarks": "boolean", "sendInitialEvents": "boolean",
              "timeoutSeconds": "integer"}
WRITE_QUERY = {"dryRun": "string", "fieldManager": "string", "fieldValidation": "string"}
ANSWERED_KINDS = {"TokenRequest", "SelfSubjectReview", "SelfSubjectAccessReview",
                  "SelfSubjectRulesReview", "KubeconfigRequest", "AdminKubeconfigRequest"}
"""Created and answered, never stored: no write parameters apply."""


def documents(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every served v3 document by its index key, plus ``v2``."""
    out = {}
    for key, url in served_documents(http).items():
        response = http.get(url)
        assert response.status_code == 200, f"{url}: {response.text}"
        out[key] = response.json()
    v2 = http.get("/openapi/v2", headers={"Accept": "application/json"})
    assert v2.status_code == 200, v2.text
    out["v2"] = v2.json()
    return out


@pytest.fixture(scope="module")
def served(http: httpx.Client) -> dict[str, dict[str, Any]]:
    return documents(http)


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], list[Any]]]:
    """(path, method, operation, path-level parameters) of every operation."""
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method], item.get("parameters", [])


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only local references are served"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_served_group_version_has_a_document(
        http: httpx.Client, served: dict[str, dict[str, Any]]) -> None:
    """What discovery lists, the documents cover: stored kinds and review resources."""
    groups = http.get("/apis").json()["groups"]
    listed = {"api/v1"} | {f"apis/{v['groupVersion']}" for g in groups for v in g["versions"]}
    assert listed == set(served) - {"v2"}


def test_every_built_in_group_version_and_the_crd_have_a_document(
        served: dict[str, dict[str, Any]]) -> None:
    assert set(served) == BUILTIN_DOCUMENTS | set(CRD_DOCUMENTS) | {"v2"}


def test_every_served_document_passes_the_openapi_validator(
        served: dict[str, dict[str, Any]]) -> None:
    problems = {}
    for key, doc in served.items():
        validator = OpenAPIV2SpecValidator if key == "v2" else OpenAPIV30SpecValidator
        errors = [str(e).splitlines()[0] for e in validator(doc).iter_errors()]
        if errors:
            problems[key] = errors[:5]
    assert not problems


def test_every_ref_resolves_inside_its_document(served: dict[str, dict[str, Any]]) -> None:
    for doc in served.values():
        for ref in set(refs(doc)):
            assert isinstance(resolve(doc, ref), dict)


def test_per_object_paths_declare_their_name_and_namespace(
        served: dict[str, dict[str, Any]]) -> None:
    """The symptom generators reported: ``/tenants/{name}`` without a ``name`` parameter."""
    for key, doc in served.items():
        for path, method, op, path_params in operations(doc):
            declared = {p["name"] for p in path_params + op.get("parameters", [])
                        if p.get("in") == "path" and p.get("required")}
            assert set(re.findall(r"{(\w+)}", path)) == declared, f"{key} {method} {path}"


def test_operation_ids_are_unique_and_named_like_kube(
        served: dict[str, dict[str, Any]]) -> None:
    for key, doc in served.items():
        ids = [op["operationId"] for _, _, op, _ in operations(doc)]
        assert len(ids) == len(set(ids)), key
    core = {op["operationId"] for _, _, op, _ in operations(served["api/v1"])}
    assert {"listCoreV1NamespacedSecret", "listCoreV1SecretForAllNamespaces",
            "readCoreV1Namespace", "replaceCoreV1NamespaceStatus",
            "deleteCoreV1CollectionNamespacedSecret",
            "createCoreV1NamespacedServiceAccountToken"} <= core
    tenancy = {op["operationId"]
               for _, _, op, _ in operations(served["apis/tenancy.scs.community/v1alpha1"])}
    assert "patchTenancyScsCommunityV1alpha1TenantStatus" in tenancy


def test_list_and_write_operations_declare_kube_query_parameters(
        served: dict[str, dict[str, Any]]) -> None:
    for key, doc in served.items():
        for path, method, op, _ in operations(doc):
            params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
            types = {name: p["schema"]["type"] if "schema" in p else p["type"]
                     for name, p in params.items()}
            action = op["x-kubernetes-action"]
            if op["x-kubernetes-group-version-kind"]["kind"] in ANSWERED_KINDS:
                continue
            if action == "list":
                assert types == LIST_QUERY, f"{key} {method} {path}"
            if action in ("post", "put", "patch"):
                assert WRITE_QUERY.items() <= types.items(), f"{key} {method} {path}"
            if action == "patch":
                assert types["force"] == "boolean", f"{key} {method} {path}"


def test_v3_operations_name_their_kind_for_kubectl(served: dict[str, dict[str, Any]]) -> None:
    """kubectl finds a kind's PATCH operation by its group-version-kind and reads there
    whether the server validates fields and which patch types it takes."""
    patches = [op for key in CRD_DOCUMENTS for _, method, op, _ in operations(served[key])
               if method == "patch"]
    assert {op["x-kubernetes-group-version-kind"]["kind"] for op in patches} == {"Gadget"}
    for op in patches:
        assert "application/strategic-merge-patch+json" not in op["requestBody"]["content"]
        assert "fieldValidation" in {p["name"] for p in op["parameters"]}
    secrets = served["api/v1"]["paths"]["/api/v1/namespaces/{namespace}/secrets/{name}"]
    assert "application/strategic-merge-patch+json" in secrets["patch"]["requestBody"]["content"]
