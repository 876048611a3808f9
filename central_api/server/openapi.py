"""OpenAPI documents generated from the catalog, shaped like kube-apiserver's.

Two kinds of readers depend on them:

- **kubectl**: ``explain`` reads component schemas found by their
  ``x-kubernetes-group-version-kind``; server-side field validation and ``--dry-run=server``
  are detected from the ``fieldValidation``/``dryRun`` parameters written on a kind's PATCH
  operation itself (kubectl stops at the first PATCH operation of the kind it meets, so every
  PATCH operation carries them, the ``/status`` one too); and ``kubectl apply`` sends strategic
  merge patches only to kinds whose PATCH operation lists that media type (built-in kinds;
  custom resources don't support it, as in Kubernetes).
- **generators and fuzzers** (SDKs, Terraform, schemathesis): every path parameter is declared
  (``name``, ``namespace``, at path level like kube), operation ids are unique and follow
  kube's ``<verb><Group><Version>[Namespaced]<Kind>[Status]`` scheme, every ``$ref``
  resolves inside its document, and the responses say what this server answers.

Deliberate differences from kube-apiserver's documents, so that the documents tell the truth:
only query parameters this server honours are declared (no ``pretty``, no
``gracePeriodSeconds``); responses are JSON only; DELETE answers the object (deleted, or
still waiting for finalizers) and deletecollection the list of deleted objects, not a
``Status``; errors are a ``default`` response with the ``Status`` schema (kube documents only
``401``), which is how every error of this server, and kube's, is shaped; a JSON patch body is
an array of operations rather than kube's catch-all ``Patch`` object. The deprecated
``/watch/`` paths are not served, so not documented.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from typing import Any

import orjson

from ..kinds.catalog import Catalog
from ..kinds.kind import ResourceType
from . import openapi_pb
from .discovery import VIRTUAL_RESOURCES, VirtualResource, served_group_versions, virtual

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
STATUS_SCHEMA = f"{META}.Status"
DELETE_OPTIONS_SCHEMA = f"{META}.DeleteOptions"
PATCH_SCHEMA = f"{META}.Patch"
TOKEN_REQUEST_SCHEMA = "io.k8s.api.authentication.v1.TokenRequest"  # noqa: S105  # nosec B105 - a schema name
JSON = "application/json"
YAML = "application/yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
SMP = "application/strategic-merge-patch+json"
V2_VERSION = "v0.1.0"

_STRING: dict[str, Any] = {"type": "string"}
_STRINGS: dict[str, Any] = {"type": "array", "items": _STRING}
_INT32: dict[str, Any] = {"type": "integer", "format": "int32"}
_INT64: dict[str, Any] = {"type": "integer", "format": "int64"}

LIST_META: dict[str, Any] = {
    "type": "object",
    "description": "Standard list metadata.",
    "properties": {
        "resourceVersion": {**_STRING, "description": "Revision the list was read at."},
        "continue": {**_STRING, "description": "Token for the next page, if there is one."},
        "remainingItemCount": {**_INT64,
                               "description": "Objects after this page (estimate)."},
    },
}

_SCHEMAS: dict[str, dict[str, Any]] = {
    STATUS_SCHEMA: {
        "type": "object",
        "description": "The outcome of a request that returns no object: every error.",
        "properties": {
            "apiVersion": _STRING, "kind": _STRING, "metadata": LIST_META,
            "status": {**_STRING, "description": "Success or Failure."},
            "message": {**_STRING, "description": "What went wrong, for humans."},
            "reason": {**_STRING, "description": "Machine-readable reason, e.g. NotFound."},
            "code": {**_INT32, "description": "The HTTP status code."},
            "details": {
                "type": "object",
                "description": "The object the error is about and the fields at fault.",
                "properties": {
                    "name": _STRING, "group": _STRING, "kind": _STRING, "uid": _STRING,
                    "retryAfterSeconds": _INT32,
                    "causes": {"type": "array", "items": {
                        "type": "object",
                        "properties": {"reason": _STRING, "message": _STRING,
                                       "field": _STRING}}},
                },
            },
        },
    },
    DELETE_OPTIONS_SCHEMA: {
        "type": "object",
        "description": "Options of a deletion, sent as the body of DELETE.",
        "properties": {
            "apiVersion": _STRING, "kind": _STRING,
            "dryRun": {**_STRINGS, "description": "All: do not persist the deletion."},
            "gracePeriodSeconds": {**_INT64, "description": "Accepted and ignored."},
            "orphanDependents": {"type": "boolean",
                                 "description": "Deprecated: propagationPolicy Orphan."},
            "propagationPolicy": {**_STRING,
                                  "description": "Orphan, Background or Foreground."},
            "preconditions": {"type": "object",
                              "description": "Delete only the object with this uid and "
                                             "resourceVersion (409 otherwise).",
                              "properties": {"uid": _STRING, "resourceVersion": _STRING}},
        },
    },
    PATCH_SCHEMA: {
        "type": "object",
        "description": "A merge patch, strategic merge patch or apply configuration: the "
                       "fields to set, in the shape of the object.",
    },
}
_TOKEN_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "TokenRequest requests a token for a ServiceAccount.",
    "required": ["spec"],
    "properties": {
        "apiVersion": _STRING, "kind": _STRING,
        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "spec": {"type": "object", "properties": {
            "audiences": {**_STRINGS, "description": "Audiences of the token (default: the "
                                                     "server's)."},
            "expirationSeconds": {**_INT64, "description": "Requested lifetime, at least 600."},
            "boundObjectRef": {"type": "object", "description": "Not supported: tokens are "
                                                                "bound to the account only.",
                               "x-kubernetes-preserve-unknown-fields": True},
        }},
        "status": {"type": "object", "properties": {
            "token": _STRING,
            "expirationTimestamp": {**_STRING, "format": "date-time"},
        }},
    },
    "x-kubernetes-group-version-kind": [{"group": "authentication.k8s.io", "version": "v1",
                                         "kind": "TokenRequest"}],
}
_ATTRIBUTES = {"type": "object", "properties": {
    name: _STRING for name in ("namespace", "verb", "group", "version", "resource",
                               "subresource", "name")}}
_RULES = {"type": "array", "items": {"type": "object", "properties": {
    name: _STRINGS for name in ("verbs", "apiGroups", "resources", "resourceNames",
                                "nonResourceURLs")}}}
REVIEW_SCHEMAS: dict[str, dict[str, Any]] = {
    "SelfSubjectReview": {
        "description": "Who the caller is, as the server authenticated it (kubectl auth "
                       "whoami).",
        "properties": {"status": {"type": "object", "properties": {"userInfo": {
            "type": "object", "properties": {
                "username": _STRING, "uid": _STRING, "groups": _STRINGS,
                "extra": {"type": "object", "additionalProperties": _STRINGS}}}}}},
    },
    "SelfSubjectAccessReview": {
        "description": "Whether the caller may do something (kubectl auth can-i).",
        "required": ["spec"],
        "properties": {
            "spec": {"type": "object", "description": "Exactly one of resourceAttributes and "
                                                      "nonResourceAttributes.",
                     "properties": {"resourceAttributes": _ATTRIBUTES,
                                    "nonResourceAttributes": {"type": "object", "properties": {
                                        "path": _STRING, "verb": _STRING}}}},
            "status": {"type": "object", "properties": {
                "allowed": {"type": "boolean"}, "denied": {"type": "boolean"},
                "reason": _STRING, "evaluationError": _STRING}},
        },
    },
    "SelfSubjectRulesReview": {
        "description": "What the caller may do in a namespace (kubectl auth can-i --list).",
        "required": ["spec"],
        "properties": {
            "spec": {"type": "object", "properties": {"namespace": _STRING}},
            "status": {"type": "object", "properties": {
                "resourceRules": _RULES, "nonResourceRules": _RULES,
                "incomplete": {"type": "boolean"}, "evaluationError": _STRING}},
        },
    },
}
"""Schemas of the review resources (kubectl auth whoami / can-i): answered, never stored."""
JSON_PATCH_BODY: dict[str, Any] = {
    "type": "array",
    "description": "An RFC 6902 JSON patch: operations applied in order.",
    "items": {
        "type": "object",
        "required": ["op", "path"],
        "properties": {
            "op": {**_STRING, "enum": ["add", "remove", "replace", "move", "copy", "test"]},
            "path": {**_STRING, "description": "JSON pointer to the target field."},
            "from": {**_STRING, "description": "Source of move and copy."},
            "value": {"description": "The value of add, replace and test."},
        },
    },
}


def _query(name: str, description: str, type_: str = "string",
           enum: list[str] | None = None) -> dict[str, Any]:
    """A query parameter; ``enum`` where the server accepts a fixed set of values (kube
    lists them only in the description, which generators cannot read)."""
    schema: dict[str, Any] = {"type": type_}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": {"type": "string"}}


NAMESPACE_PARAM = _path("namespace", "object name and auth scope, such as for teams and "
                                     "projects")
DRY_RUN = _query("dryRun", "When present, modifications are not persisted. The only valid "
                           "value is All.", enum=["All"])
FIELD_MANAGER = _query("fieldManager", "Name of the actor making the change (at most 128 "
                                       "characters); required for apply patches.")
FIELD_VALIDATION = _query("fieldValidation", "How unknown fields in the body are handled: "
                                             "Ignore, Warn (default) or Strict.",
                          enum=["Ignore", "Warn", "Strict"])
FORCE = _query("force", "Apply only: take over fields other managers own.", "boolean")
PROPAGATION = _query("propagationPolicy", "Whether and how dependents are deleted: Orphan, "
                                          "Background or Foreground.",
                     enum=["Orphan", "Background", "Foreground"])
SELECTORS = [
    _query("labelSelector", "Restrict the list to objects with matching labels."),
    _query("fieldSelector", "Restrict the list by fields (metadata.name, "
                            "metadata.namespace)."),
]
PAGING = [
    _query("limit", "Maximum number of items to return; continue with the token in "
                    "metadata.continue.", "integer"),
    _query("continue", "Token from a previous page (410 once compacted)."),
    _query("resourceVersion", "Revision to list or watch from."),
    _query("resourceVersionMatch", "How resourceVersion applies to a list: Exact or "
                                   "NotOlderThan.", enum=["Exact", "NotOlderThan"]),
]
WATCH = [
    _query("watch", "Stream changes instead of listing.", "boolean"),
    _query("allowWatchBookmarks", "Send BOOKMARK events.", "boolean"),
    _query("sendInitialEvents", "Start the watch with the current objects (needs "
                                "resourceVersionMatch=NotOlderThan).", "boolean"),
    _query("timeoutSeconds", "End the list/watch call after this many seconds.", "integer"),
]
WRITE_PARAMS = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION]
LIST_PARAMS = SELECTORS + PAGING + WATCH
DELETE_COLLECTION_PARAMS = [DRY_RUN, PROPAGATION, *SELECTORS, *PAGING]


def schema_name(rt: ResourceType) -> str:
    """``io.k8s.api.core.v1.Namespace`` for core kinds, reversed group for the others."""
    if not rt.group:
        return f"io.k8s.api.core.v1.{rt.kind}"
    return f"{'.'.join(reversed(rt.group.split('.')))}.{rt.version}.{rt.kind}"


def list_schema_name(rt: ResourceType) -> str:
    return schema_name(rt).rsplit(".", 1)[0] + "." + rt.list_kind


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _gvk(rt: ResourceType, kind: str = "") -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": kind or rt.kind}


def _identifier(text: str, capitalize: bool) -> str:
    """kube's ``ToValidOperationID``: letters kept, the letter after a dropped character
    upper-cased (``tenancy.scs.community`` → ``TenancyScsCommunity``)."""
    out, upper = [], capitalize
    for i, char in enumerate(text):
        if char.isalpha() or char == "_" or (i and char.isdigit()):
            out.append(char.upper() if upper else char)
            upper = False
        else:
            upper = True
    return "".join(out)


def _naming(group: str, version: str) -> tuple[str, str]:
    """kube's operation-id infix and tag of a group/version: (``CoreV1``, ``core_v1``),
    (``RbacAuthorizationV1``, ``rbacAuthorization_v1``)."""
    short = (group or "core").removesuffix(".k8s.io")
    return (_identifier(short, True) + _identifier(version, True),
            f"{_identifier(short, False)}_{_identifier(version, False)}")


def _content(schema: dict[str, Any], *types: str) -> dict[str, Any]:
    return {t: {"schema": schema} for t in types}


def _responses(schema: dict[str, Any], *codes: str) -> dict[str, Any]:
    names = {"200": "OK", "201": "Created", "202": "Accepted"}
    out: dict[str, Any] = {code: {"description": names[code], "content": _content(schema, JSON)}
                           for code in codes}
    out["default"] = {"description": "Error: a Status with the reason and the fields at fault.",
                      "content": _content(_ref(STATUS_SCHEMA), JSON)}
    return out


class _Operations:
    """The operations of one kind, named and tagged like kube-apiserver's."""

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt
        self.gv, self.tag = _naming(rt.group, rt.version)
        self.scope = "Namespaced" if rt.namespaced else ""
        self.ref = _ref(schema_name(rt))

    def op(self, verb: str, action: str, description: str, params: list[dict[str, Any]],
           responses: dict[str, Any], body: dict[str, Any] | None = None, *,
           name: str = "", gvk: dict[str, str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "description": description,
            "operationId": f"{verb}{self.gv}{name or self.scope + self.rt.kind}",
            "tags": [self.tag],
        }
        if params:
            out["parameters"] = params
        if body is not None:
            out["requestBody"] = body
        out["responses"] = responses
        out["x-kubernetes-action"] = action
        out["x-kubernetes-group-version-kind"] = gvk or _gvk(self.rt)
        return out

    def object_body(self) -> dict[str, Any]:
        return {"required": True, "content": _content(self.ref, JSON, YAML)}

    def patch_body(self) -> dict[str, Any]:
        types = [MERGE_PATCH, APPLY_PATCH] + ([SMP] if self.rt.builtin else [])
        content = {JSON_PATCH: {"schema": JSON_PATCH_BODY}, **_content(_ref(PATCH_SCHEMA), *types)}
        return {"required": True, "content": content}

    @staticmethod
    def delete_body() -> dict[str, Any]:
        return {"content": _content(_ref(DELETE_OPTIONS_SCHEMA), JSON)}


def _paths(rt: ResourceType) -> dict[str, Any]:
    ops = _Operations(rt)
    kind, ref, list_ref = rt.kind, ops.ref, _ref(list_schema_name(rt))
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
    scoped = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else \
        f"{prefix}/{rt.plural}"
    item = f"{scoped}/{{name}}"
    scope_params = [NAMESPACE_PARAM] if rt.namespaced else []
    item_params = [_path("name", f"name of the {kind}"), *scope_params]
    verbs = set(rt.verbs)

    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = ops.op("list", "list", f"list or watch objects of kind {kind}",
                                   LIST_PARAMS, _responses(list_ref, "200"))
    if "create" in verbs:
        collection["post"] = ops.op("create", "post", f"create a {kind}", WRITE_PARAMS,
                                    _responses(ref, "200", "201", "202"), ops.object_body())
    if "deletecollection" in verbs:
        collection["delete"] = ops.op(
            "delete", "deletecollection", f"delete collection of {kind}",
            DELETE_COLLECTION_PARAMS, _responses(list_ref, "200"), ops.delete_body(),
            name=f"Collection{ops.scope}{kind}")
    single: dict[str, Any] = {}
    if "get" in verbs:
        single["get"] = ops.op("read", "get", f"read the specified {kind}", [],
                               _responses(ref, "200"))
    if "update" in verbs:
        single["put"] = ops.op("replace", "put", f"replace the specified {kind}", WRITE_PARAMS,
                               _responses(ref, "200", "201"), ops.object_body())
    if "patch" in verbs:
        single["patch"] = ops.op("patch", "patch", f"partially update the specified {kind}",
                                 [*WRITE_PARAMS, FORCE], _responses(ref, "200", "201"),
                                 ops.patch_body())
    if "delete" in verbs:
        single["delete"] = ops.op("delete", "delete", f"delete a {kind}", [DRY_RUN, PROPAGATION],
                                  _responses(ref, "200", "202"), ops.delete_body())

    paths: dict[str, Any] = {}
    if collection:
        paths[scoped] = {**({"parameters": scope_params} if scope_params else {}), **collection}
    if rt.namespaced and "list" in verbs:
        paths[f"{prefix}/{rt.plural}"] = {"get": ops.op(
            "list", "list", f"list or watch objects of kind {kind}", LIST_PARAMS,
            _responses(list_ref, "200"), name=f"{kind}ForAllNamespaces")}
    if single:
        paths[item] = {"parameters": item_params, **single}
    for sub, (sub_kind, sub_verbs) in rt.subresources().items():
        paths[f"{item}/{sub}"] = {"parameters": [
            _path("name", f"name of the {sub_kind}" if sub != "status" else f"name of the {kind}"),
            *scope_params], **_subresource(ops, sub, sub_kind, sub_verbs)}
    return paths


def _subresource(ops: _Operations, sub: str, sub_kind: str, verbs: tuple[str, ...]
                 ) -> dict[str, Any]:
    kind, ref = ops.rt.kind, ops.ref
    suffix = _identifier(sub, True)
    name = f"{ops.scope}{kind}{suffix}"
    if sub != "status":
        # An action subresource (a ServiceAccount's token, a Cluster's kubeconfig): create
        # only, its own kind, and nothing stored, so no write parameters.
        declared = ops.rt.action_kinds.get(sub)
        sub_ref = _ref(schema_name(declared) if declared else TOKEN_REQUEST_SCHEMA)
        gvk = _gvk(declared) if declared else {"group": "authentication.k8s.io",
                                               "version": "v1", "kind": sub_kind}
        return {"post": ops.op("create", "post", f"create {sub_kind} of a {kind}", [],
                               _responses(sub_ref, "200", "201", "202"),
                               {"required": True, "content": _content(sub_ref, JSON)},
                               name=name, gvk=gvk)} if "create" in verbs else {}
    out: dict[str, Any] = {}
    if "get" in verbs:
        out["get"] = ops.op("read", "get", f"read status of the specified {kind}", [],
                            _responses(ref, "200"), name=name)
    if "update" in verbs:
        out["put"] = ops.op("replace", "put", f"replace status of the specified {kind}",
                            WRITE_PARAMS, _responses(ref, "200", "201"), ops.object_body(),
                            name=name)
    if "patch" in verbs:
        out["patch"] = ops.op("patch", "patch", f"partially update status of the specified "
                                                f"{kind}", [*WRITE_PARAMS, FORCE],
                              _responses(ref, "200", "201"), ops.patch_body(), name=name)
    return out


def review_schema_name(review: VirtualResource, version: str) -> str:
    """kube's name, e.g. ``io.k8s.api.authorization.v1.SelfSubjectAccessReview``."""
    return f"io.k8s.api.{review.group.split('.')[0]}.{version}.{review.kind}"


def _review_paths(review: VirtualResource, version: str) -> dict[str, Any]:
    """The create-only operation of a review resource (no query parameters: a review
    stores nothing, so dryRun and field handling do not apply)."""
    ref = _ref(review_schema_name(review, version))
    gv, tag = _naming(review.group, version)
    return {f"/apis/{review.group}/{version}/{review.plural}": {"post": {
        "description": f"create a {review.kind}",
        "operationId": f"create{gv}{review.kind}",
        "tags": [tag],
        "requestBody": {"required": True, "content": _content(ref, JSON, YAML)},
        "responses": _responses(ref, "200", "201", "202"),
        "x-kubernetes-action": "post",
        "x-kubernetes-group-version-kind": {"group": review.group, "version": version,
                                            "kind": review.kind},
    }}}


def _review_component(review: VirtualResource, version: str) -> dict[str, Any]:
    schema = copy.deepcopy(REVIEW_SCHEMAS[review.kind])
    schema["type"] = "object"
    schema["properties"] = {"apiVersion": _STRING, "kind": _STRING,
                            "metadata": {"type": "object",
                                         "x-kubernetes-preserve-unknown-fields": True},
                            **schema["properties"]}
    schema["x-kubernetes-group-version-kind"] = [{"group": review.group, "version": version,
                                                  "kind": review.kind}]
    return schema


def _component(rt: ResourceType, v2: bool) -> dict[str, Any]:
    """The kind's schema, a copy only where it differs (it is encoded at once, never
    changed: copying every CRD's schema whole was a third of building the documents)."""
    schema = _without_v3_only(rt.schema) if v2 else dict(rt.schema)
    if _publishes_gvk(rt, v2):
        schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


def _publishes_gvk(rt: ResourceType, v2: bool) -> bool:
    """Custom kinds carry no GVK in v2: kubectl 1.27's apply would find their v2 schema and
    send strategic merge patches, which custom resources refuse (415)."""
    return not v2 or rt.builtin


def _list_component(rt: ResourceType, v2: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "description": f"{rt.list_kind} is a list of {rt.kind} objects.",
        "required": ["items"],
        "properties": {
            "apiVersion": _STRING, "kind": _STRING, "metadata": LIST_META,
            "items": {"type": "array", "items": _ref(schema_name(rt))},
        },
    }
    if _publishes_gvk(rt, v2):
        schema["x-kubernetes-group-version-kind"] = [_gvk(rt, rt.list_kind)]
    return schema


def _without_v3_only(node: Any) -> Any:
    """Swagger 2.0 has no ``nullable``; the rest of a structural schema carries over."""
    if isinstance(node, dict):
        return {k: _without_v3_only(v) for k, v in node.items() if k != "nullable"}
    if isinstance(node, list):
        return [_without_v3_only(v) for v in node]
    return node


class _Share:
    """What one kind adds to the documents: its paths and component schemas."""

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt

    def paths(self) -> dict[str, Any]:
        return _paths(self.rt)

    def schemas(self, v2: bool) -> dict[str, Any]:
        """The kind, its list and what its subresources take."""
        rt = self.rt
        schemas = {schema_name(rt): _component(rt, v2),
                   list_schema_name(rt): _list_component(rt, v2)}
        if "token" in rt.subresources():
            schemas[TOKEN_REQUEST_SCHEMA] = copy.deepcopy(_TOKEN_REQUEST)
        for declared in rt.action_kinds.values():
            schemas[schema_name(declared)] = _component(declared, v2)
        return schemas


class _ReviewShare(_Share):
    """A review resource's share: its create operation and its schema."""

    def __init__(self, review: VirtualResource, version: str) -> None:
        self.review, self.version = review, version

    def paths(self) -> dict[str, Any]:
        return _review_paths(self.review, self.version)

    def schemas(self, v2: bool) -> dict[str, Any]:
        return {review_schema_name(self.review, self.version):
                _review_component(self.review, self.version)}


class _MetaShare(_Share):
    """The meta.k8s.io types every document's operations refer to."""

    def __init__(self) -> None:
        pass

    def paths(self) -> dict[str, Any]:
        return {}

    def schemas(self, v2: bool) -> dict[str, Any]:
        return copy.deepcopy(_SCHEMAS)


_META = _MetaShare()
_REVIEWS = {(review, version): _ReviewShare(review, version)
            for review in VIRTUAL_RESOURCES for version in review.versions}
_STATIC = {id(_META), *(id(share) for share in _REVIEWS.values())}
"""The shares that never change, whatever the catalog serves."""

_Parts = tuple[dict[str, Any], dict[str, Any]]
"""A share encoded for one document format: its paths and its schemas by name, each
pre-serialized (``orjson.Fragment``, protobuf bytes for the schemas of ``protobuf``)."""


def _encode(share: _Share, form: str) -> _Parts:
    """``share`` in the document format ``form``: ``v3``, ``v2`` (JSON) or ``protobuf``
    (v2 definitions only, see :mod:`openapi_pb`)."""
    if form == "v3":
        return _fragments(share.paths()), _fragments(share.schemas(v2=False))
    definitions = _to_definitions(share.schemas(v2=True))
    if form == "v2":
        return _fragments(_v2_paths(share.paths())), _fragments(definitions)
    return {}, {name: openapi_pb.named_schema(name, value) for name, value in definitions.items()}


def _fragments(values: dict[str, Any]) -> dict[str, orjson.Fragment]:
    return {name: orjson.Fragment(dumps(value)) for name, value in values.items()}


def dumps(value: Any) -> bytes:
    """``orjson.dumps``, copied into bytes of its exact size, for what is kept: orjson's
    result keeps the buffer it grew into (a 3 KB schema held 32 KiB, a 17 MB document
    32 MiB), which tripled the memory of the cached documents."""
    return bytes(memoryview(orjson.dumps(value)))


def _merged(parts: list[_Parts], which: int) -> dict[str, Any]:
    """The parts' paths (``which`` 0) or schemas (1) in order; a later part's entry of the
    same name wins and keeps the first one's place (as ``dict.update`` does)."""
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part[which])
    return out


