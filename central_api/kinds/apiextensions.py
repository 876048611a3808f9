"""``apiextensions.k8s.io/v1`` CustomResourceDefinition: operators add kinds at run time.

A CRD is stored like any object; when it is accepted, :func:`resource_types` turns each served
version into a :class:`ResourceType` that the catalog serves exactly like a built-in kind.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..machinery.errors import Cause
from .catalog import Catalog
from .kind import Column, ResourceType, Strategy
from .objectmeta import OBJECT_META_SCHEMA
from .structural import check_structural, compile_cel_rules

LOWER_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
KIND_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
GROUP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
RESERVED_GROUPS = ("k8s.io", "kubernetes.io")

_OPEN = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_NAMES = {
    "type": "object",
    "required": ["plural", "kind"],
    "properties": {
        "plural": {"type": "string"}, "singular": {"type": "string"},
        "kind": {"type": "string"}, "listKind": {"type": "string"},
        "shortNames": _STRINGS, "categories": _STRINGS,
    },
}
_COLUMN = {
    "type": "object", "required": ["name", "type", "jsonPath"],
    "properties": {
        "name": {"type": "string"}, "jsonPath": {"type": "string"},
        "type": {"type": "string",
                 "enum": ["integer", "number", "string", "boolean", "date"]},
        "format": {"type": "string"}, "description": {"type": "string"},
        "priority": {"type": "integer", "format": "int32"},
    },
}
_VERSION = {
    "type": "object", "required": ["name", "served", "storage"],
    "properties": {
        "name": {"type": "string"}, "served": {"type": "boolean"},
        "storage": {"type": "boolean"}, "deprecated": {"type": "boolean"},
        "deprecationWarning": {"type": "string"},
        "schema": {"type": "object", "properties": {"openAPIV3Schema": _OPEN}},
        "subresources": _OPEN,
        "additionalPrinterColumns": {"type": "array", "items": _COLUMN},
        "selectableFields": {"type": "array", "items": _OPEN},
    },
}
CRD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "CustomResourceDefinition represents a resource served by this API.",
    "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "metadata": OBJECT_META_SCHEMA,
        "spec": {
            "type": "object", "required": ["group", "names", "scope", "versions"],
            "properties": {
                "group": {"type": "string"}, "names": _NAMES,
                "scope": {"type": "string", "enum": ["Namespaced", "Cluster"]},
                "versions": {"type": "array", "minItems": 1, "items": _VERSION},
                "conversion": _OPEN,
                "preserveUnknownFields": {"type": "boolean"},
            },
        },
        "status": _OPEN,
    },
}


class CrdStrategy(Strategy):
    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        obj["status"] = accepted_status(obj)

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        new["status"] = accepted_status(new)

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None,
                 catalog: Catalog) -> list[Cause]:
        causes = validate_crd(obj)
        spec = obj.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        if not causes and catalog.conflicts_with(group, plural, obj["metadata"]["name"]):
            causes.append(Cause("spec.names.plural", f'Invalid value: "{plural}": '
                                f"{plural}.{group} is already served by this API",
                                "FieldValueDuplicate"))
        return causes


def accepted_status(crd: dict[str, Any]) -> dict[str, Any]:
    """A valid CRD is established at once: there is no separate controller to wait for."""
    spec = crd.get("spec") or {}
    conditions = [
        {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime":
         crd.get("metadata", {}).get("creationTimestamp")}
        for t, r, m in (("NamesAccepted", "NoConflicts", "no conflicts found"),
                        ("Established", "InitialNamesAccepted", "the initial names have been "
                         "accepted"))]
    return {"conditions": conditions, "acceptedNames": spec.get("names", {}),
            # before validation: a malformed version is refused there, not with a KeyError here
            "storedVersions": [v.get("name", "") for v in spec.get("versions") or []
                               if isinstance(v, dict) and v.get("storage")]}


def validate_crd(crd: dict[str, Any]) -> list[Cause]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group", ""), names.get("plural", "")
    causes: list[Cause] = []
    if not GROUP_NAME.match(group):
        causes.append(Cause("spec.group", f'Invalid value: "{group}": should be a domain with '
                                          "at least one dot"))
    elif any(group == g or group.endswith("." + g) for g in RESERVED_GROUPS):
        causes.append(Cause("spec.group", f'Invalid value: "{group}": is a reserved group',
                            "FieldValueForbidden"))
    for field in ("plural", "singular"):
        if names.get(field) and not LOWER_DNS_LABEL.match(names[field]):
            causes.append(Cause(f"spec.names.{field}", f'Invalid value: "{names[field]}": '
                                "must be a lowercase DNS-1035 label"))
    for field in ("kind", "listKind"):
        if names.get(field) and not KIND_NAME.match(names[field]):
            causes.append(Cause(f"spec.names.{field}", f'Invalid value: "{names[field]}": '
                                "must be a CamelCase name starting with a capital"))
    expected = f"{plural}.{group}"
    if crd.get("metadata", {}).get("name") != expected:
        causes.append(Cause("metadata.name", f'Invalid value: must be spec.names.plural+"."+'
                                             f'spec.group ("{expected}")'))
    versions = spec.get("versions") or []
    if sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(Cause("spec.versions", "Invalid value: must have exactly one version "
                                             "marked as storage version"))
    for i, version in enumerate(versions):
        causes += _validate_version(i, version)
    return causes


def _validate_version(i: int, version: dict[str, Any]) -> list[Cause]:
    path = f"spec.versions[{i}]"
    if not LOWER_DNS_LABEL.match(version.get("name", "")):
        return [Cause(f"{path}.name", "Invalid value: must be a lowercase DNS-1035 label")]
    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    if schema is None:
        return [Cause(f"{path}.schema.openAPIV3Schema", "Required value: schemas are required",
                      "FieldValueRequired")]
    prefix = f"{path}.schema.openAPIV3Schema"
    found = check_structural(schema) + compile_cel_rules(schema)
    return [Cause(f"{prefix}{'.' if c.field else ''}{c.field}", c.message, c.reason)
            for c in found]


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of an accepted CRD."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in spec["versions"]:
        if not version.get("served"):
            continue
        schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
        props = schema.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = copy.deepcopy(OBJECT_META_SCHEMA)
        schema.setdefault("type", "object")
        columns = [Column(c["name"], c["jsonPath"], c.get("type", "string"),
                          c.get("description", ""), c.get("priority", 0), c.get("format", ""))
                   for c in version.get("additionalPrinterColumns") or []]
        subresources = version.get("subresources") or {}
        out.append(ResourceType(
            group=spec["group"], version=version["name"], kind=names["kind"],
            plural=names["plural"], singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec["scope"] == "Namespaced", schema=schema, columns=columns,
            short_names=names.get("shortNames") or [], categories=names.get("categories") or [],
            status_subresource="status" in subresources, list_kind=names.get("listKind", ""),
            description=schema.get("description", ""), builtin=False,
            storage_version=bool(version.get("storage"))))
    return out


CRD = ResourceType(
    group="apiextensions.k8s.io", version="v1", kind="CustomResourceDefinition",
    plural="customresourcedefinitions", singular="customresourcedefinition", namespaced=False,
    schema=CRD_SCHEMA, short_names=["crd", "crds"], categories=["api-extensions"],
    status_subresource=True, strategy=CrdStrategy(),
    columns=[Column("Created At", ".metadata.creationTimestamp", "date")],
    description=CRD_SCHEMA["description"])
