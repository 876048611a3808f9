"""KRM semantics of the generic registry, on a real SQLite store (no HTTP)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_api.controllers.garbage_collector import GarbageCollector
from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.kinds.kind import ResourceType
from central_api.machinery.errors import ApiError
from central_api.machinery.selectors import parse_label_selector
from central_api.registry.resources import DeleteOptions, ListOptions, Resources, WriteOptions
from central_api.store.base import Key
from central_api.store.sqlite import SqliteStore


@pytest.fixture
def resources(tmp_path: Path) -> Iterator[Resources]:
    store = SqliteStore(tmp_path / "state.db")
    res = Resources(store, Catalog(builtin_kinds()))
    res.create(kind(res, "namespaces"), "", {"metadata": {"name": "default"}}, WriteOptions())
    yield res
    store.close()


def kind(res: Resources, plural: str) -> ResourceType:
    for group, version in (("", "v1"), ("tenancy.scs.community", "v1alpha1")):
        rt = res.catalog.lookup(group, version, plural)
        if rt is not None:
            return rt
    raise LookupError(plural)


def tenant(name: str = "acme", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name}, "spec": {"displayName": "ACME", **spec}}


def secret(name: str, namespace: str = "default", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, **meta},
            "stringData": {"password": "s3cret"}}


def create_tenant(res: Resources, name: str = "acme", **spec: Any) -> dict[str, Any]:
    return res.create(kind(res, "tenants"), "", tenant(name, **spec), WriteOptions())


def error_of(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_create_sets_server_fields_and_defaults(resources: Resources) -> None:
    obj = create_tenant(resources)
    meta = obj["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
    assert obj["spec"]["enabledServices"] == ["iaas", "iam"]


def test_invalid_object_gives_422_with_field_paths_and_stores_nothing(
        resources: Resources) -> None:
    error = error_of(lambda: create_tenant(resources, displayName="", quotas={"cores": -1}))
    assert error.code == 422 and error.reason == "Invalid"
    assert {c.field for c in error.causes} >= {"spec.displayName", "spec.quotas.cores"}
    assert resources.list(kind(resources, "tenants"), None, ListOptions())["items"] == []


def test_uppercase_name_is_invalid(resources: Resources) -> None:
    error = error_of(lambda: create_tenant(resources, name="Acme"))
    assert error.code == 422 and error.causes[0].field == "metadata.name"


def test_stale_resource_version_gives_conflict(resources: Resources) -> None:
    rt = kind(resources, "tenants")
    first = create_tenant(resources)
    changed = copy.deepcopy(first)
    changed["spec"]["contact"] = "a@b.example"
    resources.update(rt, "", "acme", changed, WriteOptions())
    stale = copy.deepcopy(first)
    stale["spec"]["contact"] = "c@d.example"
    error = error_of(lambda: resources.update(rt, "", "acme", stale, WriteOptions()))
    assert error.code == 409 and error.reason == "Conflict"


def test_generation_counts_spec_changes_only(resources: Resources) -> None:
    rt = kind(resources, "tenants")
    obj = create_tenant(resources)
    obj["metadata"]["labels"] = {"tier": "gold"}
    obj = resources.update(rt, "", "acme", obj, WriteOptions())
    assert obj["metadata"]["generation"] == 1
    obj["spec"]["contact"] = "x@y.example"
    assert resources.update(rt, "", "acme", obj, WriteOptions())["metadata"]["generation"] == 2


def test_noop_update_keeps_resource_version(resources: Resources) -> None:
    rt = kind(resources, "tenants")
    obj = create_tenant(resources)
    again = resources.update(rt, "", "acme", copy.deepcopy(obj), WriteOptions())
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_status_changes_only_through_status_subresource(resources: Resources) -> None:
    rt = kind(resources, "tenants")
    obj = create_tenant(resources)
    obj["status"] = {"domainID": "d1"}
    obj["spec"]["contact"] = "x@y.example"
    main = resources.update(rt, "", "acme", copy.deepcopy(obj), WriteOptions())
    assert "domainID" not in main.get("status", {})
    obj["metadata"]["resourceVersion"] = main["metadata"]["resourceVersion"]
    obj["spec"]["contact"] = "ignored@y.example"
    status = resources.update(rt, "", "acme", obj, WriteOptions(), subresource="status")
    assert status["status"]["domainID"] == "d1"
    assert status["spec"]["contact"] == "x@y.example"


def test_dry_run_create_stores_nothing(resources: Resources) -> None:
    rt = kind(resources, "tenants")
    out = resources.create(rt, "", tenant(), WriteOptions(dry_run=True))
    assert out["metadata"]["uid"]
    assert resources.list(rt, None, ListOptions())["items"] == []


def test_secret_string_data_is_folded_into_base64_data(resources: Resources) -> None:
    obj = resources.create(kind(resources, "secrets"), "default", secret("db"), WriteOptions())
    assert obj["data"] == {"password": "czNjcmV0"} and "stringData" not in obj


def test_create_in_missing_namespace_is_not_found(resources: Resources) -> None:
    error = error_of(lambda: resources.create(kind(resources, "secrets"), "nowhere",
                                              secret("db", "nowhere"), WriteOptions()))
    assert error.code == 404


def test_finalizer_delays_deletion_until_removed(resources: Resources) -> None:
    rt = kind(resources, "tenants")
    obj = resources.create(rt, "", {**tenant(), "metadata": {
        "name": "acme", "finalizers": ["scs.community/cleanup"]}}, WriteOptions())
    pending = resources.delete(rt, "", "acme", DeleteOptions())
    assert pending["metadata"]["deletionTimestamp"]
    resources.remove_finalizer(rt, pending, "scs.community/cleanup")
    assert error_of(lambda: resources.get(rt, "", "acme")).code == 404
    assert obj["metadata"]["uid"] == pending["metadata"]["uid"]


def test_terminating_namespace_refuses_new_content(resources: Resources) -> None:
    ns = kind(resources, "namespaces")
    resources.create(ns, "", {"metadata": {"name": "team"}}, WriteOptions())
    resources.delete(ns, "", "team", DeleteOptions())
    error = error_of(lambda: resources.create(kind(resources, "secrets"), "team",
                                              secret("db", "team"), WriteOptions()))
    assert error.code == 403


def gc_pass(resources: Resources, gc: GarbageCollector, since: int) -> int:
    for event in resources.store.events_since(since):
        gc.observe(event)
        since = event.revision
    gc.process()
    return since


def owned_secret(resources: Resources, owner: dict[str, Any], name: str = "owned") -> None:
    ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
           "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
    resources.create(kind(resources, "secrets"), "default",
                     secret(name, ownerReferences=[ref]), WriteOptions())


@pytest.mark.parametrize("propagation", ["Background", "Foreground"])
def test_deleting_owner_deletes_dependents(resources: Resources, propagation: str) -> None:
    gc = GarbageCollector(resources)
    gc.rebuild()
    since = resources.store.current_revision()
    owner = create_tenant(resources)
    owned_secret(resources, owner)
    resources.delete(kind(resources, "tenants"), "", "acme", DeleteOptions(propagation))
    for _ in range(4):
        since = gc_pass(resources, gc, since)
    secrets = resources.list(kind(resources, "secrets"), "default", ListOptions())["items"]
    assert secrets == []
    assert error_of(lambda: resources.get(kind(resources, "tenants"), "", "acme")).code == 404


def test_orphan_deletion_keeps_dependents_without_owner_reference(
        resources: Resources) -> None:
    gc = GarbageCollector(resources)
    gc.rebuild()
    since = resources.store.current_revision()
    owner = create_tenant(resources)
    owned_secret(resources, owner)
    resources.delete(kind(resources, "tenants"), "", "acme", DeleteOptions("Orphan"))
    for _ in range(3):
        since = gc_pass(resources, gc, since)
    kept = resources.get(kind(resources, "secrets"), "default", "owned")
    assert "ownerReferences" not in kept["metadata"]


def test_namespace_deletion_removes_everything_inside(resources: Resources) -> None:
    ns = kind(resources, "namespaces")
    gc = GarbageCollector(resources)
    gc.rebuild()
    since = resources.store.current_revision()
    resources.create(ns, "", {"metadata": {"name": "team"}}, WriteOptions())
    for name in ("a", "b"):
        resources.create(kind(resources, "secrets"), "team", secret(name, "team"),
                         WriteOptions())
    resources.delete(ns, "", "team", DeleteOptions())
    for _ in range(3):
        since = gc_pass(resources, gc, since)
    assert error_of(lambda: resources.get(ns, "", "team")).code == 404
    assert resources.store.list("core/secrets", "team").items == []
    assert resources.store.get(Key("core/namespaces", "", "default"))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(0, 30), limit=st.integers(1, 7),
       gold=st.sets(st.integers(0, 29), max_size=30))
def test_paginated_selector_list_returns_each_match_once_in_order(
        resources: Resources, count: int, limit: int, gold: set[int]) -> None:
    rt = kind(resources, "tenants")
    for item in resources.list(rt, None, ListOptions())["items"]:
        resources.delete(rt, "", item["metadata"]["name"], DeleteOptions())
    for i in range(count):
        labels = {"tier": "gold" if i in gold else "silver"}
        resources.create(rt, "", {**tenant(f"t{i:02d}"), "metadata": {
            "name": f"t{i:02d}", "labels": labels}}, WriteOptions())
    selector = parse_label_selector("tier=gold")
    seen: list[str] = []
    token = ""
    while True:
        page = resources.list(rt, None, ListOptions(selector, limit=limit,
                                                    continue_token=token))
        assert len(page["items"]) <= limit
        seen += [item["metadata"]["name"] for item in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert seen == [f"t{i:02d}" for i in range(count) if i in gold]


class RacingStore(SqliteStore):
    """A real SQLite store where another writer commits to the object just before the
    registry's next write of it, ``races`` times (a race, made deterministic)."""

    races = 0

    def _race(self, key: Key) -> None:
        if self.races:
            self.races -= 1
            current = self.get(key)
            current["metadata"].setdefault("labels", {})["raced"] = str(self.races)
            super().update(key, current, None)

    def update(self, key: Key, obj: dict[str, Any],
               expected_revision: int | None = None) -> dict[str, Any]:
        self._race(key)
        return super().update(key, obj, expected_revision)

    def delete(self, key: Key, expected_revision: int | None = None) -> dict[str, Any]:
        self._race(key)
        return super().delete(key, expected_revision)


