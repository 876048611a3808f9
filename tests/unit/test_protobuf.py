"""Kubernetes protobuf request bodies (what kubectl's typed clients send) decode to JSON shape.

The bodies are built here with a tiny protobuf writer following k8s.io/api's
``generated.proto`` field numbers, so the test does not share code with the decoder. Anything
malformed must be a 400 ``BadRequest``, never a 500.
"""

from __future__ import annotations

import base64

import pytest

from central_api.machinery.errors import ApiError
from central_api.machinery.protobuf import decode

MAGIC = b"k8s\x00"
VARINT, LENGTH = 0, 2


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: bytes | str | int | bool) -> bytes:
    """One field: ints and bools as varints, str/bytes length-delimited."""
    if isinstance(value, bool | int):
        return varint(number << 3 | VARINT) + varint(int(value))
    raw = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | LENGTH) + varint(len(raw)) + raw


def map_entry(number: int, key: str, value: bytes | str) -> bytes:
    return field(number, field(1, key) + field(2, value))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """``k8s\\0`` + runtime.Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding, ...}."""
    type_meta = field(1, api_version) + field(2, kind)
    return MAGIC + field(1, type_meta) + field(2, raw) + field(3, "") + field(4, "")


def object_meta(name: str, namespace: str = "", labels: dict[str, str] | None = None,
                annotations: dict[str, str] | None = None) -> bytes:
    out = field(1, name)
    if namespace:
        out += field(3, namespace)
    for key, value in (labels or {}).items():
        out += map_entry(11, key, value)
    for key, value in (annotations or {}).items():
        out += map_entry(12, key, value)
    return out


def bad_request(body: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        decode(body)
    assert caught.value.code == 400 and caught.value.reason == "BadRequest"
    return caught.value


def test_a_namespace_with_labels_annotations_and_finalizers_decodes() -> None:
    meta = object_meta("team-a", labels={"tier": "gold", "env": "prod"},
                       annotations={"note": "hello"})
    spec = field(1, "kubernetes") + field(1, "scs.community/cleanup")

    obj = decode(envelope("v1", "Namespace", field(1, meta) + field(2, spec)))

    assert obj == {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "team-a", "labels": {"tier": "gold", "env": "prod"},
                                "annotations": {"note": "hello"}},
                   "spec": {"finalizers": ["kubernetes", "scs.community/cleanup"]}}


def test_a_secret_keeps_binary_data_as_base64_and_string_data_as_text() -> None:
    binary = bytes(range(256))
    raw = (field(1, object_meta("db", namespace="team-a"))
           + map_entry(2, "cert", binary) + map_entry(2, "password", b"s3cret")
           + field(3, "Opaque") + map_entry(4, "user", "admin") + field(5, True))

    obj = decode(envelope("v1", "Secret", raw))

    assert obj["metadata"] == {"name": "db", "namespace": "team-a"}
    assert base64.b64decode(obj["data"]["cert"]) == binary
    assert base64.b64decode(obj["data"]["password"]) == b"s3cret"
    assert obj["stringData"] == {"user": "admin"}
    assert obj["type"] == "Opaque"
    assert obj["immutable"] is True


def test_owner_references_and_generate_name_decode() -> None:
    owner = (field(1, "Tenant") + field(3, "acme") + field(4, "uid-1")
             + field(5, "tenancy.scs.community/v1alpha1") + field(6, True) + field(7, True))
    meta = field(2, "team-") + field(13, owner)

    obj = decode(envelope("v1", "Namespace", field(1, meta)))

    assert obj["metadata"] == {"generateName": "team-", "ownerReferences": [{
        "kind": "Tenant", "name": "acme", "uid": "uid-1",
        "apiVersion": "tenancy.scs.community/v1alpha1", "controller": True,
        "blockOwnerDeletion": True}]}


def test_unknown_fields_are_skipped_like_protobuf_does() -> None:
    meta = object_meta("ns1") + field(99, "future") + field(98, 7)
    obj = decode(envelope("v1", "Namespace", field(1, meta) + field(77, b"\x01\x02")))
    assert obj["metadata"] == {"name": "ns1"}


def test_a_body_without_the_kubernetes_envelope_is_a_400() -> None:
    raw = field(1, object_meta("x"))
    assert "envelope" in bad_request(raw).message
    assert "envelope" in bad_request(b"").message


def test_an_unsupported_kind_is_a_400_that_suggests_json() -> None:
    error = bad_request(envelope("apps/v1", "Deployment", field(1, object_meta("web"))))
    assert "Deployment" in error.message and "JSON" in error.message


MALFORMED: dict[str, bytes] = {
    "truncated varint key": MAGIC + b"\x8a",
    "length past the end": MAGIC + varint(1 << 3 | LENGTH) + varint(50) + b"short",
    "truncated inner message": envelope("v1", "Namespace",
                                        varint(1 << 3 | LENGTH) + varint(10) + b"\x0a\x02n"),
    "group wire type": envelope("v1", "Namespace", varint(1 << 3 | 3)),
    "invalid UTF-8 name": envelope("v1", "Namespace", field(1, field(1, b"\xff\xfe"))),
    "truncated fixed64": envelope("v1", "Namespace", varint(9 << 3 | 1) + b"\x01\x02"),
    "truncated fixed32": envelope("v1", "Namespace", varint(9 << 3 | 5) + b"\x01"),
    "varint where a message belongs": envelope("v1", "Namespace", field(1, 5)),
    "varint where a string belongs": envelope("v1", "Namespace", field(1, field(1, 5))),
    "varint where the raw object belongs":
        MAGIC + field(1, field(1, "v1") + field(2, "Secret")) + field(2, 3),
    "overlong varint": MAGIC + b"\xff" * 11 + b"\x01",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_body_is_a_400_not_a_crash(body: bytes) -> None:
    assert bad_request(body).message
