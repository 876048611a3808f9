"""Structural schemas prune, default and validate like apiextensions-apiserver."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from central_api.kinds.structural import (
    CompiledSchema,
    apply_defaults,
    check_structural,
    compile_cel_rules,
    prune,
    unknown_field_message,
    validate,
)
from central_api.machinery.errors import Cause


def obj_schema(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def root(spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": spec}}


def only(causes: list[Cause]) -> Cause:
    assert len(causes) == 1, causes
    return causes[0]


# -- pruning ---------------------------------------------------------------------------------


def test_unknown_field_is_pruned_and_reported() -> None:
    obj = {"spec": {"a": "x", "foo": 1}}
    assert prune(obj, root(obj_schema(a={"type": "string"}))) == [".spec.foo"]
    assert obj == {"spec": {"a": "x"}}


def test_pruned_path_inside_list_has_index() -> None:
    schema = root(obj_schema(items={"type": "array", "items": obj_schema(name={"type": "string"})}))
    obj = {"spec": {"items": [{"name": "a"}, {"name": "b", "bar": 1}]}}
    assert prune(obj, schema) == [".spec.items[1].bar"]


def test_unknown_field_message_is_worded_like_kube() -> None:
    assert unknown_field_message(".spec.foo") == 'unknown field "spec.foo"'


def test_root_api_version_kind_metadata_are_never_pruned() -> None:
    obj = {"apiVersion": "v1", "kind": "K", "metadata": {"name": "n"}, "spec": {}}
    assert prune(obj, root(obj_schema())) == []
    assert obj["metadata"] == {"name": "n"}


def test_undeclared_status_is_pruned() -> None:
    obj = {"spec": {}, "status": {"x": 1}}
    assert prune(obj, root(obj_schema())) == [".status"]


def test_preserve_unknown_fields_keeps_unknown_keys() -> None:
    schema = root({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    obj = {"spec": {"anything": {"deep": [1, 2]}}}
    assert prune(obj, schema) == []
    assert obj == {"spec": {"anything": {"deep": [1, 2]}}}


def test_preserve_unknown_fields_still_prunes_inside_declared_properties() -> None:
    schema = root({"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                   "properties": {"known": obj_schema(a={"type": "string"})}})
    obj = {"spec": {"free": 1, "known": {"a": "x", "b": 2}}}
    assert prune(obj, schema) == [".spec.known.b"]


def test_embedded_resource_keeps_api_version_kind_metadata() -> None:
    schema = root(obj_schema(template={"type": "object", "x-kubernetes-embedded-resource": True,
                                       "properties": {"spec": obj_schema()}}))
    obj = {"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                 "spec": {}, "junk": 1}}}
    assert prune(obj, schema) == [".spec.template.junk"]
    assert obj["spec"]["template"]["kind"] == "Pod"


def test_additional_properties_schema_applies_to_every_map_value() -> None:
    schema = root(obj_schema(labels={"type": "object",
                                     "additionalProperties": obj_schema(a={"type": "string"})}))
    obj = {"spec": {"labels": {"x": {"a": "1", "b": "2"}}}}
    assert prune(obj, schema) == [".spec.labels.x.b"]


def test_int_or_string_values_are_kept() -> None:
    schema = root(obj_schema(port={"x-kubernetes-int-or-string": True}))
    obj = {"spec": {"port": "http"}}
    assert prune(obj, schema) == []


# -- defaulting -----------------------------------------------------------------------------------


def test_default_applied_when_parent_exists() -> None:
    obj: dict[str, Any] = {"spec": {}}
    apply_defaults(obj, root(obj_schema(replicas={"type": "integer", "default": 1})))
    assert obj == {"spec": {"replicas": 1}}


def test_default_not_applied_when_parent_missing() -> None:
    obj: dict[str, Any] = {}
    apply_defaults(obj, root(obj_schema(replicas={"type": "integer", "default": 1})))
    assert obj == {}


def test_default_applied_inside_list_items() -> None:
    schema = root(obj_schema(ports={"type": "array", "items": obj_schema(
        protocol={"type": "string", "default": "TCP"})}))
    obj: dict[str, Any] = {"spec": {"ports": [{}, {"protocol": "UDP"}]}}
    apply_defaults(obj, schema)
    assert obj["spec"]["ports"] == [{"protocol": "TCP"}, {"protocol": "UDP"}]


def test_default_applied_inside_additional_properties_values() -> None:
    schema = root(obj_schema(m={"type": "object", "additionalProperties": obj_schema(
        n={"type": "integer", "default": 3})}))
    obj: dict[str, Any] = {"spec": {"m": {"a": {}}}}
    apply_defaults(obj, schema)
    assert obj["spec"]["m"]["a"] == {"n": 3}


def test_defaulted_object_gets_nested_defaults() -> None:
    schema = root(obj_schema(opts={"type": "object", "default": {},
                                   "properties": {"level": {"type": "string", "default": "x"}}}))
    obj: dict[str, Any] = {"spec": {}}
    apply_defaults(obj, schema)
    assert obj["spec"]["opts"] == {"level": "x"}


def test_default_replaces_null_of_non_nullable_field() -> None:
    obj: dict[str, Any] = {"spec": {"a": None}}
    apply_defaults(obj, root(obj_schema(a={"type": "string", "default": "d"})))
    assert obj["spec"]["a"] == "d"


def test_default_keeps_null_of_nullable_field() -> None:
    obj: dict[str, Any] = {"spec": {"a": None}}
    apply_defaults(obj, root(obj_schema(a={"type": "string", "nullable": True, "default": "d"})))
    assert obj["spec"]["a"] is None


def test_default_values_are_copied_not_shared() -> None:
    schema = root(obj_schema(tags={"type": "array", "items": {"type": "string"}, "default": []}))
    first: dict[str, Any] = {"spec": {}}
    second: dict[str, Any] = {"spec": {}}
    apply_defaults(first, schema)
    apply_defaults(second, schema)
    first["spec"]["tags"].append("x")
    assert second["spec"]["tags"] == []


# -- schema validation ---------------------------------------------------------------------------

SPEC = root({"type": "object", "required": ["size"], "properties": {
    "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "format": "int32"},
    "size": {"type": "string", "enum": ["S", "M"]},
    "name": {"type": "string", "maxLength": 5, "minLength": 1, "pattern": "^[a-z]+$"},
    "port": {"x-kubernetes-int-or-string": True},
    "when": {"type": "string", "format": "date-time", "nullable": True},
    "ratio": {"type": "number"},
    "data": {"type": "string", "format": "byte"},
    "items": {"type": "array", "items": {"type": "integer"}, "maxItems": 2, "minItems": 1},
    "ports": {"type": "array", "items": obj_schema(port={"type": "integer"})},
}})


def causes_for(spec: dict[str, Any]) -> list[Cause]:
    return validate({"spec": {"size": "S", **spec}}, SPEC)


def test_valid_object_has_no_causes() -> None:
    assert causes_for({"replicas": 3, "name": "abc", "port": "http", "when": None}) == []


def test_missing_required_field_is_required_value() -> None:
    cause = only(validate({"spec": {}}, SPEC))
    assert cause == Cause("spec.size", "Required value", "FieldValueRequired")


def test_wrong_type_is_type_invalid_with_kube_message() -> None:
    cause = only(causes_for({"replicas": "string"}))
    assert cause.field == "spec.replicas"
    assert cause.reason == "FieldValueTypeInvalid"
    assert cause.message == ('Invalid value: "string": spec.replicas in body must be of type '
                             'integer: "string"')


def test_type_error_path_inside_list_uses_brackets() -> None:
    cause = only(causes_for({"ports": [{"port": 1}, {"port": "x"}]}))
    assert cause.field == "spec.ports[1].port"


def test_integral_float_counts_as_integer() -> None:
    assert causes_for({"replicas": 3.0}) == []


def test_integer_is_a_number() -> None:
    assert causes_for({"ratio": 1}) == []


def test_enum_violation_is_unsupported_value() -> None:
    cause = only(causes_for({"size": "L"}))
    assert cause == Cause("spec.size", 'Unsupported value: "L": supported values: "S", "M"',
                          "FieldValueNotSupported")


def test_maximum_violation_is_invalid_value() -> None:
    cause = only(causes_for({"replicas": 11}))
    assert cause.message == "Invalid value: 11: spec.replicas in body should be less than or " \
                            "equal to 10"


def test_max_length_violation_is_too_long() -> None:
    cause = only(causes_for({"name": "abcdef"}))
    assert (cause.reason, cause.message) == ("FieldValueTooLong",
                                             "Too long: may not be more than 5 bytes")


def test_pattern_violation_names_the_pattern() -> None:
    cause = only(causes_for({"name": "AB"}))
    assert cause.message == "Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"


def test_max_items_violation_is_too_many() -> None:
    cause = only(causes_for({"items": [1, 2, 3]}))
    assert (cause.reason, cause.message) == ("FieldValueTooMany",
                                             "Too many: 3: must have at most 2 items")


def test_min_items_violation_reports_count() -> None:
    cause = only(causes_for({"items": []}))
    assert cause.message == "Invalid value: 0: spec.items in body should have at least 1 items"


def test_nullable_field_accepts_null() -> None:
    assert causes_for({"when": None}) == []


def test_non_nullable_null_is_type_invalid() -> None:
    cause = only(causes_for({"name": None}))
    assert cause.message.endswith('must be of type string: "null"')


def test_int_or_string_rejects_other_types() -> None:
    cause = only(causes_for({"port": True}))
    assert cause.reason == "FieldValueTypeInvalid"
    assert "must be of type integer,string" in cause.message


def test_date_time_format_is_checked() -> None:
    cause = only(causes_for({"when": "yesterday"}))
    assert cause.message == ('Invalid value: "yesterday": spec.when in body must be of type '
                             'date-time: "yesterday"')
    assert causes_for({"when": "2024-05-01T10:00:00Z"}) == []


def test_int32_format_is_range_checked() -> None:
    schema = root(obj_schema(n={"type": "integer", "format": "int32"}))
    assert validate({"spec": {"n": 2**31}}, schema)
    assert validate({"spec": {"n": 2**31 - 1}}, schema) == []


def test_byte_format_requires_base64() -> None:
    assert causes_for({"data": "aGVsbG8="}) == []
    assert only(causes_for({"data": "not base64!"})).reason == "FieldValueTypeInvalid"


# -- list types ----------------------------------------------------------------------------------


def test_set_list_rejects_duplicates() -> None:
    schema = root(obj_schema(tags={"type": "array", "items": {"type": "string"},
                                   "x-kubernetes-list-type": "set"}))
    cause = only(validate({"spec": {"tags": ["a", "b", "a"]}}, schema))
    assert cause == Cause("spec.tags[2]", 'Duplicate value: "a"', "FieldValueDuplicate")


MAP_LIST = root(obj_schema(ports={
    "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
    "items": obj_schema(name={"type": "string"}, port={"type": "integer"})}))


def test_map_list_rejects_duplicate_keys() -> None:
    cause = only(validate({"spec": {"ports": [{"name": "a", "port": 1},
                                              {"name": "a", "port": 2}]}}, MAP_LIST))
    assert (cause.field, cause.reason) == ("spec.ports[1]", "FieldValueDuplicate")


def test_map_list_requires_keys() -> None:
    cause = only(validate({"spec": {"ports": [{"port": 1}]}}, MAP_LIST))
    assert cause == Cause("spec.ports[0].name", "Required value", "FieldValueRequired")


# -- CEL -----------------------------------------------------------------------------------------


def cel_schema(*rules: dict[str, Any]) -> dict[str, Any]:
    return root({"type": "object", "x-kubernetes-validations": list(rules), "properties": {
        "replicas": {"type": "integer"}, "max": {"type": "integer"},
        "name": {"type": "string"}, "ratio": {"type": "number"}}})


def test_cel_rule_passing_has_no_causes() -> None:
    schema = cel_schema({"rule": "self.replicas <= self.max"})
    assert validate({"spec": {"replicas": 1, "max": 2}}, schema) == []


def test_cel_rule_failure_reports_field_path() -> None:
    schema = cel_schema({"rule": "self.replicas <= self.max"})
    cause = only(validate({"spec": {"replicas": 3, "max": 2}}, schema))
    assert cause == Cause("spec", 'Invalid value: "object": failed rule: self.replicas <= '
                                  "self.max", "FieldValueInvalid")


def test_cel_rule_message_replaces_default_text() -> None:
    schema = cel_schema({"rule": "self.replicas <= self.max", "message": "too many"})
    assert only(validate({"spec": {"replicas": 3, "max": 2}}, schema)).message == \
        'Invalid value: "object": too many'


def test_cel_message_expression_is_evaluated() -> None:
    schema = cel_schema({"rule": "self.replicas <= self.max",
                         "messageExpression": "'replicas ' + string(self.replicas) + ' > max'"})
    assert only(validate({"spec": {"replicas": 3, "max": 2}}, schema)).message.endswith(
        "replicas 3 > max")


def test_cel_field_path_and_reason_shape_the_cause() -> None:
    schema = cel_schema({"rule": "self.replicas <= self.max", "fieldPath": ".replicas",
                         "reason": "FieldValueForbidden", "message": "no"})
    cause = only(validate({"spec": {"replicas": 3, "max": 2}}, schema))
    assert cause == Cause("spec.replicas", "Forbidden: no", "FieldValueForbidden")


def test_cel_rule_on_list_items_runs_per_item() -> None:
    schema = root(obj_schema(ports={"type": "array", "items": {
        "type": "integer", "x-kubernetes-validations": [{"rule": "self > 0"}]}}))
    cause = only(validate({"spec": {"ports": [1, 0, 2]}}, schema))
    assert cause.field == "spec.ports[1]"


def test_cel_number_fields_are_doubles() -> None:
    schema = cel_schema({"rule": "self.ratio == 1.0"})
    assert validate({"spec": {"ratio": 1}}, schema) == []


def test_cel_string_extension_functions_are_available() -> None:
    schema = cel_schema({"rule": "self.name.lowerAscii() == 'abc'"})
    assert validate({"spec": {"name": "ABC"}}, schema) == []


def test_cel_runtime_error_is_reported_as_invalid() -> None:
    schema = cel_schema({"rule": "self.replicas <= self.max"})
    cause = only(validate({"spec": {"replicas": 3}}, schema))
    assert "evaluating rule: self.replicas <= self.max" in cause.message


def test_cel_transition_rule_skipped_on_create() -> None:
    schema = cel_schema({"rule": "self.replicas >= oldSelf.replicas"})
    assert validate({"spec": {"replicas": 1}}, schema) == []


def test_cel_transition_rule_compares_with_old_object() -> None:
    schema = cel_schema({"rule": "self.replicas >= oldSelf.replicas", "message": "no shrink"})
    old = {"spec": {"replicas": 5}}
    assert only(validate({"spec": {"replicas": 1}}, schema, old=old)).message.endswith("no shrink")
    assert validate({"spec": {"replicas": 6}}, schema, old=old) == []


def test_cel_rules_skipped_when_types_are_invalid() -> None:
    schema = cel_schema({"rule": "self.replicas <= self.max"})
    causes = validate({"spec": {"replicas": "x", "max": 1}}, schema)
    assert [c.reason for c in causes] == ["FieldValueTypeInvalid", "FieldValueInvalid"]
    assert "some validation rules were not checked" in causes[1].message


def test_cel_compile_error_reported_with_schema_path() -> None:
    schema = cel_schema({"rule": "self.replicas <="})
    cause = only(compile_cel_rules(schema))
    assert cause.field == "openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    assert "compilation failed" in cause.message


def test_valid_cel_rules_compile_cleanly() -> None:
    assert compile_cel_rules(cel_schema({"rule": "self.replicas <= self.max"})) == []


# -- structural checks ----------------------------------------------------------------------------


def test_structural_schema_passes_check() -> None:
    schema = root(obj_schema(a={"type": "string"}, p={"x-kubernetes-int-or-string": True},
                             free={"x-kubernetes-preserve-unknown-fields": True}))
    assert check_structural(schema) == []


def test_structural_node_needs_type() -> None:
    cause = only(check_structural(root({"properties": {}})))
    assert cause.field == "openAPIV3Schema.properties[spec].type"
    assert cause.reason == "FieldValueRequired"


def test_structural_forbids_ref() -> None:
    causes = check_structural(root({"type": "object", "$ref": "#/x"}))
    assert [c.field for c in causes] == ["openAPIV3Schema.properties[spec].$ref"]


def test_structural_root_metadata_may_only_restrict_name() -> None:
    name = {"type": "string", "maxLength": 10}
    assert check_structural(obj_schema(metadata=obj_schema(name=name))) == []
    labels = {"type": "object"}
    causes = check_structural(obj_schema(metadata=obj_schema(name=name, labels=labels)))
    assert any(c.reason == "FieldValueForbidden" for c in causes)


def test_structural_forbids_type_inside_value_validation() -> None:
    schema = root({"type": "object", "anyOf": [{"type": "string"}]})
    cause = only(check_structural(schema))
    assert cause.field == "openAPIV3Schema.properties[spec].anyOf[0].type"


INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def test_structural_allows_the_int_or_string_junctor_as_controller_gen_writes_it() -> None:
    field = {"x-kubernetes-int-or-string": True, "anyOf": INT_OR_STRING_ANY_OF}
    in_all_of = {"x-kubernetes-int-or-string": True,
                 "allOf": [{"anyOf": INT_OR_STRING_ANY_OF}, {"pattern": "^[0-9]+%?$"}]}
    assert check_structural(root(obj_schema(maxSurge=field, other=in_all_of))) == []
    assert validate({"spec": {"maxSurge": "25%"}}, root(obj_schema(maxSurge=field))) == []


def test_structural_int_or_string_junctor_is_exact() -> None:
    loose = {"x-kubernetes-int-or-string": True,
             "anyOf": [{"type": "integer"}, {"type": "boolean"}]}
    without_marker = {"anyOf": INT_OR_STRING_ANY_OF, "type": "object"}
    assert [c.field for c in check_structural(root(obj_schema(a=loose)))] == [
        "openAPIV3Schema.properties[spec].properties[a].anyOf[0].type",
        "openAPIV3Schema.properties[spec].properties[a].anyOf[1].type"]
    assert len(check_structural(root(obj_schema(a=without_marker)))) == 2


def test_structural_array_needs_items() -> None:
    cause = only(check_structural(root({"type": "array"})))
    assert cause.field == "openAPIV3Schema.properties[spec].items"


# -- compiled schema reuse ------------------------------------------------------------------------


def test_compiled_schema_methods_match_module_functions() -> None:
    compiled = CompiledSchema(SPEC)
    obj = {"spec": {"size": "S", "junk": 1}}
    assert compiled.prune(obj) == [".spec.junk"]
    assert compiled.validate(obj) == []


# -- properties ----------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3))
JSON = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abxy"), inner, max_size=3)),
    max_leaves=10)
PROP_SCHEMA = st.recursive(
    st.sampled_from([{"type": "string"}, {"type": "integer", "default": 7},
                     {"x-kubernetes-int-or-string": True}]),
    lambda inner: st.one_of(
        st.dictionaries(st.sampled_from("ab"), inner, max_size=2).map(
            lambda props: {"type": "object", "properties": props, "default": {}}),
        inner.map(lambda items: {"type": "array", "items": items}),
        st.just({"type": "object", "x-kubernetes-preserve-unknown-fields": True})),
    max_leaves=6)
SCHEMAS = st.dictionaries(st.sampled_from(["spec", "status"]), PROP_SCHEMA, max_size=2).map(
    lambda props: {"type": "object", "properties": props})
OBJECTS = st.dictionaries(st.sampled_from(["spec", "status", "kind", "other"]), JSON, max_size=3)


@given(SCHEMAS, OBJECTS)
def test_prune_is_idempotent(schema: dict[str, Any], obj: dict[str, Any]) -> None:
    prune(obj, schema)
    once = copy.deepcopy(obj)
    assert prune(obj, schema) == []
    assert obj == once


def declared_paths(value: Any, schema: dict[str, Any], path: str = "") -> set[str]:
    """Paths in ``value`` that ``schema`` declares (so pruning must keep them)."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            prop = (schema.get("properties") or {}).get(key)
            if prop is not None:
                child = f"{path}.{key}"
                found.add(child)
                found |= declared_paths(item, prop, child)
    return found


def surviving_paths(value: Any, path: str = "") -> set[str]:
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(f"{path}.{key}")
            found |= surviving_paths(item, f"{path}.{key}")
    return found


@given(SCHEMAS, OBJECTS)
def test_prune_never_removes_declared_fields(schema: dict[str, Any],
                                             obj: dict[str, Any]) -> None:
    declared = declared_paths(obj, schema)
    removed = set(prune(obj, schema))
    assert not removed & declared
    assert declared <= surviving_paths(obj)


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(leaves(item, f"{path}.{key}"))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(leaves(item, f"{path}[{i}]"))
        return out
    return {path: value}


@given(SCHEMAS, OBJECTS)
def test_defaults_never_overwrite_existing_values(schema: dict[str, Any],
                                                  obj: dict[str, Any]) -> None:
    before = {p: v for p, v in leaves(obj).items() if v is not None}
    apply_defaults(obj, schema)
    after = leaves(obj)
    for path, value in before.items():
        assert after.get(path, value) == value
