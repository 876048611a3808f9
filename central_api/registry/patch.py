"""PATCH semantics: JSON merge patch, JSON patch and Kubernetes strategic merge patch.

kubectl and the client libraries send three patch dialects and expect the answers kube-apiserver
gives, byte for byte in behaviour: ``kubectl label``/``annotate``/``edit`` and client-side
``kubectl apply`` send *strategic merge patches* for built-in kinds (Namespace, Secret, ...) whose
lists merge by key instead of being replaced, and they rely on the directives (``$patch``,
``$retainKeys``, ``$deleteFromPrimitiveList/``, ``$setElementOrder/``) that the three-way diff of
``kubectl apply`` produces. The algorithm follows ``k8s.io/apimachinery/pkg/util/strategicpatch``
(``mergeMap``/``mergeSlice``/``normalizeElementOrder``) with the server's options
``MergeParallelList`` and ``IgnoreUnmatchedNulls``. The patch strategy of a field is read from the
OpenAPI v3 schema (``x-kubernetes-patch-strategy``/``x-kubernetes-patch-merge-key``), and
``metadata`` always follows ObjectMeta's own rules, because CRD schemas do not describe it.

The schema helpers here (:func:`resource_schema`, :func:`field_schema`, :func:`json_equal`,
:func:`check_types`) are shared with :mod:`central_api.registry.apply`, which needs the same view
of the schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from central_api.kinds.structural import compiled, json_key
from central_api.machinery.bodies import (
    MAX_BODY_BYTES,
    MAX_STORED_DEPTH,
    check_document,
    decode_json,
)
from central_api.machinery.errors import (
    ApiError,
    Cause,
    bad_request,
    invalid,
    unsupported_media_type,
)

Schema = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"
_SET_ORDER_PREFIX = "$setElementOrder/"

MAX_JSON_PATCH_OPERATIONS = 10000
"""kube-apiserver's limit (kubernetes#74000): every operation walks the document."""
MAX_COPY_BYTES = MAX_BODY_BYTES
"""What the ``copy`` operations of one JSON patch may add in all: each copy can double the
document, so 30 operations of a kilobyte's body would otherwise ask for a terabyte."""

_STRING: Schema = {"type": "string"}
_STRING_MAP: Schema = {"type": "object", "additionalProperties": _STRING}

#: ObjectMeta as kube-apiserver's OpenAPI describes it: the list types and patch strategies are
#: what make ``finalizers`` a merged set and ``ownerReferences`` a list keyed by ``uid``.
OBJECT_META_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "name": _STRING,
        "generateName": _STRING,
        "namespace": _STRING,
        "selfLink": _STRING,
        "uid": _STRING,
        "resourceVersion": _STRING,
        "generation": {"type": "integer"},
        "creationTimestamp": _STRING,
        "deletionTimestamp": _STRING,
        "deletionGracePeriodSeconds": {"type": "integer"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "ownerReferences": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
            "x-kubernetes-patch-strategy": "merge",
            "x-kubernetes-patch-merge-key": "uid",
            "items": {
                "type": "object",
                "x-kubernetes-map-type": "atomic",
                "properties": {
                    "apiVersion": _STRING,
                    "kind": _STRING,
                    "name": _STRING,
                    "uid": _STRING,
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
            },
        },
        "finalizers": {
            "type": "array",
            "items": _STRING,
            "x-kubernetes-list-type": "set",
            "x-kubernetes-patch-strategy": "merge",
        },
        "managedFields": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
}


# --------------------------------------------------------------------------- schema helpers


def resource_schema(schema: Schema | None) -> Schema:
    """The schema of a whole object: ``apiVersion``/``kind`` declared, ``metadata`` = ObjectMeta."""
    base = schema or {}
    props = dict(base.get("properties") or {})
    props.setdefault("apiVersion", _STRING)
    props.setdefault("kind", _STRING)
    props["metadata"] = OBJECT_META_SCHEMA
    return {**base, "type": "object", "properties": props}


