"""The compiled (Rust) validator agrees with the Python one on whether an object is valid.

Objects are generated from the schemas themselves: mostly values of the declared types (enum
members, formatted strings, numbers around the bounds), sometimes a value of another type,
a null or an unknown field, so that both verdicts occur often.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.kinds.structural import CompiledSchema, _error_cause

CATALOG = Catalog(builtin_kinds())
KINDS = [("iaas.scs.community", "v1alpha1", "networks"),
         ("iaas.scs.community", "v1alpha1", "servers"),
         ("iaas.scs.community", "v1alpha1", "securitygroups"),
         ("tenancy.scs.community", "v1alpha1", "tenants"),
         ("rbac.authorization.k8s.io", "v1", "clusterroles"),
         ("", "v1", "secrets")]

EXTRAS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "port": {"x-kubernetes-int-or-string": True},
        "maybe": {"type": "string", "nullable": True, "enum": ["a", "b"]},
        "small": {"type": "integer", "format": "int32", "minimum": -5},
        "untyped": {"format": "int64", "maximum": 10},
        "when": {"type": "string", "format": "date-time"},
        "cidr": {"type": "string", "format": "cidr"},
        "data": {"type": "string", "format": "byte"},
        "name": {"type": "string", "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$", "maxLength": 8},
        "one": {"oneOf": [{"minimum": 3}, {"maximum": 5}]},
        "never": {"not": {"type": "string"}},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2,
                 "minItems": 1},
    },
    "required": ["port"],
}

ANY_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
FORMATTED = {
    "date-time": st.sampled_from(["2024-02-29T12:00:00Z", "2024-02-30T12:00:00Z",
                                  "2024-01-01T25:00:00Z", "2024-01-01 10:00:00+02:00",
                                  "yesterday"]),
    "cidr": st.sampled_from(["10.0.0.0/8", "10.0.0.1/33", "fd00::/64", "10.0.0.0"]),
    "byte": st.sampled_from(["aGVsbG8=", "not base64!", ""]),
}


def values(schema: Mapping[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for ``schema``: 19 times in 20 of its own shape, else anything."""
    return st.one_of(st.integers(0, 19).flatmap(
        lambda n: ANY_SCALAR if n == 0 else shaped(schema, depth)))


def shaped(schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from([*schema["enum"], "not-a-member"])
    if schema.get("format") in FORMATTED:
        return FORMATTED[schema["format"]]
    if kind == "object" or "properties" in schema:
        return objects(schema, depth)
    if kind == "array":
        items = schema.get("items") or {}
        return st.lists(values(items, depth + 1), max_size=3) if depth < 6 else st.just([])
    if kind == "string" or schema.get("x-kubernetes-int-or-string"):
        return st.one_of(st.text(max_size=10), st.from_regex(r"[a-z][a-z0-9-]{0,9}",
                                                             fullmatch=True),
                         st.integers(-3, 3))
    if kind in ("integer", "number") or "minimum" in schema or "maximum" in schema:
        low, high = schema.get("minimum", -(2 ** 40)), schema.get("maximum", 2 ** 40)
        return st.one_of(st.integers(int(low) - 2, int(low) + 2),
                         st.integers(int(high) - 2, int(high) + 2),
                         st.sampled_from([2 ** 31, -(2 ** 31) - 1, 2 ** 63, 0.5, 7.25]))
    if kind == "boolean":
        return st.booleans()
    return ANY_SCALAR


def objects(schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    if depth > 6:
        return st.just({})
    keys = st.lists(st.sampled_from(sorted(props)), unique=True, max_size=4) if props \
        else st.just([])
    required = [k for k in schema.get("required") or () if k in props]
    extra_values = values(extra, depth + 1) if isinstance(extra, Mapping) else ANY_SCALAR

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        chosen = draw(keys) + (required if draw(st.integers(0, 9)) else [])
        out = {key: draw(values(props[key], depth + 1)) for key in chosen}
        if draw(st.integers(0, 4)) == 0:
            out[draw(st.text(min_size=1, max_size=6))] = draw(extra_values)
        return out
    return build()


def verdicts(compiled: CompiledSchema, obj: Any) -> tuple[bool, bool]:
    python = not [_error_cause(e) for e in compiled._validator.iter_errors(obj)]
    assert compiled._fast is not None
    return compiled._fast.passes(obj), python


def stricter_by_design(value: Any) -> bool:
    """An integral float (an integer to kube, not to Rust) or a string ending in a newline
    (which Python's ``$`` allows): there Rust may refuse what Python accepts."""
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, str):
        return value.endswith("\n")
    if isinstance(value, dict):
        return any(stricter_by_design(v) for v in value.values())
    if isinstance(value, list):
        return any(stricter_by_design(v) for v in value)
    return False


def agree(compiled: CompiledSchema, obj: Any) -> None:
    """Never valid to Rust and invalid to Python; otherwise the same verdict, except where
    Rust is stricter by design (and validation then takes the Python verdict)."""
    fast, python = verdicts(compiled, obj)
    assert fast == python or (python and stricter_by_design(obj)), (fast, python, obj)


@pytest.mark.parametrize("kind", KINDS, ids=[k[2] for k in KINDS])
def test_compiled_verdict_is_the_python_verdict_for_a_kind(kind: tuple[str, str, str]) -> None:
    compiled = CompiledSchema(CATALOG.require(*kind).schema)

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values(compiled.schema))
    def check(obj: Any) -> None:
        agree(compiled, obj)

    check()


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(values(EXTRAS))
def test_compiled_verdict_is_the_python_verdict_for_openapi_extensions(obj: Any) -> None:
    agree(CompiledSchema(EXTRAS), obj)


def test_where_rust_is_stricter_python_decides() -> None:
    """An integral float is an integer to kube, and ``$`` allows a trailing newline in
    Python: Rust refuses both, so validation falls back and accepts them."""
    compiled = CompiledSchema(EXTRAS)
    for obj in ({"port": 2.0}, {"port": 1, "name": "abc\n"}):
        assert verdicts(compiled, obj) == (False, True)
        assert compiled.validate(obj) == []


def test_non_finite_numbers_never_pass_the_compiled_check() -> None:
    compiled = CompiledSchema(EXTRAS)
    for bad in (float("inf"), float("nan")):
        fast, python = verdicts(compiled, {"port": 1, "untyped": bad, "never": bad})
        assert not fast and not python


def test_errors_are_worded_by_the_python_validator() -> None:
    compiled = CompiledSchema(EXTRAS)
    causes = compiled.validate({"small": 2 ** 31, "maybe": "c"})
    assert {(c.field, c.reason) for c in causes} == {
        ("port", "FieldValueRequired"), ("small", "FieldValueTypeInvalid"),
        ("maybe", "FieldValueNotSupported")}
