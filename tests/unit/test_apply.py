"""Server-side apply and managedFields, as kube-apiserver's field manager does them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central_api.machinery.errors import ApiError
from central_api.registry.apply import (
    field_set,
    fields_from_v1,
    fields_to_v1,
    server_side_apply,
    update_managed_fields,
)
from central_api.registry.patch import resource_schema

T1, T2, T3, T4 = ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z",
                  "2024-01-04T00:00:00Z")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "image": {"type": "string"},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port", "protocol"],
                    "items": {"type": "object", "properties": {
                        "port": {"type": "integer"},
                        "protocol": {"type": "string", "default": "TCP"},
                        "name": {"type": "string"}}},
                },
                "tags": {"type": "array", "x-kubernetes-list-type": "set",
                         "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                             "additionalProperties": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def obj(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "example.com/v1", "kind": "Widget",
                           "metadata": {"name": "w", "namespace": "default", **meta}}
    if spec is not None:
        out["spec"] = spec
    return out


def entries(o: dict[str, Any]) -> list[dict[str, Any]]:
    return list(o["metadata"].get("managedFields", []))


def entry(o: dict[str, Any], manager: str) -> dict[str, Any]:
    (found,) = [e for e in entries(o) if e["manager"] == manager]
    return found


def fields(o: dict[str, Any], manager: str) -> dict[str, Any]:
    return dict(entry(o, manager)["fieldsV1"])


def apply(live: dict[str, Any] | None, config: dict[str, Any], manager: str = "kubectl",
          force: bool = False, now: str = T1, subresource: str = "") -> dict[str, Any]:
    return server_side_apply(live, config, manager, force, SCHEMA, now, subresource)


def update(old: dict[str, Any] | None, new: dict[str, Any], manager: str,
           now: str = T2, subresource: str = "") -> dict[str, Any]:
    return update_managed_fields(old, new, manager, now, subresource, schema=SCHEMA)


def edited(o: dict[str, Any], **spec: Any) -> dict[str, Any]:
    new = copy.deepcopy(o)
    new.setdefault("spec", {}).update(spec)
    return new


# --------------------------------------------------------------------------- encoding


def test_apply_create_records_an_apply_entry() -> None:
    created = apply(None, obj({"replicas": 1}, labels={"app": "x"}))
    assert entries(created) == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "example.com/v1", "time": T1,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}}}}]
    assert created["spec"] == {"replicas": 1}


def test_fields_v1_uses_key_elements_for_list_maps() -> None:
    created = apply(None, obj({"ports": [{"port": 80, "protocol": "TCP"}]}))
    assert fields(created, "kubectl")["f:spec"] == {
        "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:protocol": {}}}}


def test_fields_v1_key_uses_schema_default_for_missing_key_field() -> None:
    created = apply(None, obj({"ports": [{"port": 80}]}))
    assert 'k:{"port":80,"protocol":"TCP"}' in fields(created, "kubectl")["f:spec"]["f:ports"]


def test_fields_v1_uses_value_elements_for_sets() -> None:
    created = apply(None, obj({"tags": ["a", "b"]}, finalizers=["x"]))
    fv1 = fields(created, "kubectl")
    assert fv1["f:spec"]["f:tags"] == {'v:"a"': {}, 'v:"b"': {}}
    assert fv1["f:metadata"]["f:finalizers"] == {'v:"x"': {}}


def test_fields_v1_atomic_list_and_map_are_leaves() -> None:
    created = apply(None, obj({"args": ["a"], "selector": {"k": "v"}}))
    assert fields(created, "kubectl")["f:spec"] == {"f:args": {}, "f:selector": {}}


def test_fields_v1_owner_references_are_atomic_items_keyed_by_uid() -> None:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "u1"}
    created = apply(None, obj(ownerReferences=[ref]))
    assert fields(created, "kubectl")["f:metadata"] == {"f:ownerReferences": {'k:{"uid":"u1"}': {}}}


def test_fields_v1_free_map_keys_with_children_are_members() -> None:
    created = apply(None, obj({"extra": {"a": {"b": 1}, "c": {}}}))
    assert fields(created, "kubectl")["f:spec"]["f:extra"] == {
        "f:a": {".": {}, "f:b": {}}, "f:c": {}}


def test_fields_v1_round_trips() -> None:
    config = obj({"ports": [{"port": 80, "protocol": "TCP", "name": "<web>"}], "tags": ["a"],
                  "extra": {"x": [1, {"y": True}]}}, labels={"a": "b"})
    paths = field_set(config, resource_schema(SCHEMA))
    assert fields_from_v1(fields_to_v1(paths)) == paths
    assert 'k:{"name":"\\u003cweb\\u003e"}' not in json.dumps(fields_to_v1(paths))


def test_apply_never_records_server_owned_metadata() -> None:
    created = apply(None, obj({"replicas": 1}))
    assert set(fields(created, "kubectl")) == {"f:spec"}


# --------------------------------------------------------------------------- conflicts


def test_apply_conflict_with_other_manager_gives_409() -> None:
    live = update(apply(None, obj({"replicas": 1})), edited(apply(None, obj({"replicas": 1})),
                                                            replicas=2), "kubectl-edit")
    with pytest.raises(ApiError) as err:
        apply(live, obj({"replicas": 3}), now=T3)
    status = err.value.status()
    assert (status["code"], status["reason"]) == (409, "Conflict")
    assert status["message"] == ('Apply failed with 1 conflict: conflict with "kubectl-edit" '
                                 "using example.com/v1: .spec.replicas")
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict",
                                            "message": 'conflict with "kubectl-edit" using '
                                                       "example.com/v1",
                                            "field": ".spec.replicas"}]


def test_apply_conflict_with_another_applier_names_it_without_version() -> None:
    live = apply(None, obj({"replicas": 1}), manager="terraform")
    with pytest.raises(ApiError) as err:
        apply(live, obj({"replicas": 2}), manager="kubectl")
    assert err.value.causes[0].message == 'conflict with "terraform"'


def test_apply_conflict_paths_for_list_items_are_printed_like_kubernetes() -> None:
    live = apply(None, obj({"ports": [{"port": 80, "protocol": "TCP", "name": "a"}]}), "other")
    with pytest.raises(ApiError) as err:
        apply(live, obj({"ports": [{"port": 80, "protocol": "TCP", "name": "b"}]}))
    assert err.value.causes[0].field == '.spec.ports[port=80,protocol="TCP"].name'


def test_apply_multiple_conflicts_are_grouped_by_manager() -> None:
    live = apply(None, obj({"replicas": 1, "image": "a"}), manager="other")
    with pytest.raises(ApiError) as err:
        apply(live, obj({"replicas": 2, "image": "b"}))
    assert err.value.message == ('Apply failed with 2 conflicts: conflicts with "other":\n'
                                 "- .spec.image\n- .spec.replicas")
    assert len(err.value.causes) == 2


def test_force_apply_takes_ownership() -> None:
    live = apply(None, obj({"replicas": 1, "image": "a"}), manager="other")
    forced = apply(live, obj({"replicas": 2}), force=True, now=T2)
    assert forced["spec"] == {"replicas": 2, "image": "a"}
    assert fields(forced, "other") == {"f:spec": {"f:image": {}}}
    assert fields(forced, "kubectl") == {"f:spec": {"f:replicas": {}}}


def test_apply_same_value_shares_ownership() -> None:
    live = apply(None, obj({"replicas": 1}), manager="other")
    shared = apply(live, obj({"replicas": 1}), now=T2)
    assert fields(shared, "other") == fields(shared, "kubectl") == {"f:spec": {"f:replicas": {}}}


def test_apply_adding_a_new_field_is_no_conflict() -> None:
    live = apply(None, obj({"replicas": 1}), manager="other")
    result = apply(live, obj({"image": "x"}), now=T2)
    assert result["spec"] == {"replicas": 1, "image": "x"}


def test_kubectl_server_side_apply_takes_over_client_side_apply_fields() -> None:
    config = obj({"replicas": 1})
    csa = copy.deepcopy(config)
    csa["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(config)}
    live = update(None, csa, "kubectl-client-side-apply", now=T1)
    result = apply(live, obj({"replicas": 2}), manager="kubectl", now=T2)
    assert result["spec"]["replicas"] == 2
    assert fields(result, "kubectl") == {"f:spec": {"f:replicas": {}}}
    assert json.loads(result["metadata"]["annotations"][LAST_APPLIED]) == obj({"replicas": 2})


def test_client_side_fields_changed_since_are_still_conflicts() -> None:
    config = obj({"replicas": 1})
    csa = copy.deepcopy(config)
    csa["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(config)}
    live = update(None, csa, "kubectl-client-side-apply", now=T1)
    live = update(live, edited(live, replicas=5), "kubectl-edit", now=T2)
    with pytest.raises(ApiError) as err:
        apply(live, obj({"replicas": 2}), manager="kubectl", now=T3)
    assert err.value.code == 409


# --------------------------------------------------------------------------- pruning


def test_reapply_without_field_removes_it() -> None:
    live = apply(None, obj({"replicas": 1, "image": "a"}))
    result = apply(live, obj({"replicas": 1}), now=T2)
    assert result["spec"] == {"replicas": 1}
    assert fields(result, "kubectl") == {"f:spec": {"f:replicas": {}}}


def test_reapply_without_field_keeps_it_when_another_manager_owns_it() -> None:
    live = apply(None, obj({"replicas": 1, "image": "a"}))
    live = apply(live, obj({"image": "a"}), manager="other", now=T2)
    result = apply(live, obj({"replicas": 1}), now=T3)
    assert result["spec"] == {"replicas": 1, "image": "a"}


def test_reapply_without_list_item_removes_it() -> None:
    live = apply(None, obj({"ports": [{"port": 80, "protocol": "TCP"},
                                      {"port": 443, "protocol": "TCP"}]}))
    result = apply(live, obj({"ports": [{"port": 443, "protocol": "TCP"}]}), now=T2)
    assert result["spec"]["ports"] == [{"port": 443, "protocol": "TCP"}]


def test_reapply_without_any_spec_removes_the_whole_spec() -> None:
    live = apply(None, obj({"replicas": 1}))
    assert "spec" not in apply(live, obj(), now=T2)


def test_reapply_without_labels_keeps_labels_of_kubectl_label() -> None:
    live = apply(None, obj(labels={"app": "x"}))
    labelled = copy.deepcopy(live)
    labelled["metadata"]["labels"]["env"] = "prod"
    live = update(live, labelled, "kubectl-label")
    result = apply(live, obj(), now=T3)
    assert result["metadata"]["labels"] == {"env": "prod"}


def test_apply_merges_list_map_items_owned_by_others() -> None:
    live = apply(None, obj({"ports": [{"port": 80, "protocol": "TCP"}]}), manager="other")
    result = apply(live, obj({"ports": [{"port": 443, "protocol": "TCP"}]}), now=T2)
    assert [p["port"] for p in result["spec"]["ports"]] == [80, 443]


def test_apply_null_removes_field_but_keeps_ownership() -> None:
    live = update(None, obj({"replicas": 1, "image": "a"}), "kubectl-create")
    result = apply(live, obj({"image": None}), force=True, now=T2)
    assert result["spec"] == {"replicas": 1}
    assert fields(result, "kubectl") == {"f:spec": {"f:image": {}}}


# --------------------------------------------------------------------------- what is applied


def test_apply_ignores_managed_fields_and_server_metadata_in_config() -> None:
    live = apply(None, obj({"replicas": 1}))
    live["metadata"].update(uid="u1", resourceVersion="5", generation=2)
    config = obj({"replicas": 1}, uid="evil", resourceVersion="1", generation=9,
                 managedFields=[{"manager": "evil", "operation": "Apply", "fieldsV1": {}}])
    result = apply(live, config, now=T2)
    assert (result["metadata"]["uid"], result["metadata"]["resourceVersion"]) == ("u1", "5")
    assert result["metadata"]["generation"] == 2
    assert [e["manager"] for e in entries(result)] == ["kubectl"]


def test_apply_ignores_status_on_the_main_resource() -> None:
    live = apply(None, obj({"replicas": 1}))
    live["status"] = {"ready": False}
    result = apply(live, {**obj({"replicas": 1}), "status": {"ready": True}}, now=T2)
    assert result["status"] == {"ready": False}
    assert "f:status" not in fields(result, "kubectl")


def test_apply_to_status_subresource_only_applies_status() -> None:
    live = apply(None, obj({"replicas": 1}))
    config = {**obj({"replicas": 9}, labels={"x": "y"}), "status": {"ready": True}}
    result = apply(live, config, manager="controller", now=T2, subresource="status")
    assert result["spec"] == {"replicas": 1}
    assert result["status"] == {"ready": True}
    assert "labels" not in result["metadata"]
    status_entry = entry(result, "controller")
    assert status_entry["subresource"] == "status"
    assert status_entry["fieldsV1"] == {"f:status": {"f:ready": {}}}


def test_applying_only_identity_leaves_no_entry() -> None:
    assert "managedFields" not in apply(None, obj())["metadata"]


def test_apply_that_is_not_an_object_is_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        server_side_apply(None, ["x"], "kubectl", False, SCHEMA, T1)  # type: ignore[arg-type]
    assert err.value.code == 400


# --------------------------------------------------------------------------- timestamps & order


def test_noop_reapply_keeps_the_timestamp() -> None:
    live = apply(None, obj({"replicas": 1}))
    assert entry(apply(live, obj({"replicas": 1}), now=T2), "kubectl")["time"] == T1


def test_changing_reapply_bumps_the_timestamp() -> None:
    live = apply(None, obj({"replicas": 1}))
    assert entry(apply(live, obj({"replicas": 2}), now=T2), "kubectl")["time"] == T2


def test_apply_to_unmanaged_object_creates_before_first_apply_owner() -> None:
    live = obj({"replicas": 1, "image": "a"})
    result = apply(live, obj({"replicas": 1}), now=T2)
    assert fields(result, "before-first-apply") == {
        "f:spec": {".": {}, "f:image": {}, "f:replicas": {}}}


def test_managed_fields_entries_are_sorted_apply_first_then_by_time() -> None:
    live = update(None, obj({"replicas": 1}), "zz-creator", now=T1)
    live = update(live, edited(live, image="a"), "aa-editor", now=T2)
    live = apply(live, obj({"tags": ["t"]}), manager="b-applier", now=T3)
    live = apply(live, obj({"args": ["x"]}), manager="a-applier", now=T4)
    assert [(e["operation"], e["manager"]) for e in entries(live)] == [
        ("Apply", "b-applier"), ("Apply", "a-applier"),
        ("Update", "zz-creator"), ("Update", "aa-editor")]


# --------------------------------------------------------------------------- updates


def test_update_on_create_owns_all_fields_it_set() -> None:
    created = update(None, obj({"replicas": 1}, labels={"app": "x"}, finalizers=["f"]),
                     "kubectl-create", now=T1)
    assert entries(created) == [{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "example.com/v1",
        "time": T1, "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, 'v:"f"': {}},
                                    "f:labels": {".": {}, "f:app": {}}},
                     "f:spec": {".": {}, "f:replicas": {}}}}]


def test_update_owns_only_the_fields_it_changed() -> None:
    live = apply(None, obj({"replicas": 1, "image": "a"}))
    result = update(live, edited(live, replicas=2), "kubectl-edit")
    assert fields(result, "kubectl-edit") == {"f:spec": {"f:replicas": {}}}
    assert fields(result, "kubectl") == {"f:spec": {"f:image": {}}}


def test_update_without_changes_records_nothing() -> None:
    live = apply(None, obj({"replicas": 1}))
    assert entries(update(live, copy.deepcopy(live), "kubectl-edit")) == entries(live)


def test_update_drops_entries_that_end_up_empty() -> None:
    live = apply(None, obj({"replicas": 1}))
    result = update(live, edited(live, replicas=2), "kubectl-edit")
    assert [e["manager"] for e in entries(result)] == ["kubectl-edit"]


def test_update_removing_a_field_removes_it_from_every_owner() -> None:
    live = apply(None, obj({"replicas": 1, "image": "a"}))
    removed = copy.deepcopy(live)
    del removed["spec"]["image"]
    result = update(live, removed, "kubectl-edit")
    assert fields(result, "kubectl") == {"f:spec": {"f:replicas": {}}}
    assert all(e["manager"] != "kubectl-edit" for e in entries(result))


def test_update_accumulates_fields_of_the_same_manager() -> None:
    live = update(None, obj({"replicas": 1}), "kubectl-edit", now=T1)
    live = update(live, edited(live, image="b"), "kubectl-edit", now=T2)
    assert fields(live, "kubectl-edit") == {"f:spec": {".": {}, "f:image": {}, "f:replicas": {}}}
    assert entry(live, "kubectl-edit")["time"] == T2


def test_update_with_empty_managed_fields_resets_them() -> None:
    live = apply(None, obj({"replicas": 1}))
    new = edited(live, image="x")
    new["metadata"]["managedFields"] = []
    assert [e["manager"] for e in entries(update(live, new, "kubectl-edit"))] == ["kubectl-edit"]


def test_update_keeps_live_managed_fields_when_the_request_has_none() -> None:
    live = apply(None, obj({"replicas": 1}))
    new = edited(live, image="x")
    del new["metadata"]["managedFields"]
    assert {e["manager"] for e in entries(update(live, new, "edit"))} == {"kubectl", "edit"}


def test_update_request_managed_fields_replace_the_live_ones() -> None:
    live = apply(None, obj({"replicas": 1}))
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"][0]["manager"] = "renamed"
    assert [e["manager"] for e in entries(update(live, new, "edit"))] == ["renamed"]


def test_update_on_subresource_ignores_request_managed_fields() -> None:
    live = apply(None, obj({"replicas": 1}))
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = []
    new["status"] = {"ready": True}
    result = update(live, new, "controller", subresource="status")
    assert entry(result, "controller")["subresource"] == "status"
    assert fields(result, "kubectl") == {"f:spec": {"f:replicas": {}}}


def test_update_caps_update_managers_at_ten() -> None:
    live = update(None, obj({}), "creator", now="2024-01-01T00:00:00Z")
    for i in range(12):
        live = update(live, edited(live, **{f"f{i}": i}), f"m{i}", now=f"2024-01-01T00:00:{i:02}Z")
    managers = [e["manager"] for e in entries(live)]
    assert len(managers) == 10
    assert "ancient-changes" in managers
    assert "m11" in managers


# --------------------------------------------------------------------------- properties

_names = st.sampled_from(["a", "b", "c"])
_spec = st.fixed_dictionaries({}, optional={
    "replicas": st.integers(0, 3),
    "image": st.sampled_from(["x", "y"]),
    # non-empty: an empty list-map or set is owned by nobody, exactly as in Kubernetes
    "tags": st.lists(_names, unique=True, min_size=1, max_size=3),
    "args": st.lists(_names, max_size=3),
    "ports": st.lists(st.builds(lambda p, n: {"port": p, "protocol": "TCP", "name": n},
                                st.sampled_from([80, 443, 8080]), _names),
                      unique_by=lambda p: p["port"], min_size=1, max_size=3),
    "extra": st.dictionaries(_names, st.integers(0, 2) | st.dictionaries(_names, st.booleans()),
                             max_size=2),
})
_labels = st.dictionaries(_names, _names, max_size=2)


@settings(max_examples=100)
@given(_spec, _labels)
def test_applying_the_same_config_twice_is_idempotent(spec: dict[str, Any],
                                                      labels: dict[str, str]) -> None:
    config = obj(spec, labels=labels) if labels else obj(spec)
    once = apply(None, config, now=T1)
    twice = apply(once, config, now=T2)
    assert twice == once


@settings(max_examples=100)
@given(_spec, _spec)
def test_reapplying_owns_exactly_the_applied_fields(first: dict[str, Any],
                                                    second: dict[str, Any]) -> None:
    live = apply(None, obj(first), now=T1)
    result = apply(live, obj(second), now=T2)
    expected = fields_to_v1({p for p in field_set(obj(second), resource_schema(SCHEMA))
                             if p[0] == "f:spec"})
    assert fields(result, "kubectl") == expected
    assert result["spec"] == second


@settings(max_examples=100)
@given(_spec, _spec)
def test_update_then_noop_update_keeps_managed_fields(first: dict[str, Any],
                                                      second: dict[str, Any]) -> None:
    live = update(None, obj(first), "creator", now=T1)
    live = update(live, edited(live, **second), "editor", now=T2)
    assert update(live, copy.deepcopy(live), "other", now=T3) == live