def field_schema(schema: Schema | None, key: str) -> Schema | None:
    """Schema of ``key`` inside an object described by ``schema``; ``None`` means unknown."""
    if not schema:
        return None
    props = schema.get("properties") or {}
    sub = props.get(key)
    if sub is None:
        extra = schema.get("additionalProperties")
        sub = extra if isinstance(extra, dict) else None
    if isinstance(sub, dict) and sub.get("x-kubernetes-embedded-resource"):
        return resource_schema(sub)
    return sub if isinstance(sub, dict) else None


def items_schema(schema: Schema | None) -> Schema | None:
    """Schema of the elements of a list described by ``schema``."""
    items = (schema or {}).get("items")
    if isinstance(items, dict) and items.get("x-kubernetes-embedded-resource"):
        return resource_schema(items)
    return items if isinstance(items, dict) else None


def is_declared(schema: Schema | None, key: str) -> bool:
    """True when ``key`` is a named property (a struct field) rather than a free map key."""
    return bool(schema) and key in ((schema or {}).get("properties") or {})


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike ``==``, ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return bool(type(a) is type(b) or _both_numbers(a, b)) and a == b


def _both_numbers(a: Any, b: Any) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float)


# --------------------------------------------------------------------------- JSON merge patch


def json_merge_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """RFC 7386: objects merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        raise bad_request("a merge patch must be a JSON object")
    result: dict[str, Any] = _merge_value(target, patch)
    return result


def _merge_value(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_value(out.get(key), value)
    return out


# --------------------------------------------------------------------------- JSON patch


def _json_patch_failed(detail: str) -> ApiError:
    # kube-apiserver: NewGenericServerResponse(422, ...) with the patch error as the only cause.
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our "
                    "request", causes=[Cause(field="", message=detail,
                                             reason="UnexpectedServerResponse")])


def _test_failure(op: dict[str, Any], document: Any) -> str:
    """kube's wording for a failed ``test`` op, without the library's Python type names."""
    try:
        actual = jsonpointer.resolve_pointer(document, op.get("path", ""))
    except jsonpointer.JsonPointerException:
        return f"testing value {op.get('path')} failed: path not found"
    return (f"testing value {op.get('path')} failed: expected {json.dumps(op.get('value'))}, "
            f"found {json.dumps(actual)}")


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902. A document that is not a list of objects is a 400, a failing operation a 422."""
    if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
        raise bad_request("json: cannot unmarshal the JSON patch: it must be an array of "
                          "operation objects")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(413, "RequestEntityTooLarge", "The allowed maximum operations in a JSON "
                       f"patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}")
    result: Any = copy.deepcopy(target)
    copied = 0
    try:
        for op in operations:  # one at a time, so a failed test can show the value it saw
            copied += _copy_size(op, result, copied)
            try:
                result = jsonpatch.JsonPatch([op]).apply(result, in_place=True)
            except jsonpatch.JsonPatchTestFailed as exc:
                raise _json_patch_failed(_test_failure(op, result)) from exc
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise _json_patch_failed(str(exc)) from exc
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise _json_patch_failed(f"invalid JSON patch operation: {exc}") from exc
    if not isinstance(result, dict):
        raise _json_patch_failed("the patched document is not a JSON object")
    return check_document(result, MAX_STORED_DEPTH)  # copy and add can nest without bound


def _copy_size(op: dict[str, Any], document: Any, copied: int) -> int:
    """Bytes a ``copy`` operation adds; a 422 once the patch's copies exceed the limit."""
    if op.get("op") != "copy":
        return 0
    try:
        size = len(orjson.dumps(jsonpointer.resolve_pointer(document, op.get("from", ""))))
    except (jsonpointer.JsonPointerException, TypeError, KeyError, IndexError):
        return 0  # the operation itself reports a bad pointer (orjson: nested beyond 255)
    if copied + size > MAX_COPY_BYTES:
        raise _json_patch_failed(f"Unable to copy, the accumulated size increase of copy is "
                                 f"{copied + size}, exceeding the limit {MAX_COPY_BYTES}")
    return size


