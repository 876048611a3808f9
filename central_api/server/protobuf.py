"""Decode the few Kubernetes protobuf request bodies kubectl sends for core kinds.

kubectl's typed clients (``kubectl create namespace``, ``create secret``, ``auth whoami``)
send ``application/vnd.kubernetes.protobuf`` bodies and there is no fallback to JSON, so the
server must read them. Responses stay JSON (clients decode by Content-Type). Only the messages
of kinds this server serves natively are decoded; field numbers are those of k8s.io/api's
``generated.proto``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
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


def _map_entry(raw: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, _, item in _fields(raw):
        if number == 1:
            key = item.decode()
        elif number == 2:
            value = item
    return key, value


def _owner_reference(raw: bytes) -> dict[str, Any]:
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    ref: dict[str, Any] = {}
    for number, _, value in _fields(raw):
        if number in names:
            ref[names[number]] = value.decode()
        elif number == 6:
            ref["controller"] = bool(value)
        elif number == 7:
            ref["blockOwnerDeletion"] = bool(value)
    return ref


def _object_meta(raw: bytes) -> dict[str, Any]:
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    meta: dict[str, Any] = {}
    for number, _, value in _fields(raw):
        if number in strings:
            meta[strings[number]] = value.decode()
        elif number in (11, 12):
            key, item = _map_entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = item.decode()
        elif number == 13:
            meta.setdefault("ownerReferences", []).append(_owner_reference(value))
        elif number == 14:
            meta.setdefault("finalizers", []).append(value.decode())
    return meta


def _namespace(raw: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace"}
    for number, _, value in _fields(raw):
        if number == 1:
            obj["metadata"] = _object_meta(value)
        elif number == 2:
            obj["spec"] = {"finalizers": [v.decode() for n, _, v in _fields(value) if n == 1]}
    return obj


def _secret(raw: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret"}
    for number, _, value in _fields(raw):
        if number == 1:
            obj["metadata"] = _object_meta(value)
        elif number == 2:
            key, item = _map_entry(value)
            obj.setdefault("data", {})[key] = base64.b64encode(item).decode()
        elif number == 3:
            obj["type"] = value.decode()
        elif number == 4:
            key, item = _map_entry(value)
            obj.setdefault("stringData", {})[key] = item.decode()
        elif number == 5:
            obj["immutable"] = bool(value)
    return obj


def _empty(kind: str, api_version: str) -> Callable[[bytes], dict[str, Any]]:
    return lambda raw: {"apiVersion": api_version, "kind": kind}


DECODERS: dict[str, Callable[[bytes], dict[str, Any]]] = {
    "Namespace": _namespace,
    "Secret": _secret,
    "SelfSubjectReview": _empty("SelfSubjectReview", "authentication.k8s.io/v1"),
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
        decoder = DECODERS.get(kind)
        if decoder is None:
            raise bad_request(f"protobuf is not supported for kind {kind!r}; send JSON")
        return decoder(raw)
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError) as exc:
        # TypeError/AttributeError: a field has another wire type than its message declares
        # (e.g. a varint where an embedded message or a string belongs).
        raise bad_request(f"the protobuf body is malformed: {exc}") from None
