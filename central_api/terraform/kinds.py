"""The Terraform types of the built-in kinds, generated from their declarations at run time.

Every kind of :func:`central_api.kinds.builtin_kinds` that can be read (verb ``get``) is a
data source; one that can also be created, updated and deleted is a resource. A kind added to
the catalog later appears here without provider code. Each action subresource that answers
a credential (a Cluster's ``kubeconfig``/``adminkubeconfig``, a ServiceAccount's ``token``)
is a data source too: ``scs_cluster_adminkubeconfig``, ``scs_service_account_token``.

Type names: ``scs_`` + the kind in snake case (``scs_tenant``, ``scs_role_binding``). When two
served groups declare kinds of the same name, *each* of them is named with its group's first
DNS label instead (``scs_iaas_network`` and ``scs_example_network``; the core group is
``core``), so no name depends on which kind came first. Of several versions of one kind the
storage version is used.

Top-level attributes of a resource: ``id`` (``namespace/name`` or ``name``), ``metadata``,
every property of the kind besides apiVersion/kind/metadata/status (mostly ``spec``; a
Secret's ``data``/``string_data``/``type``, a Role's ``rules``), ``status`` (computed),
``timeouts`` and ``wait_for_ready``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..kinds import builtin_kinds
from ..kinds.kind import ResourceType
from .schema import Node, as_input, attribute, computed_only, object_node, tf_name, value_node
from .types import TfAction, TfKind, Where

PREFIX = "scs_"
OWN_ATTRIBUTES = ("id", "metadata", "status", "timeouts", "wait_for_ready")
"""Top-level names the provider defines itself; a kind's property of one of these names
is left out (none of the built-ins has one)."""
OVERRIDES: dict[tuple[str, str], dict[str, dict[str, bool]]] = {  # computed/sensitive/write_only
    ("", "Secret"): {"data": {"computed": True, "sensitive": True},
                     "stringData": {"write_only": True, "sensitive": True}},
}
"""What a schema cannot say: the server folds a Secret's stringData into data and never
returns stringData."""
NO_READY = {("status.scs.community", "Component")}
"""Kinds with status conditions whose controller sets no Ready (a Component's status is its
incidents'); others without one are noticed at run time (resource.NO_READY_GRACE)."""
TOKEN_REQUEST: dict[str, Any] = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "audiences": {"type": "array", "items": {"type": "string"},
                      "description": "Audiences of the token (default: the server's)."},
        "expirationSeconds": {"type": "integer", "description": "Requested lifetime, at "
                                                                "least 600."}}},
    "status": {"type": "object", "properties": {
        "token": {"type": "string", "description": "The ServiceAccount token."},
        "expirationTimestamp": {"type": "string", "description": "When it expires."}}}}}
"""The TokenRequest a ServiceAccount's ``token`` subresource takes (declared by hand in the
server's OpenAPI too)."""
_STRINGS = Node("map", element=Node("string"))


def writable(rt: ResourceType) -> bool:
    return all(verb in rt.verbs for verb in ("create", "get", "update", "delete"))


def type_names(types: Iterable[ResourceType]) -> dict[tuple[str, str], str]:
    """(group, kind) -> Terraform type name, by the clash rule of the module docstring."""
    kinds = sorted({(rt.group, rt.kind) for rt in types})
    plain: dict[str, list[tuple[str, str]]] = {}
    for group, kind in kinds:
        plain.setdefault(PREFIX + tf_name(kind), []).append((group, kind))
    names: dict[tuple[str, str], str] = {}
    for name, owners in plain.items():
        for group, kind in owners:
            label = (group.split(".")[0] or "core") if len(owners) > 1 else ""
            names[(group, kind)] = f"{PREFIX}{tf_name(label)}_{tf_name(kind)}" if label else name
    return names


def served_kinds(types: Iterable[ResourceType] | None = None) -> list[TfKind]:
    """Every readable kind (storage version of each), with its schemas."""
    chosen: dict[tuple[str, str], ResourceType] = {}
    for rt in types if types is not None else builtin_kinds():
        if "get" in rt.verbs and ((rt.group, rt.kind) not in chosen or rt.storage_version):
            chosen[(rt.group, rt.kind)] = rt
    names = type_names(chosen.values())
    return [TfKind(names[key], where(rt),
                   resource_schema(rt) if writable(rt) else None,
                   data_schema(rt), reports_ready(rt)) for key, rt in sorted(chosen.items())]


def actions(types: Iterable[ResourceType] | None = None) -> list[TfAction]:
    found = []
    all_types = list(types if types is not None else builtin_kinds())
    names = type_names(all_types)
    for rt in all_types:
        for sub, (request_kind, verbs) in sorted(rt.action_subresources.items()):
            declared = rt.action_kinds.get(sub)
            if "create" not in verbs:
                continue
            schema = declared.schema if declared is not None else TOKEN_REQUEST
            api_version = declared.api_version if declared is not None \
                else "authentication.k8s.io/v1"
            found.append(TfAction(f"{names[(rt.group, rt.kind)]}_{tf_name(sub)}",
                                  where(rt), sub, request_kind,
                                  api_version, action_schema(rt, schema)))
    return found