# --------------------------------------------------------------------------- strategic merge


def strategic_merge_patch(target: dict[str, Any], patch: Any, schema: Schema) -> dict[str, Any]:
    """Kubernetes strategic merge patch of ``target`` driven by ``schema``'s patch strategies."""
    if not isinstance(patch, dict):
        raise bad_request("a strategic merge patch must be a JSON object")
    return _smp_map(copy.deepcopy(target), copy.deepcopy(patch), resource_schema(schema))


def _strategies(schema: Schema | None) -> list[str]:
    raw = (schema or {}).get("x-kubernetes-patch-strategy") or ""
    return [s.strip() for s in str(raw).split(",") if s.strip()]


def _merge_key(schema: Schema | None) -> str:
    return str((schema or {}).get("x-kubernetes-patch-merge-key") or "")


def _smp_map(original: dict[str, Any], patch: dict[str, Any],
             schema: Schema | None) -> dict[str, Any]:
    """``mergeMap``: map-level directive, ``$retainKeys``, ordering lists, then key by key."""
    if _DIRECTIVE in patch:
        directive = patch.pop(_DIRECTIVE)
        if directive == "replace":
            return _smp_map({}, patch, schema)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise bad_request(f"unknown patch type: {directive} in map: {patch}")
    _apply_retain_keys(original, patch)
    _apply_set_element_order(original, patch, schema)
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE_PREFIX):
            _delete_from_primitive_list(original, key[len(_DELETE_PRIMITIVE_PREFIX):], value)
        elif value is None:
            original.pop(key, None)
        else:
            original[key] = _smp_value(original.get(key), value, field_schema(schema, key))
    return original


def _smp_value(current: Any, value: Any, schema: Schema | None) -> Any:
    """Merge one field: maps recurse, lists follow the strategy, anything else replaces.

    A value absent from (or of another type than) the original is merged into an empty one, so
    nested nulls and directives never leak into the stored object.
    """
    if isinstance(value, dict):
        return _smp_map(current if isinstance(current, dict) else {}, value, schema)
    if isinstance(value, list):
        return _smp_list(current if isinstance(current, list) else [], value, schema)
    return value


def _smp_list(original: list[Any], patch: list[Any], schema: Schema | None) -> list[Any]:
    if "merge" not in _strategies(schema):
        return patch
    return _merge_slice(original, patch, items_schema(schema), _merge_key(schema))


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if _RETAIN_KEYS not in patch:
        return
    keys = patch.pop(_RETAIN_KEYS)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise bad_request("invalid patch format of retainKeys")
    keys = set(keys)
    for key in [k for k in original if k not in keys]:
        del original[key]
    for key, value in patch.items():
        if value is not None and not key.startswith("$") and key not in keys:
            raise _json_patch_failed("patch content doesn't match retainKeys list")


def _delete_from_primitive_list(original: dict[str, Any], field: str, values: Any) -> None:
    if not isinstance(values, list) or any(isinstance(v, dict | list) for v in values):
        raise bad_request("invalid patch format of primitive list")
    current = original.get(field)
    if not isinstance(current, list):
        return
    drop = {json_key(v) for v in values}
    original[field] = [item for item in current if json_key(item) not in drop]


# ---- $setElementOrder