KEPT_FORMS = ("v2", "protobuf")
"""The formats whose parts are kept: each v2 document holds every kind, so a CRD change would
otherwise re-encode all of them. A v3 document holds one group/version, whose few kinds are
encoded again when it changes (keeping them cost 26 MiB with 500 CRDs)."""


class OpenApiDocuments:
    """The documents of what ``catalog`` serves, joined from :data:`_Parts` encoded per
    served kind and document format; those of :data:`KEPT_FORMS` are kept while the kind is
    served (a CRD change brings new ResourceType objects, and the parts of the old ones are
    dropped). Each format is encoded only once a client asks for it. Thread-safe: documents
    are built in worker threads."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._kinds: dict[tuple[int, str], tuple[_Share, _Parts]] = {}
        """By ``id`` of the kind's ResourceType (held by its share) and format."""
        self._hashes: dict[tuple[str, str], tuple[tuple[int, ...], str]] = {}
        """v3 document hash per group/version, with the ids of the kinds it was made of."""

    def _parts(self, group_versions: list[tuple[str, str]], form: str) -> list[_Parts]:
        with self._lock:
            kept = _STATIC | {id(rt) for rt in self.catalog.all()}
            for key in [key for key in self._kinds if key[0] not in kept]:
                del self._kinds[key]
            parts = [self._encoded(_META, id(_META), form)]
            for group, version in group_versions:
                parts += [self._encoded(_Share(rt), id(rt), form)
                          for rt in self.catalog.in_version(group, version)]
                reviews = [_REVIEWS[(review, version)] for review in virtual(group, version)]
                parts += [self._encoded(share, id(share), form) for share in reviews]
            return parts

    def _encoded(self, share: _Share, key: int, form: str) -> _Parts:
        known = self._kinds.get((key, form))
        if known is not None:
            return known[1]
        parts = _encode(share, form)
        if form in KEPT_FORMS:
            self._kinds[(key, form)] = (share, parts)
        return parts

    def group_version(self, group: str, version: str) -> bytes | None:
        """``/openapi/v3/apis/<group>/<version>`` (``api/v1`` for the core group)."""
        if (group, version) not in served_group_versions(self.catalog):
            return None
        parts = self._parts([(group, version)], "v3")
        return dumps({
            "openapi": "3.0.0", "info": {"title": "SCS Central API", "version": version},
            "paths": _merged(parts, 0), "components": {"schemas": _merged(parts, 1)}})

    def index(self) -> bytes:
        """``/openapi/v3``: one entry per group-version with a content hash for caching."""
        served = served_group_versions(self.catalog)
        paths = {}
        for group, version in served:
            key = f"apis/{group}/{version}" if group else "api/v1"
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?"
                                               f"hash={self._hash(group, version)}"}
        with self._lock:
            for gone in self._hashes.keys() - set(served):
                del self._hashes[gone]
        return dumps({"paths": paths})

    def _hash(self, group: str, version: str) -> str:
        """The group/version document's hash, computed again only when its kinds changed."""
        kinds = tuple(id(rt) for rt in self.catalog.in_version(group, version))
        known = self._hashes.get((group, version))
        if known is not None and known[0] == kinds:
            return known[1]
        digest = document_hash(self.group_version(group, version) or b"")
        self._hashes[(group, version)] = (kinds, digest)
        return digest

    def v2(self) -> bytes:
        """The Swagger 2.0 document of everything served: the v3 operations, converted."""
        parts = self._parts(served_group_versions(self.catalog), "v2")
        return dumps({
            "swagger": "2.0", "info": {"title": "SCS Central API", "version": V2_VERSION},
            "paths": _merged(parts, 0), "definitions": _merged(parts, 1)})

    def v2_protobuf(self) -> bytes:
        """The Swagger 2.0 document as protobuf (its definitions: see :mod:`openapi_pb`)."""
        parts = self._parts(served_group_versions(self.catalog), "protobuf")
        return openapi_pb.document("SCS Central API", V2_VERSION, _merged(parts, 1).values())