def reports_ready(rt: ResourceType) -> bool:
    """Its status has conditions and its controller sets Ready (see NO_READY)."""
    if (rt.group, rt.kind) in NO_READY:
        return False
    status = rt.schema.get("properties", {}).get("status", {})
    return "conditions" in (status.get("properties") or {})


def metadata_node(rt: ResourceType, *, reading: bool) -> Node:
    """name (and namespace) identify the object; labels/annotations are the user's."""
    attributes = {"name": Node("string", "name", "Name of the object.", required=True,
                               replace=not reading)}
    if rt.namespaced:
        attributes["namespace"] = Node("string", "namespace", "Namespace of the object.",
                                       required=True, replace=not reading)
    for key, what in (("labels", "Key/value pairs for selection."),
                      ("annotations", "Non-identifying key/value metadata.")):
        attributes[key] = replace(_STRINGS, api_name=key, description=what, optional=True)
    for key, api, kind in (("uid", "uid", "string"),
                           ("resource_version", "resourceVersion", "string"),
                           ("generation", "generation", "number"),
                           ("creation_timestamp", "creationTimestamp", "string")):
        attributes[key] = Node(kind, api, f"Set by the server ({api}).", computed=True)
    if reading:
        attributes = {k: (a if k in ("name", "namespace") else computed_only(a))
                      for k, a in attributes.items()}
    return object_node(attributes, api_name="metadata", description="Standard object "
                       "metadata; name and namespace cannot change (a new object replaces it).",
                       required=True)


def _properties(rt: ResourceType) -> dict[str, Node]:
    schema = rt.schema
    required = set(schema.get("required") or [])
    overrides = OVERRIDES.get((rt.group, rt.kind), {})
    out: dict[str, Node] = {}
    for api_name, sub in schema.get("properties", {}).items():
        name = tf_name(api_name)
        if api_name in ("apiVersion", "kind", "metadata", "status") or name in OWN_ATTRIBUTES:
            continue
        node = attribute(api_name, sub, api_name in required)
        extra = overrides.get(api_name, {})
        if extra.get("computed"):
            node = replace(node, required=False, optional=True, computed=True)
        out[name] = replace(node, sensitive=node.sensitive or extra.get("sensitive", False),
                            write_only=extra.get("write_only", False))
    return out


def _status(rt: ResourceType) -> dict[str, Node]:
    status = rt.schema.get("properties", {}).get("status")
    if not status:
        return {}
    return {"status": replace(computed_only(value_node(status)), api_name="status",
                              description="Observed state, written by the server.")}


def _id(rt: ResourceType) -> Node:
    shape = "namespace/name" if rt.namespaced else "name"
    return Node("string", "", f"{shape}: also the ID `terraform import` takes.", computed=True)


def timeouts_node() -> Node:
    return object_node({verb: Node("string", "", f"How long {verb} may take, e.g. 30s, 10m, "
                                                 f"1h.", optional=True)
                        for verb in ("create", "update", "delete")},
                       description="How long to wait for Ready (create, update) and for the "
                                   "object to be gone (delete).", optional=True)


def resource_schema(rt: ResourceType) -> Node:
    attributes = {"id": _id(rt), "metadata": metadata_node(rt, reading=False),
                  **_properties(rt), **_status(rt), "timeouts": timeouts_node()}
    attributes["wait_for_ready"] = Node(
        "bool", "", "Wait for the Ready condition after create and update (default true; "
                    "kinds without one never wait).", optional=True)
    return object_node(attributes, description=rt.description)


def data_schema(rt: ResourceType) -> Node:
    attributes = {"id": _id(rt), "metadata": metadata_node(rt, reading=True),
                  **{n: computed_only(a) for n, a in _properties(rt).items()}, **_status(rt)}
    return object_node(attributes, description=rt.description)


def action_schema(rt: ResourceType, schema: dict[str, Any]) -> Node:
    properties = schema.get("properties", {})
    attributes = {"id": _id(rt), "metadata": metadata_node(rt, reading=True)}
    spec = value_node(properties.get("spec") or {})
    attributes["spec"] = replace(as_input(spec), api_name="spec", optional=True,
                                 description="The request (optional).")
    status = value_node(properties.get("status") or {})
    attributes["status"] = replace(computed_only(status), api_name="status",
                                   description="The answer (credentials are sensitive).")
    return object_node(attributes, description=f"{rt.kind}'s {schema.get('description', '')}")


def where(rt: ResourceType) -> Where:
    return Where(rt.group, rt.version, rt.plural, rt.namespaced, rt.kind)