def _apply_set_element_order(original: dict[str, Any], patch: dict[str, Any],
                             schema: Schema | None) -> None:
    """``mergePatchIntoOriginal``: merge the list, then order it as the directive says."""
    for key in [k for k in patch if k.startswith(_SET_ORDER_PREFIX)]:
        order = patch.pop(key)
        field = key[len(_SET_ORDER_PREFIX):]
        if not isinstance(order, list):
            raise bad_request("invalid patch format of setElementOrder list")
        sub = field_schema(schema, field)
        merge_key = _merge_key(sub)
        patch_list = patch.get(field)
        current = original.get(field)
        if field in patch and not isinstance(patch_list, list):
            continue  # null or another type: the plain merge below handles it
        if field in original and not isinstance(current, list):
            continue
        if patch_list is not None:
            _validate_order(patch_list, order, merge_key)
            merged = _smp_list(list(current or []), patch_list, sub)
            del patch[field]
        elif current is not None:
            merged = current
        else:
            continue
        patch_items, server_only = _partition(merged, order, merge_key)
        original[field] = _normalize_order(patch_items, server_only, order, current or [],
                                           merge_key)


def _validate_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    items = [i for i in patch_list if not (isinstance(i, dict) and _DIRECTIVE in i)]
    p = o = 0
    while p < len(items) and o < len(order):
        if _same_item(items[p], order[o], merge_key):
            p += 1
        o += 1
    if p < len(items):
        raise bad_request(f"The order in patch list:\n{patch_list}\n doesn't match "
                          f"{_SET_ORDER_PREFIX} list:\n{order}\n")


# ---- list merging


def _merge_slice(original: list[Any], patch: list[Any], item_schema: Schema | None,
                 merge_key: str) -> list[Any]:
    """``mergeSlice``: union of primitives, or merge of maps by key, then k8s ordering."""
    if not original and not patch:
        return original
    if _element_kind(original, patch) != "map":
        merged = _dedupe(original + patch)
        patch_items, server_only = _partition(merged, patch, "")
        return _normalize_order(patch_items, server_only, patch, original, "")
    if not merge_key:
        raise bad_request("cannot merge lists without merge key")
    original, patch = _special_elements(original, patch, merge_key, item_schema)
    merged = _merge_maps_by_key(original, patch, merge_key, item_schema)
    patch_items, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(patch_items, server_only, patch, original, merge_key)


def _element_kind(*lists: list[Any]) -> str:
    kinds = {"map" if isinstance(i, dict) else "list" if isinstance(i, list) else "scalar"
             for items in lists for i in items}
    if "list" in kinds:
        raise _json_patch_failed("lists of lists are not supported")
    if len(kinds) > 1:
        raise bad_request("mismatched element types in a list to merge")
    return kinds.pop() if kinds else "scalar"


