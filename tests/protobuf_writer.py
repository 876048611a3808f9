"""A hand-written writer of Kubernetes protobuf bodies for tests, independent of the server's
decoder, so that malformed wire data can be built byte by byte."""

from __future__ import annotations


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def pb_field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def envelope(api_version: bytes, kind: bytes, message: bytes) -> bytes:
    """kube's ``k8s\\0`` Unknown envelope around an object's encoded message."""
    type_meta = pb_field(1, api_version) + pb_field(2, kind)
    return b"k8s\x00" + pb_field(1, type_meta) + pb_field(2, message)


def secret_envelope(message: bytes) -> bytes:
    return envelope(b"v1", b"Secret", message)
