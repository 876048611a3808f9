"""OpenAPI documents generated from the catalog.

kubectl depends on them in specific ways: ``explain`` reads component schemas found by their
``x-kubernetes-group-version-kind``; server-side field validation and ``--dry-run=server`` are
detected from the ``fieldValidation``/``dryRun`` parameters of a kind's PATCH operation; and
``kubectl apply`` sends strategic merge patches only to kinds whose PATCH operation lists that
media type (built-in kinds; custom resources don't support it, as in Kubernetes).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from ..kinds.catalog import Catalog
from ..kinds.kind import ResourceType
from .discovery import _group_versions

PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/apply-patch+yaml"]
SMP = "application/strategic-merge-patch+json"
STATUS_SCHEMA = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"


def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_},
            "uniqueItems": True}


WRITE_PARAMS = [
    _query("dryRun", "When present, modifications are not persisted (All)."),
    _query("fieldManager", "Name of the actor making the change."),
    _query("fieldValidation", "Ignore, Warn or Strict handling of unknown fields."),
]
LIST_PARAMS = [
    _query("labelSelector", "Restrict the list by labels."),
    _query("fieldSelector", "Restrict the list by fields (metadata.name, metadata.namespace)."),
    _query("limit", "Maximum number of items to return.", "integer"),
    _query("continue", "Token from a previous page."),
    _query("resourceVersion", "Resource version to list or watch from."),
    _query("resourceVersionMatch", "How resourceVersion applies to a list."),
    _query("watch", "Stream changes instead of listing.", "boolean"),
    _query("allowWatchBookmarks", "Send BOOKMARK events.", "boolean"),
    _query("sendInitialEvents", "Start the watch with the current objects.", "boolean"),
    _query("timeoutSeconds", "End the list/watch after this long.", "integer"),
]


def schema_name(rt: ResourceType) -> str:
    """``io.k8s.api.core.v1.Namespace`` for core kinds, reversed group for the others."""
    if not rt.group:
        return f"io.k8s.api.core.v1.{rt.kind}"
    return f"{'.'.join(reversed(rt.group.split('.')))}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _paths(rt: ResourceType, ref: str) -> dict[str, Any]:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
    collection = (f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced
                  else f"{prefix}/{rt.plural}")
    item = f"{collection}/{{name}}"
    body = {"required": True, "content": {"application/json": {"schema": {"$ref": ref}},
                                          "application/yaml": {"schema": {"$ref": ref}}}}
    patch_types = PATCH_TYPES + ([SMP] if rt.builtin else [])
    patch_body = {"required": True, "content": {t: {"schema": {"type": "object"}}
                                                for t in patch_types}}

    def op(verb: str, action: str, params: list[dict[str, Any]],
           request: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operationId": f"{verb}{rt.kind}", "tags": [rt.group or "core"],
            "parameters": params,
            "responses": {"200": {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": ref}}}}},
            "x-kubernetes-action": action, "x-kubernetes-group-version-kind": _gvk(rt)}
        if request:
            out["requestBody"] = request
        return out

    paths: dict[str, Any] = {
        collection: {"get": op("list", "list", LIST_PARAMS),
                     "post": op("create", "post", WRITE_PARAMS, body),
                     "delete": op("deletecollection", "deletecollection", LIST_PARAMS)},
        item: {"get": op("read", "get", []), "put": op("replace", "put", WRITE_PARAMS, body),
               "patch": op("patch", "patch", WRITE_PARAMS + [_query("force", "Force apply.",
                                                                    "boolean")], patch_body),
               "delete": op("delete", "delete", [_query("dryRun", "Do not persist.")])},
    }
    if rt.status_subresource:
        paths[f"{item}/status"] = {
            "get": op("read", "get", []), "put": op("replace", "put", WRITE_PARAMS, body),
            "patch": op("patch", "patch", WRITE_PARAMS, patch_body)}
    for methods in paths.values():
        for method, operation in methods.items():
            operation["operationId"] = f"{method}:{rt.plural}:{operation['operationId']}"
    return paths


def _component(rt: ResourceType, v2: bool) -> dict[str, Any]:
    schema = copy.deepcopy(rt.schema)
    if v2:
        _strip_v3_only(schema)
    if not v2 or rt.builtin:
        schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


def _strip_v3_only(node: Any) -> None:
    """Swagger 2.0 has no ``nullable``; the rest of a structural schema carries over."""
    if isinstance(node, dict):
        node.pop("nullable", None)
        for value in node.values():
            _strip_v3_only(value)
    elif isinstance(node, list):
        for value in node:
            _strip_v3_only(value)


def v3_group_version(catalog: Catalog, group: str, version: str) -> dict[str, Any] | None:
    types = catalog.in_version(group, version)
    if not types:
        return None
    schemas: dict[str, Any] = {STATUS_SCHEMA: {"type": "object",
                                               "x-kubernetes-preserve-unknown-fields": True}}
    paths: dict[str, Any] = {}
    for rt in types:
        name = schema_name(rt)
        schemas[name] = _component(rt, v2=False)
        paths.update(_paths(rt, f"#/components/schemas/{name}"))
    return {"openapi": "3.0.0", "info": {"title": "SCS Central API", "version": version},
            "paths": paths, "components": {"schemas": schemas}}


def v3_index(catalog: Catalog) -> dict[str, Any]:
    """``/openapi/v3``: one entry per group-version with a content hash for caching."""
    paths = {}
    for group in catalog.groups():
        for version in _group_versions(catalog, group):
            doc = v3_group_version(catalog, group, version)
            if doc is None:
                continue
            key = f"apis/{group}/{version}" if group else "api/v1"
            digest = document_hash(doc)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


def v2(catalog: Catalog) -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for rt in catalog.all():
        definitions[schema_name(rt)] = _component(rt, v2=True)
    return {"swagger": "2.0", "info": {"title": "SCS Central API", "version": "v0.1.0"},
            "paths": {}, "definitions": definitions}


def document_hash(doc: dict[str, Any]) -> str:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha512(raw).hexdigest()[:32].upper()
