"""Decode the few Kubernetes protobuf request bodies kubectl sends for core kinds.

kubectl's typed clients (``kubectl create namespace``, ``create secret``, ``auth whoami``)
send ``application/vnd.kubernetes.protobuf`` bodies and there is no fallback to JSON, so the
server must read them. Responses stay JSON (clients decode by Content-Type). Only the messages
of kinds this server serves natively are decoded; field numbers are those of k8s.io/api's
``generated.proto``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from .errors import bad_request

MAGIC = b"k8s\x00"
Fields = Iterator[tuple[int, int, Any]]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >> 64:
                raise ValueError("varint overflows 64 bits")
            return result, pos
        shift += 7


def _fields(data: bytes) -> Fields:
    """(field number, wire type, value) triples; length-delimited values stay bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(data):
                raise ValueError("truncated field")
            value, pos = data[pos:pos + width], pos + width
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


Spec = dict[int, tuple[str, Any, bool]]
"""field number → (JSON name, type, repeated). A type is "string", "bool", "int", "bytes"
(base64 in JSON), ("map", value type) or a nested Spec."""


def _decode_message(raw: bytes, spec: Spec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, wire, value in _fields(raw):
        if number not in spec:
            continue  # fields this server does not use (status, selfLink, timestamps, ...)
        name, kind, repeated = spec[number]
        if isinstance(kind, tuple):
            key, item, item_wire = _map_entry(value)
            out.setdefault(name, {})[key] = _scalar(item, kind[1], item_wire)
            continue
        decoded = _decode_message(value, kind) if isinstance(kind, dict) else \
            _scalar(value, kind, wire)
        if repeated:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    return out


def _scalar(value: Any, kind: str, wire: int) -> Any:
    if kind in ("string", "bytes") and wire != 2:
        raise ValueError(f"expected a length-delimited {kind} field")
    if kind == "string":
        return bytes(value).decode()
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if wire != 0:
        raise ValueError(f"expected a varint for a {kind} field")
    if kind == "bool":
        return bool(value)
    return value - (1 << 64) if value >> 63 else value  # int64: two's complement


def _map_entry(raw: bytes) -> tuple[str, Any, int]:
    """(key, value, the value's wire type). The wire types are checked by :func:`_scalar`:
    ``bytes(n)`` of a varint ``n`` where a string belongs would allocate n bytes."""
    key, value, value_wire = "", b"", 2
    for number, wire, item in _fields(raw):
        if number == 1:
            key = _scalar(item, "string", wire)
        elif number == 2:
            value, value_wire = item, wire
    return key, value, value_wire


OWNER_REFERENCE: Spec = {1: ("kind", "string", False), 3: ("name", "string", False),
                         4: ("uid", "string", False), 5: ("apiVersion", "string", False),
                         6: ("controller", "bool", False),
                         7: ("blockOwnerDeletion", "bool", False)}
OBJECT_META: Spec = {1: ("name", "string", False), 2: ("generateName", "string", False),
                     3: ("namespace", "string", False), 5: ("uid", "string", False),
                     6: ("resourceVersion", "string", False),
                     11: ("labels", ("map", "string"), False),
                     12: ("annotations", ("map", "string"), False),
                     13: ("ownerReferences", OWNER_REFERENCE, True),
                     14: ("finalizers", "string", True)}
POLICY_RULE: Spec = {1: ("verbs", "string", True), 2: ("apiGroups", "string", True),
                     3: ("resources", "string", True), 4: ("resourceNames", "string", True),
                     5: ("nonResourceURLs", "string", True)}
LABEL_SELECTOR: Spec = {1: ("matchLabels", ("map", "string"), False),
                        2: ("matchExpressions", {1: ("key", "string", False),
                                                 2: ("operator", "string", False),
                                                 3: ("values", "string", True)}, True)}
SUBJECT: Spec = {1: ("kind", "string", False), 2: ("apiGroup", "string", False),
                 3: ("name", "string", False), 4: ("namespace", "string", False)}
ROLE_REF: Spec = {1: ("apiGroup", "string", False), 2: ("kind", "string", False),
                  3: ("name", "string", False)}
BINDING: Spec = {1: ("metadata", OBJECT_META, False), 2: ("subjects", SUBJECT, True),
                 3: ("roleRef", ROLE_REF, False)}
RESOURCE_ATTRIBUTES: Spec = {1: ("namespace", "string", False), 2: ("verb", "string", False),
                             3: ("group", "string", False), 4: ("version", "string", False),
                             5: ("resource", "string", False),
                             6: ("subresource", "string", False), 7: ("name", "string", False)}

MESSAGES: dict[str, tuple[str, Spec]] = {
    "Namespace": ("v1", {1: ("metadata", OBJECT_META, False),
                         2: ("spec", {1: ("finalizers", "string", True)}, False)}),
    "Secret": ("v1", {1: ("metadata", OBJECT_META, False), 2: ("data", ("map", "bytes"), False),
                      3: ("type", "string", False),
                      4: ("stringData", ("map", "string"), False),
                      5: ("immutable", "bool", False)}),
    "ServiceAccount": ("v1", {1: ("metadata", OBJECT_META, False),
                              4: ("automountServiceAccountToken", "bool", False)}),
    "TokenRequest": ("authentication.k8s.io/v1", {
        1: ("metadata", OBJECT_META, False),
        2: ("spec", {1: ("audiences", "string", True), 4: ("expirationSeconds", "int", False),
                     3: ("boundObjectRef", {2: ("kind", "string", False),
                                            3: ("name", "string", False)}, False)}, False)}),
    "SelfSubjectReview": ("authentication.k8s.io/v1", {}),
    "SelfSubjectAccessReview": ("authorization.k8s.io/v1", {
        2: ("spec", {1: ("resourceAttributes", RESOURCE_ATTRIBUTES, False),
                     2: ("nonResourceAttributes", {1: ("path", "string", False),
                                                   2: ("verb", "string", False)}, False)},
            False)}),
    "SelfSubjectRulesReview": ("authorization.k8s.io/v1", {
        2: ("spec", {1: ("namespace", "string", False)}, False)}),
    "Role": ("rbac.authorization.k8s.io/v1", {1: ("metadata", OBJECT_META, False),
                                              2: ("rules", POLICY_RULE, True)}),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", {
        1: ("metadata", OBJECT_META, False), 2: ("rules", POLICY_RULE, True),
        3: ("aggregationRule", {1: ("clusterRoleSelectors", LABEL_SELECTOR, True)}, False)}),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", BINDING),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", BINDING),
}


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf envelope (``k8s\\0`` + runtime.Unknown) to the JSON-shaped object."""
    if not body.startswith(MAGIC):
        raise bad_request("the protobuf body lacks the Kubernetes envelope")
    try:
        kind, raw = "", b""
        for number, _, value in _fields(body[len(MAGIC):]):
            if number == 1:
                kind = next((v.decode() for n, _, v in _fields(value) if n == 2), "")
            elif number == 2:
                raw = value
        if kind not in MESSAGES:
            raise bad_request(f"protobuf is not supported for kind {kind!r}; send JSON")
        api_version, spec = MESSAGES[kind]
        return {"apiVersion": api_version, "kind": kind, **_decode_message(raw, spec)}
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError) as exc:
        # TypeError/AttributeError: a field has another wire type than its message declares
        # (e.g. a varint where an embedded message or a string belongs).
        raise bad_request(f"the protobuf body is malformed: {exc}") from None