def _dedupe(items: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out: list[Any] = []
    for item in items:
        key = json_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _special_elements(original: list[Any], patch: list[Any], merge_key: str,
                      item_schema: Schema | None) -> tuple[list[Any], list[Any]]:
    """``mergeSliceWithSpecialElements``: ``$patch: delete`` drops, ``replace`` replaces."""
    plain: list[Any] = []
    replace = False
    deleted: set[Any] = set()
    for item in patch:
        directive = item.get(_DIRECTIVE)
        if directive is None:
            plain.append(item)
        elif directive == "delete":
            if merge_key not in item:
                raise bad_request(f"map: {item} does not contain declared merge key: {merge_key}")
            deleted.add(_identity(item, merge_key))
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise bad_request(f"unknown patch type: {directive} in map: {item}")
    if replace:
        return [_smp_map({}, i, item_schema) for i in plain], []
    return [o for o in original if _identity(o, merge_key) not in deleted], plain


def _merge_maps_by_key(original: list[Any], patch: list[Any], merge_key: str,
                       item_schema: Schema | None) -> list[Any]:
    merged = list(original)
    positions = _positions(merged, merge_key)
    for item in patch:
        if merge_key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {merge_key}")
        index = positions.setdefault(_identity(item, merge_key), len(merged))
        if index < len(merged):
            merged[index] = _smp_map(copy.deepcopy(merged[index]), item, item_schema)
        else:
            merged.append(_smp_map({}, item, item_schema))
    return merged


# ---- ordering (normalizeElementOrder / mergeSortedSlice)
#
# Items are matched by a hashable identity (:func:`_identity`) in dictionaries, never by
# scanning: a patch of a few thousand finalizers took minutes of CPU with scans.


def _same_item(a: Any, b: Any, merge_key: str) -> bool:
    if not merge_key:
        return json_equal(a, b)
    return (isinstance(a, dict) and isinstance(b, dict) and merge_key in a and merge_key in b
            and json_equal(a[merge_key], b[merge_key]))


def _identity(item: Any, merge_key: str) -> Any:
    """What makes two items the same (:func:`_same_item`), hashable; None: matches nothing."""
    if not merge_key:
        return json_key(item)
    if isinstance(item, dict) and merge_key in item:
        return json_key(item[merge_key])
    return None


def _positions(items: list[Any], merge_key: str) -> dict[Any, int]:
    """The index of each identity's first item."""
    out: dict[Any, int] = {}
    for index, item in enumerate(items):
        key = _identity(item, merge_key)
        if key is not None:
            out.setdefault(key, index)
    return out


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    wanted = _positions(by, merge_key)
    inside = [i for i in merged if _identity(i, merge_key) in wanted]
    outside = [i for i in merged if _identity(i, merge_key) not in wanted]
    return inside, outside


def _sort_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    positions = _positions(order, merge_key)

    def position(pair: tuple[int, Any]) -> tuple[int, int]:
        found = positions.get(_identity(pair[1], merge_key))
        return (found, 0) if found is not None else (len(order), pair[0])

    return [item for _, item in sorted(enumerate(items), key=position)]


def _normalize_order(patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
                     server_order: list[Any], merge_key: str) -> list[Any]:
    """Patch items in patch order, server-only items in live order, interleaved by live order."""
    left = _sort_by(server_only, server_order, merge_key)
    right = _sort_by(patch_items, patch_order, merge_key)
    live = _positions(server_order, merge_key)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
            continue
        if i < len(left):
            li = live.get(_identity(left[i], merge_key))
            ri = live.get(_identity(right[j], merge_key))
            if li is not None and ri is not None and li < ri:
                out.append(left[i])
                i += 1
                continue
        out.append(right[j])
        j += 1
    return out


# --------------------------------------------------------------------------- dispatch

_Patcher = Callable[[dict[str, Any], Any, Schema], dict[str, Any]]

_PATCHERS: dict[str, _Patcher] = {
    MERGE_PATCH: lambda target, doc, _schema: json_merge_patch(target, doc),
    JSON_PATCH: lambda target, doc, _schema: json_patch(target, doc),
    STRATEGIC_MERGE_PATCH: strategic_merge_patch,
}


def _parse_body(body: bytes) -> Any:
    """The patch document; the handlers checked it already (a :class:`CheckedBody`) unless
    the patch comes from inside the server."""
    try:
        return decode_json(body)
    except ApiError as exc:
        exc.message = f"error decoding patch: {exc.message}"
        raise


def check_types(obj: dict[str, Any], schema: Schema) -> None:
    """A patch may leave a field of another type than declared: refused (422) before the
    registry and the kind's strategy read the result."""
    causes = compiled(schema).type_causes(obj)
    if causes:
        meta = obj.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else ""
        group = str(obj.get("apiVersion") or "").rpartition("/")[0]
        raise invalid(str(obj.get("kind") or ""), name if isinstance(name, str) else "",
                      causes, group)


def apply_patch(content_type: str, target: dict[str, Any], body: bytes,
                schema: Schema) -> dict[str, Any]:
    """Apply a PATCH body of the given media type (parameters such as charset are ignored)."""
    media = content_type.split(";", 1)[0].strip().lower()
    patcher = _PATCHERS.get(media)
    if patcher is None:
        raise unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: "
            f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, {STRATEGIC_MERGE_PATCH}")
    result = patcher(target, _parse_body(body), schema)
    check_types(result, schema)
    return result
