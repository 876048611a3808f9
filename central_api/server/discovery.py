"""Discovery documents: what kubectl reads to map kinds and short names onto REST paths.

Both the legacy documents (``/api``, ``/apis``, ``/apis/<g>/<v>``) and the aggregated
``apidiscovery.k8s.io`` form (one request for everything; v2 and the v2beta1 that kubectl 1.27
asks for) are computed from the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..kinds.catalog import Catalog
from ..kinds.kind import ResourceType


@dataclass(frozen=True)
class VirtualResource:
    """A create-only review resource answered by a handler, never stored."""

    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str

    def entry(self) -> dict[str, Any]:
        return {"name": self.plural, "singularName": self.kind.lower(), "namespaced": False,
                "kind": self.kind, "verbs": ["create"]}


VIRTUAL_RESOURCES = (
    VirtualResource("authentication.k8s.io", ("v1", "v1beta1", "v1alpha1"),
                    "selfsubjectreviews", "SelfSubjectReview"),
    VirtualResource("authorization.k8s.io", ("v1",), "selfsubjectaccessreviews",
                    "SelfSubjectAccessReview"),
    VirtualResource("authorization.k8s.io", ("v1",), "selfsubjectrulesreviews",
                    "SelfSubjectRulesReview"),
)


def virtual(group: str, version: str, plural: str = "") -> list[VirtualResource]:
    return [v for v in VIRTUAL_RESOURCES if v.group == group and version in v.versions
            and plural in ("", v.plural)]


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
    for sub, (kind, verbs) in rt.subresources().items():
        out.append({"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced":
                    rt.namespaced, "kind": kind, "verbs": list(verbs)})
    return out


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def resource_list(catalog: Catalog, group: str, version: str) -> dict[str, Any] | None:
    gv = f"{group}/{version}" if group else version
    entries = [e for rt in catalog.in_version(group, version) for e in _resource_entries(rt)]
    entries += [v.entry() for v in virtual(group, version)]
    if not entries:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": entries}


def _group_versions(catalog: Catalog, group: str) -> list[str]:
    versions = catalog.versions(group)
    for v in VIRTUAL_RESOURCES:
        if v.group == group:
            versions += [ver for ver in v.versions if ver not in versions]
    return versions


def api_group(catalog: Catalog, group: str) -> dict[str, Any] | None:
    versions = _group_versions(catalog, group)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
            "preferredVersion": entries[0]}


def serves(catalog: Catalog, group: str, version: str = "") -> bool:
    """Whether ``group`` (in ``version``, when given) is served."""
    versions = _group_versions(catalog, group)
    return version in versions if version else bool(versions)


def served_group_versions(catalog: Catalog) -> list[tuple[str, str]]:
    """Every (group, version) served, core ("") first: stored kinds and review resources."""
    return [(g, v) for g in ["", *_named_groups(catalog)] for v in _group_versions(catalog, g)]


def _named_groups(catalog: Catalog) -> list[str]:
    extra = [v.group for v in VIRTUAL_RESOURCES if v.group not in catalog.groups()]
    return [g for g in catalog.groups() if g] + list(dict.fromkeys(extra))


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
            resources = [_aggregated_resource(rt) for rt in catalog.in_version(group, v)]
            resources += [_aggregated_resource_from(vr.entry(), group, v)
                          for vr in virtual(group, v)]
            versions.append({"version": v, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": group, "creationTimestamp": None},
                      "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry = _aggregated_resource_from(_resource_entries(rt)[0], rt.group, rt.version)
    subresources = rt.subresources()
    if subresources:
        entry["subresources"] = [
            {"subresource": sub, "responseKind": {"group": rt.group, "version": rt.version,
                                                   "kind": kind}, "verbs": list(verbs)}
            for sub, (kind, verbs) in subresources.items()]
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
