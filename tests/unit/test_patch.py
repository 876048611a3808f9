"""PATCH dialects: JSON merge patch, JSON patch and strategic merge patch as kube-apiserver does."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central_api.machinery.errors import ApiError
from central_api.registry.patch import (
    apply_patch,
    json_equal,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)

#: A Pod-like schema: containers merge by name, ports by containerPort, args are replaced.
POD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "containers": {
                    "type": "array",
                    "x-kubernetes-patch-strategy": "merge",
                    "x-kubernetes-patch-merge-key": "name",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "image": {"type": "string"},
                            "args": {"type": "array", "items": {"type": "string"}},
                            "ports": {
                                "type": "array",
                                "x-kubernetes-patch-strategy": "merge",
                                "x-kubernetes-patch-merge-key": "containerPort",
                                "items": {"type": "object"},
                            },
                        },
                    },
                },
                "tags": {"type": "array", "x-kubernetes-patch-strategy": "merge",
                         "items": {"type": "string"}},
                "strategy": {"type": "object", "x-kubernetes-patch-strategy": "retainKeys"},
                "plain": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}


def secret(**meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", **meta},
            "data": {"a": "YQ=="}}


# --------------------------------------------------------------------------- JSON merge patch


def test_merge_patch_null_deletes_key() -> None:
    assert json_merge_patch({"a": 1, "b": 2}, {"a": None}) == {"b": 2}


def test_merge_patch_merges_nested_objects() -> None:
    target = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    patch = {"metadata": {"labels": {"b": None, "c": "3"}}}
    assert json_merge_patch(target, patch) == {"metadata": {"labels": {"a": "1", "c": "3"}}}


def test_merge_patch_replaces_lists_wholesale() -> None:
    assert json_merge_patch({"l": [1, 2, 3]}, {"l": [4]}) == {"l": [4]}


def test_merge_patch_drops_nulls_inside_new_objects() -> None:
    assert json_merge_patch({}, {"a": {"b": None, "c": 1}}) == {"a": {"c": 1}}


def test_merge_patch_leaves_inputs_untouched() -> None:
    target, patch = {"a": {"b": 1}}, {"a": {"b": 2, "c": [1]}}
    result = json_merge_patch(target, patch)
    result["a"]["c"].append(2)
    assert target == {"a": {"b": 1}}
    assert patch == {"a": {"b": 2, "c": [1]}}


def test_merge_patch_that_is_not_an_object_is_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        json_merge_patch({"a": 1}, [1, 2])
    assert err.value.code == 400


# --------------------------------------------------------------------------- JSON patch


def test_json_patch_applies_operations_in_order() -> None:
    ops = [{"op": "add", "path": "/metadata/labels", "value": {"a": "1"}},
           {"op": "replace", "path": "/data/a", "value": "Yg=="},
           {"op": "remove", "path": "/metadata/labels/a"}]
    result = json_patch(secret(), ops)
    assert result["metadata"]["labels"] == {}
    assert result["data"] == {"a": "Yg=="}


def test_json_patch_leaves_target_untouched() -> None:
    target = secret()
    json_patch(target, [{"op": "remove", "path": "/data/a"}])
    assert target == secret()


def test_json_patch_failed_test_op_is_422() -> None:
    with pytest.raises(ApiError) as err:
        json_patch(secret(), [{"op": "test", "path": "/data/a", "value": "nope"}])
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert err.value.causes and err.value.causes[0].message


def test_json_patch_remove_of_missing_path_is_422() -> None:
    with pytest.raises(ApiError) as err:
        json_patch(secret(), [{"op": "remove", "path": "/spec/missing"}])
    assert err.value.code == 422


def test_json_patch_unknown_operation_is_422() -> None:
    with pytest.raises(ApiError) as err:
        json_patch(secret(), [{"op": "frobnicate", "path": "/a"}])
    assert err.value.code == 422


def test_json_patch_document_that_is_not_a_list_is_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        json_patch(secret(), {"op": "add", "path": "/a", "value": 1})
    assert err.value.code == 400


def test_json_patch_list_of_non_objects_is_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        json_patch(secret(), ["add"])
    assert err.value.code == 400


def test_json_patch_replacing_the_root_with_a_scalar_is_422() -> None:
    with pytest.raises(ApiError) as err:
        json_patch(secret(), [{"op": "replace", "path": "", "value": 5}])
    assert err.value.code == 422


# --------------------------------------------------------------------------- strategic merge


def test_smp_merges_maps_recursively() -> None:
    result = strategic_merge_patch(secret(labels={"a": "1"}),
                                   {"metadata": {"labels": {"b": "2"}}}, {})
    assert result["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_smp_null_deletes_key() -> None:
    result = strategic_merge_patch(secret(labels={"a": "1", "b": "2"}),
                                   {"metadata": {"labels": {"a": None}}}, {})
    assert result["metadata"]["labels"] == {"b": "2"}


def test_smp_null_for_absent_key_is_ignored() -> None:
    result = strategic_merge_patch(secret(), {"metadata": {"annotations": None}}, {})
    assert "annotations" not in result["metadata"]


def test_smp_replaces_list_without_patch_strategy() -> None:
    target = {"spec": {"plain": ["a", "b"]}}
    assert strategic_merge_patch(target, {"spec": {"plain": ["c"]}}, POD_SCHEMA) == {
        "spec": {"plain": ["c"]}}


def test_smp_merges_finalizers() -> None:
    target = secret(finalizers=["a", "b"])
    result = strategic_merge_patch(target, {"metadata": {"finalizers": ["c", "a"]}}, {})
    assert sorted(result["metadata"]["finalizers"]) == ["a", "b", "c"]


def test_smp_orders_merged_primitives_by_patch_then_live_order() -> None:
    target = {"spec": {"tags": ["a", "b", "c"]}}
    result = strategic_merge_patch(target, {"spec": {"tags": ["d", "b"]}}, POD_SCHEMA)
    assert result["spec"]["tags"] == ["d", "a", "b", "c"]


def test_smp_merges_owner_references_by_uid() -> None:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"}
    target = secret(ownerReferences=[ref])
    patch = {"metadata": {"ownerReferences": [{"uid": "1", "name": "y"},
                                              {"uid": "2", "name": "z"}]}}
    refs = strategic_merge_patch(target, patch, {})["metadata"]["ownerReferences"]
    assert refs == [{**ref, "name": "y"}, {"uid": "2", "name": "z"}]


def test_smp_merges_list_of_maps_by_merge_key() -> None:
    target = {"spec": {"containers": [{"name": "a", "image": "a:1", "args": ["x"]},
                                      {"name": "b", "image": "b:1"}]}}
    patch = {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}
    assert strategic_merge_patch(target, patch, POD_SCHEMA)["spec"]["containers"] == [
        {"name": "a", "image": "a:1", "args": ["x"]}, {"name": "b", "image": "b:2"}]


def test_smp_replaces_nested_list_without_strategy_inside_merged_item() -> None:
    target = {"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}
    patch = {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}
    result = strategic_merge_patch(target, patch, POD_SCHEMA)
    assert result["spec"]["containers"] == [{"name": "a", "args": ["z"]}]


def test_smp_patch_delete_directive_removes_list_item() -> None:
    target = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    patch = {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}
    assert strategic_merge_patch(target, patch, POD_SCHEMA)["spec"]["containers"] == [
        {"name": "b"}]


def test_smp_patch_replace_directive_replaces_merged_list() -> None:
    target = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    patch = {"spec": {"containers": [{"name": "c"}, {"$patch": "replace"}]}}
    assert strategic_merge_patch(target, patch, POD_SCHEMA)["spec"]["containers"] == [
        {"name": "c"}]


def test_smp_patch_replace_directive_replaces_map() -> None:
    target = secret(labels={"a": "1", "b": "2"})
    patch = {"metadata": {"labels": {"c": "3", "$patch": "replace"}}}
    assert strategic_merge_patch(target, patch, {})["metadata"]["labels"] == {"c": "3"}


def test_smp_patch_delete_directive_on_map_empties_it() -> None:
    target = secret(labels={"a": "1"})
    patch = {"metadata": {"labels": {"$patch": "delete"}}}
    assert strategic_merge_patch(target, patch, {})["metadata"]["labels"] == {}


def test_smp_patch_merge_directive_on_map_merges() -> None:
    target = secret(labels={"a": "1"})
    patch = {"metadata": {"labels": {"b": "2", "$patch": "merge"}}}
    assert strategic_merge_patch(target, patch, {})["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_smp_unknown_patch_directive_is_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        strategic_merge_patch(secret(), {"metadata": {"labels": {"$patch": "explode"}}}, {})
    assert err.value.code == 400


def test_smp_list_item_without_merge_key_is_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        strategic_merge_patch({"spec": {"containers": [{"name": "a"}]}},
                              {"spec": {"containers": [{"image": "x"}]}}, POD_SCHEMA)
    assert err.value.code == 400


def test_smp_retain_keys_drops_unlisted_keys() -> None:
    target = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge_patch(target, patch, POD_SCHEMA)["spec"]["strategy"] == {
        "type": "Recreate"}


def test_smp_retain_keys_not_matching_patch_content_is_422() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "other": 1}}}
    with pytest.raises(ApiError) as err:
        strategic_merge_patch({"spec": {"strategy": {}}}, patch, POD_SCHEMA)
    assert err.value.code == 422


def test_smp_delete_from_primitive_list_directive() -> None:
    target = secret(finalizers=["a", "b", "c"])
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}
    assert strategic_merge_patch(target, patch, {})["metadata"]["finalizers"] == ["a", "c"]


def test_set_element_order_directive() -> None:
    target = secret(finalizers=["a", "b"])
    patch = {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}}
    result = strategic_merge_patch(target, patch, {})
    assert result["metadata"]["finalizers"] == ["c", "b", "a"]
    assert not any(k.startswith("$") for k in result["metadata"])


def test_set_element_order_directive_orders_maps_by_merge_key() -> None:
    target = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                      "containers": [{"name": "a", "image": "2"}]}}
    assert strategic_merge_patch(target, patch, POD_SCHEMA)["spec"]["containers"] == [
        {"name": "b"}, {"name": "a", "image": "2"}]


def test_set_element_order_reorders_live_list_without_patch_list() -> None:
    target = {"spec": {"tags": ["a", "b"]}}
    patch = {"spec": {"$setElementOrder/tags": ["b", "a"]}}
    assert strategic_merge_patch(target, patch, POD_SCHEMA)["spec"]["tags"] == ["b", "a"]


def test_set_element_order_inconsistent_with_patch_list_is_bad_request() -> None:
    patch = {"spec": {"$setElementOrder/tags": ["a"], "tags": ["b"]}}
    with pytest.raises(ApiError) as err:
        strategic_merge_patch({"spec": {"tags": []}}, patch, POD_SCHEMA)
    assert err.value.code == 400


def test_smp_new_subtree_has_no_nulls_or_directives() -> None:
    patch = {"spec": {"containers": [{"name": "a", "image": None}],
                      "strategy": {"$retainKeys": ["type"], "type": "Recreate", "x": None}}}
    assert strategic_merge_patch({}, patch, POD_SCHEMA) == {
        "spec": {"containers": [{"name": "a"}], "strategy": {"type": "Recreate"}}}


def test_smp_kubectl_label_patch() -> None:
    patch = {"metadata": {"labels": {"env": "prod"}}}
    result = strategic_merge_patch(secret(labels={"app": "x"}), patch, {})
    assert result["metadata"]["labels"] == {"app": "x", "env": "prod"}
    assert result["data"] == {"a": "YQ=="}


def test_smp_kubectl_client_side_apply_three_way_patch() -> None:
    live = secret(annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                  labels={"a": "1", "gone": "x"}, finalizers=["f1", "f2"])
    patch = {"metadata": {
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"new":1}'},
        "labels": {"gone": None, "b": "2"},
        "$setElementOrder/finalizers": ["f3", "f1"],
        "$deleteFromPrimitiveList/finalizers": ["f2"],
        "finalizers": ["f3"]},
        "data": {"b": "Yg=="}}
    result = strategic_merge_patch(live, patch, {})
    assert result["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert result["metadata"]["finalizers"] == ["f3", "f1"]
    assert result["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": '{"new":1}'}
    assert result["data"] == {"a": "YQ==", "b": "Yg=="}


def test_smp_leaves_inputs_untouched() -> None:
    target, patch = secret(finalizers=["a"]), {"metadata": {"finalizers": ["b"]}}
    strategic_merge_patch(target, patch, {})
    assert target == secret(finalizers=["a"])
    assert patch == {"metadata": {"finalizers": ["b"]}}


def test_smp_that_is_not_an_object_is_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        strategic_merge_patch(secret(), ["x"], {})
    assert err.value.code == 400


# --------------------------------------------------------------------------- dispatch


def test_apply_patch_dispatches_merge_patch() -> None:
    body = b'{"metadata":{"labels":{"a":"1"}}}'
    result = apply_patch("application/merge-patch+json", secret(), body, {})
    assert result["metadata"]["labels"] == {"a": "1"}


def test_apply_patch_dispatches_json_patch() -> None:
    body = b'[{"op":"remove","path":"/data"}]'
    assert "data" not in apply_patch("application/json-patch+json", secret(), body, {})


def test_apply_patch_dispatches_strategic_merge_patch_and_ignores_parameters() -> None:
    body = b'{"metadata":{"finalizers":["b"]}}'
    result = apply_patch("application/strategic-merge-patch+json; charset=utf-8",
                         secret(finalizers=["a"]), body, {})
    assert sorted(result["metadata"]["finalizers"]) == ["a", "b"]


def test_smp_puts_items_unknown_to_the_live_list_first_like_kubernetes() -> None:
    # mergeSortedSlice cannot place an item the live list lacks, so it comes first.
    result = strategic_merge_patch(secret(finalizers=["a"]), {"metadata": {"finalizers": ["b"]}},
                                   {})
    assert result["metadata"]["finalizers"] == ["b", "a"]


def test_apply_patch_malformed_body_is_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        apply_patch("application/merge-patch+json", secret(), b"{not json", {})
    assert (err.value.code, err.value.reason) == (400, "BadRequest")
    assert "error decoding patch" in err.value.message


def test_apply_patch_unknown_media_type_is_415() -> None:
    with pytest.raises(ApiError) as err:
        apply_patch("application/xml", secret(), b"{}", {})
    assert err.value.code == 415


def test_apply_patch_does_not_handle_server_side_apply() -> None:
    with pytest.raises(ApiError) as err:
        apply_patch("application/apply-patch+yaml", secret(), b"{}", {})
    assert err.value.code == 415


# --------------------------------------------------------------------------- properties

_keys = st.text(alphabet="abcdef", min_size=1, max_size=3)
_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet="xyz", max_size=2)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_keys, inner, max_size=3), max_leaves=12)
_objects = st.dictionaries(_keys, _json, max_size=4)


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    return value


def create_merge_patch(a: Any, b: Any) -> Any:
    """The RFC 7386 patch turning object ``a`` into object ``b``."""
    patch: dict[str, Any] = {k: None for k in a if k not in b}
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(a.get(key), dict):
            sub = create_merge_patch(a[key], value)
            if sub:
                patch[key] = sub
        elif key not in a or not json_equal(a[key], value):
            patch[key] = value
    return patch


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@settings(max_examples=150)
@given(_objects, _objects)
def test_merge_patch_round_trips_create_merge_patch(a: dict[str, Any],
                                                    b: dict[str, Any]) -> None:
    b = _strip_nulls(b)
    assert _same(json_merge_patch(a, create_merge_patch(a, b)), b)


@settings(max_examples=150)
@given(_objects, _objects)
def test_json_patch_round_trips_make_patch(a: dict[str, Any], b: dict[str, Any]) -> None:
    ops = jsonpatch.make_patch(a, b).patch
    assert json_patch(a, ops) == b


@settings(max_examples=150)
@given(_objects, _objects)
def test_smp_without_patch_strategies_equals_merge_patch(target: dict[str, Any],
                                                         patch: dict[str, Any]) -> None:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert _same(strategic_merge_patch(target, copy.deepcopy(patch), schema),
                 json_merge_patch(target, patch))


_finalizers = st.lists(st.sampled_from("abcdef"), unique=True, max_size=6)


@given(_finalizers, _finalizers)
def test_smp_finalizers_merge_is_a_duplicate_free_union(live: list[str],
                                                        added: list[str]) -> None:
    result = strategic_merge_patch(secret(finalizers=live), {"metadata": {"finalizers": added}},
                                   {})["metadata"]["finalizers"]
    assert sorted(result) == sorted(set(live) | set(added))
    assert [f for f in result if f in added] == added


def test_json_patch_failed_test_op_names_the_value_seen_after_earlier_ops() -> None:
    ops = [{"op": "replace", "path": "/a/b", "value": 2},
           {"op": "test", "path": "/a/b", "value": 3}]
    with pytest.raises(ApiError) as info:
        json_patch({"a": {"b": 1}}, ops)
    assert info.value.causes[0].message == "testing value /a/b failed: expected 3, found 2"
