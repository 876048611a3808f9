"""JSONPath for printer columns and ``kubectl -o jsonpath`` behaves like client-go's."""

from __future__ import annotations

from typing import Any

import pytest

from central_api.machinery.errors import ApiError
from central_api.machinery.jsonpath import column_value, compile_jsonpath, render_text

OBJ: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"app": "a", "app.kubernetes.io/name": "web"},
                 "creationTimestamp": "2024-01-02T03:04:05Z"},
    "spec": {"replicas": 3, "ratio": 0.5, "paused": False,
             "items": [{"name": "a"}, {"name": "b", "weight": 2}]},
    "status": {"conditions": [{"type": "Synced", "status": "False"},
                              {"type": "Ready", "status": "True"}]},
}


def find(expr: str) -> list[Any]:
    return compile_jsonpath(expr)(OBJ)


def test_dotted_path_selects_scalar() -> None:
    assert find(".spec.replicas") == [3]


def test_map_key_lookup() -> None:
    assert find(".metadata.labels.app") == ["a"]


def test_braces_and_dollar_are_optional() -> None:
    assert find("{.spec.replicas}") == find("$.spec.replicas") == [3]


def test_filter_with_double_quotes_selects_matching_items() -> None:
    assert find('.status.conditions[?(@.type=="Ready")].status') == ["True"]


def test_filter_with_single_quotes_and_spaces() -> None:
    assert find(".status.conditions[?(@.type == 'Ready')].status") == ["True"]


def test_filter_existence_selects_items_having_field() -> None:
    assert find(".spec.items[?(@.weight)].name") == ["b"]


def test_filter_numeric_comparison() -> None:
    assert find(".spec.items[?(@.weight > 1)].name") == ["b"]


def test_index_selects_one_item() -> None:
    assert find(".spec.items[0].name") == ["a"]


def test_negative_index_counts_from_end() -> None:
    assert find(".spec.items[-1].name") == ["b"]


def test_wildcard_selects_all_items() -> None:
    assert find(".spec.items[*].name") == ["a", "b"]


def test_slice_selects_range() -> None:
    assert find(".spec.items[0:1].name") == ["a"]


def test_bracket_key_with_dots() -> None:
    assert find(".metadata.labels['app.kubernetes.io/name']") == ["web"]


def test_escaped_dots_in_field_name() -> None:
    assert find(r".metadata.labels.app\.kubernetes\.io/name") == ["web"]


def test_recursive_descent_finds_all_names() -> None:
    assert find("..name") == ["web", "a", "b"]


def test_missing_key_yields_no_match() -> None:
    assert find(".spec.nothing.here") == []


def test_out_of_range_index_yields_no_match() -> None:
    assert find(".spec.items[5]") == []


@pytest.mark.parametrize("expr", [".spec[", ".spec[?(@.a==)]", ".a]", ".spec.items[x]"])
def test_syntax_error_is_bad_request(expr: str) -> None:
    with pytest.raises(ApiError) as info:
        compile_jsonpath(expr)
    assert info.value.code == 400


def test_string_column_renders_scalars_as_text() -> None:
    assert column_value(".spec.replicas", OBJ, "string") == "3"
    assert column_value(".spec.paused", OBJ, "string") == "false"


def test_string_column_renders_lists_as_compact_json() -> None:
    assert column_value(".spec.items", OBJ, "string") == \
        '[{"name":"a"},{"name":"b","weight":2}]'


def test_integer_column_holds_number() -> None:
    assert column_value(".spec.replicas", OBJ, "integer") == 3


def test_number_column_holds_float() -> None:
    assert column_value(".spec.ratio", OBJ, "number") == 0.5


def test_boolean_column_holds_bool() -> None:
    assert column_value(".spec.paused", OBJ, "boolean") is False


def test_column_of_wrong_type_is_empty() -> None:
    assert column_value(".metadata.name", OBJ, "integer") is None


def test_date_column_holds_timestamp_string() -> None:
    assert column_value(".metadata.creationTimestamp", OBJ, "date") == "2024-01-02T03:04:05Z"


def test_date_column_with_unparsable_value_is_invalid_marker() -> None:
    assert column_value(".metadata.name", OBJ, "date") == "<invalid>"


def test_missing_column_value_is_none() -> None:
    assert column_value(".status.replicas", OBJ, "integer") is None


def test_column_uses_first_match() -> None:
    assert column_value(".spec.items[*].name", OBJ, "string") == "a"


def test_render_text_formats_floats_like_go() -> None:
    assert render_text(2.0) == "2"
    assert render_text(1e21) == "1e+21"
