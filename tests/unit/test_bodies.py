"""Request bodies: what a hostile body gets (a 400 naming the field), what a normal one keeps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml

from central_api.machinery import bodies
from central_api.machinery.bodies import (
    MAX_DEPTH,
    CheckedBody,
    check_document,
    decode_json,
    decode_yaml,
    parse_object,
    parse_patch,
)
from central_api.machinery.errors import ApiError
from tests.protobuf_writer import envelope, pb_field, secret_envelope, varint


def refusal(parse: Any, raw: Any) -> ApiError:
    with pytest.raises(ApiError) as err:
        parse(raw)
    return err.value


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b'{"a":' * (depth - 1) + b'{"a":' + inner + b"}" * depth


def test_json_at_the_depth_limit_is_accepted() -> None:
    value = decode_json(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH):
        value = value["a"]
    assert value == 1


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 10_000])
def test_json_beyond_the_depth_limit_is_refused_with_its_path(depth: int) -> None:
    error = refusal(decode_json, b'{"spec":' + nested(depth - 1) + b"}")
    assert (error.code, error.reason) == (400, "BadRequest")
    assert "nested too deeply" in error.message
    assert error.causes[0].field.startswith("spec.a.a.a")


def test_json_lists_beyond_the_depth_limit_name_their_indices() -> None:
    error = refusal(decode_json, b"[" * 10_000 + b"]" * 10_000)
    assert error.causes[0].field.startswith("[0][0][0]")


def test_a_lone_surrogate_is_refused_with_its_field() -> None:
    error = refusal(decode_json, b'{"metadata": {"name": "s\\ud800"}}')
    assert error.causes[0].field == "metadata.name"
    assert "surrogate" in error.message


def test_a_lone_surrogate_in_a_key_is_refused() -> None:
    error = refusal(decode_json, b'{"data": {"\\udc00": "x"}}')
    assert error.causes[0].field == "data"


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_numbers_json_cannot_carry_are_refused(number: bytes) -> None:
    error = refusal(decode_json, b'{"spec": {"cores": ' + number + b"}}")
    assert error.code == 400
    if number != b"1e400":  # the parser itself refuses 1e400, with its position
        assert error.causes[0].field == "spec.cores"


def test_an_integer_too_large_for_a_float_is_refused_with_its_field() -> None:
    error = refusal(decode_json, b'{"spec": {"quotas": {"cores": ' + b"9" * 400 + b"}}}")
    assert error.causes[0].field == "spec.quotas.cores"


def test_an_integer_beyond_64_bits_becomes_a_float_like_kube() -> None:
    assert decode_json(b'{"a": 100000000000000000000}') == {"a": 1e20}
    assert decode_json(b'{"a": 9223372036854775807}') == {"a": 2**63 - 1}


def test_malformed_json_keeps_the_parser_message() -> None:
    assert "Expecting" in refusal(decode_json, b'{"a": ').message


def test_yaml_aliases_are_refused_before_they_expand() -> None:
    bomb = b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b]\n"
    assert "aliases are not allowed" in refusal(decode_yaml, bomb).message


def test_yaml_nested_900_deep_is_a_400_with_its_path() -> None:
    error = refusal(decode_yaml, b"spec: " + b"[" * 900 + b"]" * 900)
    assert error.code == 400 and error.causes[0].field.startswith("spec[0][0]")


def test_yaml_block_nesting_counts_too() -> None:
    assert "nested too deeply" in refusal(decode_yaml, b"- " * (MAX_DEPTH + 1) + b"x").message


@pytest.mark.parametrize(("document", "field"), [
    (b"metadata:\n  labels:\n    1: a\n", "metadata.labels"),
    (b"spec: {x: .nan}\n", "spec.x"),
    (b"data:\n  k: !!binary aGVsbG8=\n", "data.k"),
    (b"spec: {x: 0x" + b"f" * 300 + b"}\n", "spec.x"),
])
def test_yaml_values_json_cannot_hold_are_refused_with_their_field(document: bytes,
                                                                   field: str) -> None:
    assert refusal(decode_yaml, document).causes[0].field == field


@pytest.mark.parametrize("document", [
    b"a: !!set {x, y}\n", b"a: !!omap [x: 1]\n", b"a: !!python/object:os.system {}\n",
    b"? [a]\n: 1\n", b"a: 1\n---\nb: 2\n",
])
def test_yaml_beyond_json_is_refused(document: bytes) -> None:
    error = refusal(decode_yaml, document)
    assert (error.code, error.reason) == (400, "BadRequest")
    assert "not valid YAML" in error.message


def test_yaml_timestamps_stay_strings_as_in_kube() -> None:
    assert decode_yaml(b"a: 2024-01-02T03:04:05Z\nb: 2024-01-02\n") == {
        "a": "2024-01-02T03:04:05Z", "b": "2024-01-02"}


def test_yaml_scalars_resolve_as_the_safe_loader_does() -> None:
    document = b"a: [1, 1.5, yes, ~, '1', 0x10]\nb: {c: text}\n"
    assert decode_yaml(document) == yaml.safe_load(document)


def test_yaml_that_is_json_takes_the_json_path() -> None:
    assert decode_yaml(b'{"a": 1e3}') == {"a": 1000.0}


def test_the_pure_python_parser_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    class PurePython(yaml.SafeLoader):
        pass

    PurePython.add_constructor("tag:yaml.org,2002:timestamp", PurePython.construct_yaml_str)
    monkeypatch.setattr(bodies, "_YamlLoader", PurePython)
    assert decode_yaml(b"a: [1, {b: 2024-01-02}]\n") == {"a": [1, {"b": "2024-01-02"}]}
    assert "aliases" in refusal(decode_yaml, b"a: &x 1\nb: *x\n").message


def test_check_document_walks_iteratively_at_any_depth() -> None:
    document: Any = 1
    for _ in range(5000):
        document = [document]
    assert "nested too deeply" in refusal(check_document, document).message


def test_a_checked_body_is_parsed_again_without_a_second_walk() -> None:
    checked = asyncio.run(parse_patch(b'{"metadata": {"labels": {"a": "b"}}}',
                                      "application/merge-patch+json"))
    assert isinstance(checked, CheckedBody)
    assert decode_json(checked) == {"metadata": {"labels": {"a": "b"}}}


def test_an_apply_body_in_yaml_becomes_json() -> None:
    checked = asyncio.run(parse_patch(b"metadata:\n  name: x\n", "application/apply-patch+yaml"))
    assert bodies.parse_yaml_object(checked) == {"metadata": {"name": "x"}}


def test_an_unknown_media_type_is_415() -> None:
    with pytest.raises(ApiError) as err:
        asyncio.run(parse_object(b"{}", "application/xml"))
    assert err.value.code == 415


def test_a_body_that_is_no_object_is_refused() -> None:
    with pytest.raises(ApiError) as err:
        asyncio.run(parse_object(b"[1]", "application/json"))
    assert "must be a JSON or YAML object" in err.value.message


def test_yaml_bodies_beyond_the_queue_get_429(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies._YAML_POOL, "pending", bodies.YAML_QUEUE)
    with pytest.raises(ApiError) as err:
        asyncio.run(parse_object(b"a: 1\n", "application/yaml"))
    assert (err.value.code, err.value.retry_after) == (429, 1)


# --- protobuf (bodies written by tests/protobuf_writer.py, independent of the decoder) ---------

@pytest.mark.parametrize("entry", [
    pb_field(1, 2**40),  # a map key as a varint: bytes(2**40) would allocate a terabyte
    pb_field(1, b"k") + pb_field(2, 2**40),  # a bytes value as a varint
])
def test_protobuf_map_entries_of_the_wrong_wire_type_are_refused(entry: bytes) -> None:
    with pytest.raises(ApiError) as err:
        asyncio.run(parse_object(secret_envelope(pb_field(2, entry)),
                                 "application/vnd.kubernetes.protobuf"))
    assert (err.value.code, err.value.reason) == (400, "BadRequest")


def test_protobuf_varints_beyond_64_bits_are_refused() -> None:
    overlong = varint(1 << 3) + b"\xff" * 9 + b"\x7f"
    with pytest.raises(ApiError) as err:
        asyncio.run(parse_object(secret_envelope(overlong), "application/vnd.kubernetes.protobuf"))
    assert "64 bits" in err.value.message


def test_protobuf_int64_fields_are_signed() -> None:
    spec = pb_field(4, 2**64 - 5)  # expirationSeconds = -5, as Go writes a negative int64
    body = envelope(b"authentication.k8s.io/v1", b"TokenRequest", pb_field(2, spec))
    decoded = asyncio.run(parse_object(body, "application/vnd.kubernetes.protobuf"))
    assert decoded["spec"]["expirationSeconds"] == -5
