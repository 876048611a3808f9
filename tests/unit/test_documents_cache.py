"""Discovery and OpenAPI documents kept across CRD changes equal documents built afresh.

The documents are assembled from parts kept per served kind and from the catalog's index,
both rebuilt only for what changed; a part or index entry kept past its CRD's change would
serve a stale kind. Each test changes CRDs under a warm cache and compares every document
with one built from nothing for the same kinds.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from central_api.kinds import builtin_kinds
from central_api.kinds.apiextensions import resource_types
from central_api.kinds.catalog import Catalog
from central_api.server import discovery
from central_api.server.openapi import OpenApiDocuments


def widget_crd(group: str, kind: str = "Widget", versions: tuple[str, ...] = ("v1",),
               field: str = "size") -> dict[str, Any]:
    plural = kind.lower() + "s"
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        field: {"type": "integer", "description": f"The {field}.", "nullable": True}}}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                           "shortNames": [f"{kind.lower()[:2]}x"]},
                 "versions": [{"name": v, "served": True, "storage": i == 0,
                               "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
                               "subresources": {"status": {}}}
                              for i, v in enumerate(versions)]},
    }


def serve(catalog: Catalog, crd: dict[str, Any]) -> None:
    catalog.set_crd(crd["metadata"]["name"], resource_types(crd))


def documents(catalog: Catalog, docs: OpenApiDocuments) -> dict[str, Any]:
    """Every document, as bytes (OpenAPI) or as built (discovery)."""
    out: dict[str, Any] = {"v2": docs.v2(), "protobuf": docs.v2_protobuf(),
                           "index": docs.index(), "groups": discovery.api_group_list(catalog),
                           "aggregated": discovery.aggregated(catalog, False, "v2")}
    for group, version in discovery.served_group_versions(catalog):
        out[f"v3 {group}/{version}"] = docs.group_version(group, version)
        out[f"resources {group}/{version}"] = discovery.resource_list(catalog, group, version)
    return out


def fresh(catalog: Catalog, crds: list[dict[str, Any]]) -> dict[str, Any]:
    """The documents of a new catalog serving ``crds``: nothing kept from before."""
    other = Catalog(builtin_kinds())
    for crd in crds:
        serve(other, crd)
    return documents(other, OpenApiDocuments(other))


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(builtin_kinds())


def test_documents_follow_crds_added_changed_and_removed(catalog: Catalog) -> None:
    docs = OpenApiDocuments(catalog)
    first = widget_crd("one.example.com")
    second = widget_crd("two.example.com", "Gadget", versions=("v1", "v1beta1"))
    serve(catalog, first)
    documents(catalog, docs)  # everything built and kept

    serve(catalog, second)
    assert documents(catalog, docs) == fresh(catalog, [first, second])

    changed = widget_crd("one.example.com", field="colour")
    serve(catalog, changed)
    after = documents(catalog, docs)
    assert after == fresh(catalog, [changed, second])
    assert b"colour" in after["v2"] and b"colour" in after["v3 one.example.com/v1"]
    assert b'"size"' not in after["v3 one.example.com/v1"]

    catalog.set_crd(second["metadata"]["name"], [])
    after = documents(catalog, docs)
    assert after == fresh(catalog, [changed])
    assert b"two.example.com" not in after["v2"] + after["protobuf"] + after["index"]


def test_a_version_dropped_from_a_crd_leaves_the_documents(catalog: Catalog) -> None:
    docs = OpenApiDocuments(catalog)
    both = widget_crd("three.example.com", versions=("v1", "v2"))
    serve(catalog, both)
    assert "v3 three.example.com/v2" in documents(catalog, docs)

    only_v1 = widget_crd("three.example.com", versions=("v1",))
    serve(catalog, only_v1)
    after = documents(catalog, docs)
    assert "v3 three.example.com/v2" not in after
    assert docs.group_version("three.example.com", "v2") is None
    assert after == fresh(catalog, [only_v1])


def test_the_v2_document_drops_nullable_and_keeps_the_v3_one(catalog: Catalog) -> None:
    """Swagger 2.0 has no nullable: the v2 form is a converted copy, the kind's schema
    (shared with validation) is left as it was."""
    serve(catalog, widget_crd("four.example.com"))
    docs = OpenApiDocuments(catalog)
    assert b'"nullable"' not in docs.v2()
    assert b'"nullable":true' in (docs.group_version("four.example.com", "v1") or b"")
    rt = catalog.require("four.example.com", "v1", "widgets")
    assert rt.schema["properties"]["spec"]["properties"]["size"]["nullable"] is True
    assert "x-kubernetes-group-version-kind" not in rt.schema


def test_the_catalog_index_follows_changes(catalog: Catalog) -> None:
    serve(catalog, widget_crd("five.example.com", versions=("v2", "v1")))
    assert catalog.versions("five.example.com") == ["v2", "v1"]  # storage version first
    assert [rt.plural for rt in catalog.in_version("five.example.com", "v1")] == ["widgets"]
    assert catalog.by_storage_resource("five.example.com/widgets") is \
        catalog.lookup("five.example.com", "v2", "widgets")
    assert catalog.conflicts_with("five.example.com", "widgets", "other.five.example.com")
    assert not catalog.conflicts_with("five.example.com", "widgets",
                                      "widgets.five.example.com")

    catalog.set_crd("widgets.five.example.com", [])
    assert catalog.versions("five.example.com") == []
    assert "five.example.com" not in catalog.groups()
    assert catalog.by_storage_resource("five.example.com/widgets") is None
    assert not catalog.conflicts_with("five.example.com", "widgets", "other.five.example.com")
