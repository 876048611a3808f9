"""Export built-in kinds as CustomResourceDefinitions for a real Kubernetes cluster.

The same declaration the server validates with becomes the CRD's schema, printer columns and
subresources, so a kind behaves alike on ``scs serve`` and on Kubernetes.
"""

from __future__ import annotations

import copy
from typing import Any

from .kind import AGE, ResourceType

NATIVE_GROUPS = ("", "apiextensions.k8s.io", "rbac.authorization.k8s.io",
                 "coordination.k8s.io")


def exportable(types: list[ResourceType]) -> list[ResourceType]:
    """Our own API groups; Kubernetes already has the core and apiextensions kinds."""
    return [rt for rt in types if rt.group not in NATIVE_GROUPS]


def to_crd(rt: ResourceType) -> dict[str, Any]:
    schema = copy.deepcopy(rt.schema)
    schema["properties"]["metadata"] = {"type": "object"}  # CRDs may not restate ObjectMeta
    version: dict[str, Any] = {
        "name": rt.version, "served": True, "storage": True,
        "schema": {"openAPIV3Schema": schema},
    }
    if rt.status_subresource:
        version["subresources"] = {"status": {}}
    columns = [c.to_crd() for c in rt.columns if c.compute is None]
    if columns:
        version["additionalPrinterColumns"] = columns + [AGE.to_crd()]
    names: dict[str, Any] = {"plural": rt.plural, "singular": rt.singular, "kind": rt.kind,
                             "listKind": rt.list_kind}
    if rt.short_names:
        names["shortNames"] = rt.short_names
    if rt.categories:
        names["categories"] = rt.categories
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{rt.plural}.{rt.group}"},
        "spec": {"group": rt.group, "names": names,
                 "scope": "Namespaced" if rt.namespaced else "Cluster",
                 "versions": [version]},
    }