def _v2_paths(v3_paths: dict[str, Any]) -> dict[str, Any]:
    return {path: {method: _v2_operation(value) if method != "parameters"
                   else [_v2_parameter(p) for p in value] for method, value in item.items()}
            for path, item in v3_paths.items()}


def _to_definitions(node: Any) -> Any:
    """Rewrite ``#/components/schemas/`` references to Swagger 2.0's ``#/definitions/``."""
    if isinstance(node, dict):
        return {k: (v.replace("#/components/schemas/", "#/definitions/")
                    if k == "$ref" and isinstance(v, str) else _to_definitions(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_to_definitions(v) for v in node]
    return node


def _v2_parameter(param: dict[str, Any]) -> dict[str, Any]:
    """v3 ``schema: {type, enum}`` moves onto the v2 parameter itself, as kube writes it."""
    out = {k: v for k, v in param.items() if k != "schema"}
    out.update(param["schema"])
    out["uniqueItems"] = True
    return out


def _v2_operation(op: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in op.items() if k not in ("parameters", "requestBody", "responses")}
    params = [_v2_parameter(p) for p in op.get("parameters", [])]
    body = op.get("requestBody")
    if body is not None:
        types = list(body["content"])
        schemas = [c["schema"] for c in body["content"].values()]
        # One body schema per operation in v2: patches fall back to kube's Patch object.
        schema = schemas[0] if all(s == schemas[0] for s in schemas) else _ref(PATCH_SCHEMA)
        params.insert(0, {"name": "body", "in": "body", "required": body.get("required", False),
                          "schema": _to_definitions(schema)})
        out["consumes"] = types
    out["produces"] = [JSON]
    if params:
        out["parameters"] = params
    out["responses"] = {code: {"description": r["description"],
                               "schema": _to_definitions(r["content"][JSON]["schema"])}
                        for code, r in op["responses"].items()}
    return out


def document_hash(body: bytes) -> str:
    """A content hash of an encoded document: the same on every replica serving the same
    kinds, since documents are encoded in a fixed order."""
    return hashlib.sha512(body).hexdigest()[:32].upper()