@pytest.fixture
def racing(tmp_path: Path) -> Iterator[tuple[Resources, RacingStore]]:
    store = RacingStore(tmp_path / "state.db")
    res = Resources(store, Catalog(builtin_kinds()))
    res.create(kind(res, "namespaces"), "", {"metadata": {"name": "default"}}, WriteOptions())
    yield res, store
    store.close()


@pytest.mark.parametrize("finalizers", [[], ["example.com/hold"]])
def test_plain_delete_racing_a_concurrent_write_is_retried_not_409(
        racing: tuple[Resources, RacingStore], finalizers: list[str]) -> None:
    res, store = racing
    rt = kind(res, "secrets")
    res.create(rt, "default", secret("s", finalizers=finalizers), WriteOptions())
    store.races = 2

    deleted = res.delete(rt, "default", "s", DeleteOptions())

    assert store.races == 0
    assert deleted["metadata"]["labels"]["raced"] == "0"  # it saw the other writer's change
    if finalizers:
        assert res.get(rt, "default", "s")["metadata"]["deletionTimestamp"]
    else:
        assert error_of(lambda: res.get(rt, "default", "s")).code == 404


def test_delete_with_a_resource_version_precondition_still_conflicts(
        racing: tuple[Resources, RacingStore]) -> None:
    res, store = racing
    rt = kind(res, "secrets")
    created = res.create(rt, "default", secret("s"), WriteOptions())
    store.races = 1

    refused = error_of(lambda: res.delete(rt, "default", "s", DeleteOptions(
        precondition_rv=created["metadata"]["resourceVersion"])))

    assert refused.code == 409
    assert res.get(rt, "default", "s")["metadata"]["labels"]["raced"] == "0"
