"""The Swagger 2.0 document as gnostic ``openapi.v2.Document`` protobuf.

kubectl up to 1.27 (``create -f``, ``apply``, ``diff``, ``explain``) fetches ``/openapi/v2``
with ``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` and parses the
body as protobuf without any JSON fallback, so the server must encode it. Field numbers are
those of gnostic's ``openapiv2/OpenAPIv2.proto``; vendor extensions, defaults, enums and
examples are ``Any`` messages carrying YAML (JSON is YAML), as gnostic writes them.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Iterable
from typing import Any

# Kubernetes answers the protobuf document as octet-stream: Go cannot parse the "@" in the
# media type clients ask for.
MEDIA_TYPE = "application/octet-stream"

_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13,
            "discriminator": 26}
_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_INTS = {"maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15,
         "maxProperties": 17, "minProperties": 18}


_SMALL = [bytes((i,)) for i in range(128)]
"""Varints below 128 are one byte: nearly every key and most lengths (a quarter of the
time to encode 500 CRDs went to building those one at a time)."""


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL[value]
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@functools.cache
def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def _str(number: int, value: str) -> bytes:
    return _bytes(number, value.encode())


def _any(number: int, value: Any) -> bytes:
    """gnostic ``Any`` with the value as YAML (field 2)."""
    return _bytes(number, _str(2, json.dumps(value)))


def _named_any(number: int, name: str, value: Any) -> bytes:
    return _bytes(number, _str(1, name) + _any(2, value))


def schema(node: dict[str, Any]) -> bytes:
    out = bytearray()
    for name, value in node.items():
        if name in _STRINGS and isinstance(value, str):
            out += _str(_STRINGS[name], value)
        elif name in _DOUBLES and isinstance(value, int | float):
            out += _key(_DOUBLES[name], 1) + struct.pack("<d", float(value))
        elif name in _BOOLS and isinstance(value, bool):
            out += _key(_BOOLS[name], 0) + _varint(int(value))
        elif name in _INTS and isinstance(value, int):
            out += _key(_INTS[name], 0) + _varint(value)
        elif name == "default":
            out += _any(5, value)
        elif name == "example":
            out += _any(30, value)
        elif name == "required" and isinstance(value, list):
            out += b"".join(_str(19, str(v)) for v in value)
        elif name == "enum" and isinstance(value, list):
            out += b"".join(_any(20, v) for v in value)
        elif name == "additionalProperties":
            item = (_bytes(1, schema(value)) if isinstance(value, dict)
                    else _key(2, 0) + _varint(int(bool(value))))
            out += _bytes(21, item)
        elif name == "type":
            types = value if isinstance(value, list) else [value]
            out += _bytes(22, b"".join(_str(1, str(t)) for t in types))
        elif name == "items" and isinstance(value, dict | list):
            items = value if isinstance(value, list) else [value]
            out += _bytes(23, b"".join(_bytes(1, schema(i)) for i in items))
        elif name == "allOf" and isinstance(value, list):
            out += b"".join(_bytes(24, schema(s)) for s in value)
        elif name == "properties" and isinstance(value, dict):
            named = b"".join(_bytes(1, _str(1, k) + _bytes(2, schema(v)))
                             for k, v in value.items())
            out += _bytes(25, named)
        elif name.startswith("x-"):
            out += _named_any(31, name, value)
    return bytes(out)


def named_schema(name: str, value: dict[str, Any]) -> bytes:
    """One definition (a ``NamedSchema``), to be joined into :func:`document`."""
    return _bytes(1, _str(1, name) + _bytes(2, schema(value)))


def document(title: str, version: str, definitions: Iterable[bytes]) -> bytes:
    """A Swagger 2.0 document of the ``definitions`` (:func:`named_schema` each); its paths
    are left out, because kubectl reads only the schemas from it (what operations and
    parameters a kind has, it reads from the v3 documents), and they would make every fetch
    several times larger."""
    out = _str(1, "2.0")
    out += _bytes(2, _str(1, title) + _str(2, version))
    out += _bytes(8, b"")
    out += _bytes(9, b"".join(definitions))
    return out
