"""Discovery documents: what kubectl reads to map kinds and short names onto REST paths.

Both the legacy documents (``/api``, ``/apis``, ``/apis/<g>/<v>``) and the aggregated
``apidiscovery.k8s.io`` form (one request for everything; v2 and the v2beta1 that kubectl 1.27
asks for) are computed from the catalog.
"""

from __future__ import annotations

from typing import Any

from ..kinds.catalog import Catalog
from ..kinds.kind import ResourceType

# Served outside the catalog: not stored, answered by a handler.
SELF_SUBJECT_REVIEW_VERSIONS = ("v1", "v1beta1", "v1alpha1")
AUTHENTICATION_GROUP = "authentication.k8s.io"


def _resource_entries(rt: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
        "kind": rt.kind, "verbs": list(rt.verbs),
    }
    if rt.short_names:
        main["shortNames"] = rt.short_names
    if rt.categories:
        main["categories"] = rt.categories
    out = [main]
    if rt.status_subresource:
        out.append({"name": f"{rt.plural}/status", "singularName": "", "namespaced":
                    rt.namespaced, "kind": rt.kind, "verbs": ["get", "patch", "update"]})
    return out


def _review_entry() -> dict[str, Any]:
    return {"name": "selfsubjectreviews", "singularName": "selfsubjectreview",
            "namespaced": False, "kind": "SelfSubjectReview", "verbs": ["create"]}


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def resource_list(catalog: Catalog, group: str, version: str) -> dict[str, Any] | None:
    gv = f"{group}/{version}" if group else version
    if group == AUTHENTICATION_GROUP and version in SELF_SUBJECT_REVIEW_VERSIONS:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": [_review_entry()]}
    types = catalog.in_version(group, version)
    if not types:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": [e for rt in types for e in _resource_entries(rt)]}


def _group_versions(catalog: Catalog, group: str) -> list[str]:
    if group == AUTHENTICATION_GROUP:
        return list(SELF_SUBJECT_REVIEW_VERSIONS)
    return catalog.versions(group)


def api_group(catalog: Catalog, group: str) -> dict[str, Any] | None:
    versions = _group_versions(catalog, group)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
            "preferredVersion": entries[0]}


def _named_groups(catalog: Catalog) -> list[str]:
    return [g for g in catalog.groups() if g] + [AUTHENTICATION_GROUP]


def api_group_list(catalog: Catalog) -> dict[str, Any]:
    groups = [api_group(catalog, g) for g in _named_groups(catalog)]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}


def aggregated(catalog: Catalog, legacy: bool, version: str) -> dict[str, Any]:
    """``APIGroupDiscoveryList`` for ``/api`` (legacy=True) or ``/apis``."""
    groups = [""] if legacy else _named_groups(catalog)
    items = []
    for group in groups:
        versions = []
        for v in _group_versions(catalog, group):
            if group == AUTHENTICATION_GROUP:
                resources = [_aggregated_resource_from(_review_entry(), group, v)]
            else:
                resources = [_aggregated_resource(rt) for rt in catalog.in_version(group, v)]
            versions.append({"version": v, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": group, "creationTimestamp": None},
                      "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry = _aggregated_resource_from(_resource_entries(rt)[0], rt.group, rt.version)
    if rt.status_subresource:
        entry["subresources"] = [{"subresource": "status", "responseKind": {
            "group": rt.group, "version": rt.version, "kind": rt.kind},
            "verbs": ["get", "patch", "update"]}]
    return entry


def _aggregated_resource_from(entry: dict[str, Any], group: str, version: str
                              ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": entry["name"],
        "responseKind": {"group": group, "version": version, "kind": entry["kind"]},
        "scope": "Namespaced" if entry["namespaced"] else "Cluster",
        "singularResource": entry["singularName"],
        "verbs": entry["verbs"],
    }
    for field in ("shortNames", "categories"):
        if field in entry:
            out[field] = entry[field]
    return out
