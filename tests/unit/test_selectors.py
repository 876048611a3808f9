"""Label and field selectors behave like k8s.io/apimachinery's parsers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central_api.machinery.errors import ApiError
from central_api.machinery.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    from_label_selector_object,
    parse_field_selector,
    parse_label_selector,
    validate_label_key,
    validate_label_value,
)


def matches(selector: str, labels: dict[str, str]) -> bool:
    return parse_label_selector(selector).matches(labels)


def parse_error(selector: str) -> str:
    with pytest.raises(ApiError) as info:
        parse_label_selector(selector)
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"
    return info.value.message


# -- label selector semantics ------------------------------------------------------------------


def test_equals_matches_same_value() -> None:
    assert matches("app=web", {"app": "web"})
    assert not matches("app=web", {"app": "db"})


def test_double_equals_is_equality() -> None:
    assert matches("app==web", {"app": "web"})


def test_equals_does_not_match_missing_label() -> None:
    assert not matches("app=web", {})


def test_not_equals_matches_missing_label() -> None:
    assert matches("app!=web", {})
    assert not matches("app!=web", {"app": "web"})


def test_in_requires_value_in_set() -> None:
    assert matches("env in (prod, staging)", {"env": "staging"})
    assert not matches("env in (prod, staging)", {"env": "dev"})
    assert not matches("env in (prod)", {})


def test_notin_matches_missing_label() -> None:
    assert matches("env notin (prod)", {})
    assert matches("env notin (prod)", {"env": "dev"})
    assert not matches("env notin (prod)", {"env": "prod"})


def test_bare_key_means_exists() -> None:
    assert matches("app", {"app": ""})
    assert not matches("app", {"other": "x"})


def test_bang_key_means_does_not_exist() -> None:
    assert matches("!app", {"other": "x"})
    assert not matches("!app", {"app": "x"})


def test_greater_than_compares_numerically() -> None:
    assert matches("tier>9", {"tier": "10"})
    assert not matches("tier>9", {"tier": "9"})
    assert matches("tier<10", {"tier": "9"})


def test_numeric_comparison_does_not_match_non_integer_label() -> None:
    assert not matches("tier>1", {"tier": "high"})
    assert not matches("tier>1", {})


def test_numeric_operator_requires_integer_value() -> None:
    assert "the value must be an integer" in parse_error("tier>high")


def test_comma_is_and() -> None:
    assert matches("a=1,b=2", {"a": "1", "b": "2"})
    assert not matches("a=1,b=2", {"a": "1"})


def test_whitespace_is_tolerated() -> None:
    assert matches("  a = 1 ,  b   in ( x , y ) , ! c ", {"a": "1", "b": "y"})


def test_empty_selector_matches_everything() -> None:
    selector = parse_label_selector("")
    assert selector.empty
    assert selector.matches({"any": "thing"})
    assert selector.matches({})


def test_non_empty_selector_is_not_empty() -> None:
    assert not parse_label_selector("a").empty


def test_empty_value_set_means_empty_string() -> None:
    assert matches("a in ()", {"a": ""})
    assert not matches("a in ()", {"a": "x"})


def test_equals_without_value_means_empty_string() -> None:
    assert matches("a=", {"a": ""})


def test_keywords_are_values_inside_parentheses() -> None:
    assert matches("a in (in, notin)", {"a": "notin"})


def test_prefixed_key_is_accepted() -> None:
    assert matches("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"})


def test_requirements_are_sorted_by_key() -> None:
    assert str(parse_label_selector("b=1,a in (y,x)")) == "a in (x,y),b=1"


# -- label selector errors -----------------------------------------------------------------------


def test_space_separated_values_are_rejected() -> None:
    message = parse_error("app=we b")
    assert message.startswith("found 'b'")


def test_invalid_label_value_is_reported() -> None:
    message = parse_error("app=-web")
    assert message.startswith("unable to parse requirement: ")
    assert "a valid label must be an empty string" in message


def test_missing_parenthesis_is_reported() -> None:
    assert parse_error("a in") == "unable to parse requirement: found '', expected: '('"


def test_trailing_comma_is_rejected() -> None:
    assert parse_error("a=b,") == "found '', expected: identifier after ','"


def test_missing_operator_is_reported() -> None:
    assert "expected: in, notin, =, ==, !=, gt, lt" in parse_error("a b")


def test_double_operator_is_rejected() -> None:
    assert parse_error("a=b=c") == "found '=', expected: ',' or 'end of string'"


def test_key_prefix_must_be_dns_subdomain() -> None:
    assert "prefix part a lowercase RFC 1123 subdomain" in parse_error("Foo_Bar/x=y")


# -- key / value validation helpers ------------------------------------------------------------


def test_label_key_name_part_longer_than_63_is_invalid() -> None:
    assert validate_label_key("a" * 63) is None
    assert "name part must be no more than 63 characters" in (validate_label_key("a" * 64) or "")


def test_label_key_with_two_slashes_is_invalid() -> None:
    assert "a qualified name" in (validate_label_key("a/b/c") or "")


def test_label_key_empty_prefix_is_invalid() -> None:
    assert "prefix part must be non-empty" in (validate_label_key("/name") or "")


def test_label_value_may_be_empty() -> None:
    assert validate_label_value("") is None


def test_label_value_longer_than_63_is_invalid() -> None:
    assert "must be no more than 63 characters" in (validate_label_value("v" * 64) or "")


def test_label_value_must_start_alphanumeric() -> None:
    assert validate_label_value("_x") is not None


# -- metav1.LabelSelector -----------------------------------------------------------------------


def test_label_selector_object_combines_labels_and_expressions() -> None:
    selector = from_label_selector_object({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]},
                             {"key": "tier", "operator": "Exists"}],
    })
    assert selector.matches({"app": "web", "tier": "1"})
    assert not selector.matches({"app": "web", "tier": "1", "env": "prod"})


def test_nil_label_selector_object_selects_nothing() -> None:
    selector = from_label_selector_object(None)
    assert not selector.matches({})
    assert not selector.empty


def test_empty_label_selector_object_selects_everything() -> None:
    assert from_label_selector_object({}).matches({"a": "b"})


def test_label_selector_object_rejects_unknown_operator() -> None:
    with pytest.raises(ApiError, match='"Gt" is not a valid label selector operator'):
        from_label_selector_object({"matchExpressions": [{"key": "a", "operator": "Gt"}]})


def test_label_selector_object_in_requires_values() -> None:
    with pytest.raises(ApiError, match="values set can't be empty"):
        from_label_selector_object({"matchExpressions": [{"key": "a", "operator": "In"}]})


# -- field selectors -----------------------------------------------------------------------------

SUPPORTED = {"metadata.name", "metadata.namespace", "spec.nodeName"}
POD = {"metadata": {"name": "web", "namespace": "default"}, "spec": {}}


def test_field_equals_matches() -> None:
    assert parse_field_selector("metadata.name=web", SUPPORTED).matches(POD)
    assert parse_field_selector("metadata.name==web", SUPPORTED).matches(POD)
    assert not parse_field_selector("metadata.name=db", SUPPORTED).matches(POD)


def test_field_not_equals_matches() -> None:
    assert parse_field_selector("metadata.name!=db", SUPPORTED).matches(POD)


def test_field_comma_is_and() -> None:
    selector = parse_field_selector("metadata.name=web,metadata.namespace=kube-system", SUPPORTED)
    assert not selector.matches(POD)


def test_field_missing_value_equals_empty_string() -> None:
    assert parse_field_selector("spec.nodeName=", SUPPORTED).matches(POD)


def test_unsupported_field_is_rejected() -> None:
    with pytest.raises(ApiError, match="^field label not supported: spec.foo$"):
        parse_field_selector("spec.foo=bar", SUPPORTED)


def test_field_term_without_operator_is_rejected() -> None:
    with pytest.raises(ApiError, match="can't understand 'metadata.name'"):
        parse_field_selector("metadata.name", SUPPORTED)


def test_field_value_escapes_are_decoded() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c", SUPPORTED)
    assert selector.exact("metadata.name") == "a,b=c"


def test_field_value_unescaped_equals_is_rejected() -> None:
    with pytest.raises(ApiError, match="unescaped character in value"):
        parse_field_selector("metadata.name==a=b", SUPPORTED)


def test_field_exact_reports_pinned_value_only_for_equality() -> None:
    selector = parse_field_selector("metadata.name=web,metadata.namespace!=x", SUPPORTED)
    assert selector.exact("metadata.name") == "web"
    assert selector.exact("metadata.namespace") is None


def test_empty_field_selector_matches_everything() -> None:
    selector = parse_field_selector("", SUPPORTED)
    assert selector.empty and selector.matches(POD)


# -- properties ----------------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "app.kubernetes.io/name", "x-y"])
VALUES = st.sampled_from(["", "1", "20", "v", "in", "notin", "a.b"])
NUMBERS = st.integers(min_value=0, max_value=99).map(str)


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    key = draw(KEYS)
    op = draw(st.sampled_from(list(Operator)))
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        return Requirement(key, op)
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        return Requirement(key, op, (draw(NUMBERS),))
    if op in (Operator.IN, Operator.NOT_IN):
        return Requirement(key, op, tuple(sorted(draw(st.sets(VALUES, min_size=1)))))
    return Requirement(key, op, (draw(VALUES),))


SELECTORS = st.lists(requirements(), max_size=4).map(
    lambda rs: LabelSelector(tuple(sorted(rs, key=lambda r: r.key))))
LABELS = st.dictionaries(KEYS, st.one_of(VALUES, NUMBERS), max_size=4)


def reference_match(req: Requirement, labels: dict[str, str]) -> bool:
    has = req.key in labels
    value = labels.get(req.key)
    op = req.operator
    if op is Operator.EXISTS:
        return has
    if op is Operator.DOES_NOT_EXIST:
        return not has
    if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
        return has and value in req.values
    if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
        return not has or value not in req.values
    if not has or not (value or "").isdigit():
        return False
    left, right = int(value or "0"), int(req.values[0])
    return left > right if op is Operator.GREATER_THAN else left < right


@given(SELECTORS)
def test_rendered_selector_parses_back_to_itself(selector: LabelSelector) -> None:
    assert parse_label_selector(str(selector)) == selector


@given(SELECTORS, LABELS)
def test_matches_agrees_with_reference_evaluation(
        selector: LabelSelector, labels: dict[str, str]) -> None:
    expected = all(reference_match(r, labels) for r in selector.requirements)
    assert parse_label_selector(str(selector)).matches(labels) == expected
