"""A kind's OpenAPI v3 structural schema as a Terraform schema (protocol 6).

Each schema node becomes a :class:`Node`: primitives map to ``string``/``number``/``bool``,
objects with properties to *nested attributes* (``spec = { flavor = "x" }``, nesting SINGLE),
arrays of objects to nested attributes with nesting LIST, maps of objects to nesting MAP,
arrays and maps of primitives to ``list(T)``/``map(T)``. What has no fixed shape — a
``x-kubernetes-preserve-unknown-fields`` subtree, ``x-kubernetes-int-or-string``, a free-form
object, a schema nested deeper than :data:`MAX_DEPTH` (recursive ones such as a CRD's
JSONSchemaProps) — is a JSON string the user writes with ``jsonencode(...)``.

Flags follow the schema: a property in ``required`` without a default is required, a property
with a default is optional *and* computed (the server fills it; the plan takes it from prior
state or leaves it unknown), a property carrying the rule ``self == oldSelf`` forces
replacement, and names that say password/token/secret/kubeconfig (or ``format: password``)
are sensitive. Descriptions are copied; enums are appended to them.

The tf framework (PyPI ``tf``) has no nested attributes, so nodes render their protobuf
``Schema.Attribute`` themselves (:meth:`Node.to_pb`) with the framework's generated classes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from tf.gen import tfplugin_pb2 as pb

MAX_DEPTH = 12
"""Deeper subtrees become JSON: the built-ins stay far below; recursive schemas stop here."""
PRIMITIVES = ("string", "number", "bool")
SENSITIVE_WORDS = frozenset({"password", "passwd", "token", "secret", "kubeconfig",
                             "credential", "credentials", "privatekey"})
_UNITS = (("MiB", "Mib"), ("GiB", "Gib"), ("TiB", "Tib"), ("KiB", "Kib"))
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+\d*|[A-Z]+\d*|\d+")
_PLURAL_ACRONYM = re.compile(r"([A-Z]{2,})s(?=[A-Z\d]|$)")


@dataclass
class Node:
    """One attribute (or list/map element) of a Terraform schema, with its API name."""

    type: str
    """string, number, bool, json, list, map or object."""
    api_name: str = ""
    description: str = ""
    required: bool = False
    optional: bool = False
    computed: bool = False
    sensitive: bool = False
    replace: bool = False
    """Changing it replaces the object (the schema marks it immutable)."""
    write_only: bool = False
    """The server takes it but never returns it (a Secret's stringData): kept from state."""
    element: Node | None = None
    attributes: dict[str, Node] = field(default_factory=dict)
    """Terraform name -> node, for objects."""

    @property
    def nested(self) -> bool:
        """Rendered as a protocol-6 nested attribute (an object somewhere inside)."""
        if self.type == "object":
            return True
        return self.type in ("list", "map") and self.element is not None \
            and self.element.type == "object"

    def child(self, name: str) -> Node:
        return self.attributes[name]

    def cty(self) -> Any:
        """The cty type (JSON form) of a non-nested value."""
        if self.type in PRIMITIVES:
            return self.type
        if self.type == "json":
            return "string"
        if self.element is None:
            raise ValueError(f"{self.type} without element type")
        if self.type in ("list", "map"):
            return [self.type, self.element.cty()]
        return ["object", {n: a.cty() for n, a in self.attributes.items()}]

    def to_pb(self, name: str) -> pb.Schema.Attribute:
        flags = {"required": self.required, "optional": self.optional,
                 "computed": self.computed, "sensitive": self.sensitive}
        common = {"name": name, "description": self.description,
                  "description_kind": pb.StringKind.PLAIN,
                  **{k: v for k, v in flags.items() if v}}
        if not self.nested:
            return pb.Schema.Attribute(type=json.dumps(self.cty()).encode(), **common)
        target = self if self.type == "object" else self.element
        if target is None:  # pragma: no cover - nested implies an element
            raise ValueError("nested attribute without object")
        nesting = {"object": pb.Schema.Object.SINGLE, "list": pb.Schema.Object.LIST,
                   "map": pb.Schema.Object.MAP}[self.type]
        return pb.Schema.Attribute(nested_type=pb.Schema.Object(
            attributes=[a.to_pb(n) for n, a in target.attributes.items()],
            nesting=nesting), **common)


def object_node(attributes: dict[str, Node], **flags: Any) -> Node:
    return Node("object", attributes=attributes, **flags)


def tf_name(api_name: str) -> str:
    """``displayName`` -> ``display_name``, ``floatingIPs`` -> ``floating_ips``,
    ``ramMiB`` -> ``ram_mib``: Terraform names are lower-case with underscores."""
    name = api_name
    for unit, word in _UNITS:
        name = name.replace(unit, word)
    name = _PLURAL_ACRONYM.sub(lambda m: m.group(1).capitalize() + "s", name)
    words = _WORD.findall(name) or [name]
    snake = "_".join(w.lower() for w in words)
    snake = re.sub(r"[^a-z0-9_]", "_", snake)
    return snake if not snake[:1].isdigit() else "_" + snake


def is_sensitive(api_name: str, schema: dict[str, Any]) -> bool:
    """A credential by its name's last word or the whole name (``clientSecret``,
    ``kubeconfig``, ``token``), or ``format: password``; ``secretRef`` is a reference, and
    a boolean or number (``automountServiceAccountToken``) is no credential."""
    if schema.get("type") in ("boolean", "integer", "number"):
        return False
    words = [w.lower() for w in _WORD.findall(api_name)]
    joined = "".join(words)
    return schema.get("format") == "password" or joined in SENSITIVE_WORDS or \
        (bool(words) and words[-1] in SENSITIVE_WORDS)


def is_immutable(schema: dict[str, Any]) -> bool:
    rules = schema.get("x-kubernetes-validations") or []
    return any(re.sub(r"\s", "", str(r.get("rule", ""))) == "self==oldSelf" for r in rules)


def describe(schema: dict[str, Any]) -> str:
    text = str(schema.get("description") or "")
    if schema.get("enum"):
        choices = ", ".join(json.dumps(v) for v in schema["enum"])
        text = f"{text} One of: {choices}.".strip()
    return text


def value_node(schema: dict[str, Any], depth: int = 0) -> Node:
    """The node of a schema's value (no flags yet: the parent object sets them)."""
    desc = describe(schema)
    if depth > MAX_DEPTH or schema.get("x-kubernetes-int-or-string") \
            or schema.get("x-kubernetes-preserve-unknown-fields"):
        return Node("json", description=_json_note(desc))
    kind = schema.get("type")
    simple = {"string": "string", "integer": "number", "number": "number",
              "boolean": "bool"}.get(str(kind))
    if simple:
        return Node(simple, description=desc)
    if kind == "array":
        return _collection("list", schema.get("items"), desc, depth)
    properties = schema.get("properties")
    if properties:
        return _object(schema, desc, depth)
    if isinstance(schema.get("additionalProperties"), dict):
        return _collection("map", schema["additionalProperties"], desc, depth)
    return Node("json", description=_json_note(desc))


def _json_note(desc: str) -> str:
    return f"{desc} (JSON: write it with jsonencode(...))".strip()


def _collection(kind: str, items: Any, desc: str, depth: int) -> Node:
    if not isinstance(items, dict):
        return Node("json", description=_json_note(desc))
    element = value_node(items, depth + 1)
    if element.type == "json" or (element.type in ("list", "map") and element.nested):
        return Node("json", description=_json_note(desc))
    return Node(kind, description=desc, element=element)


def _object(schema: dict[str, Any], desc: str, depth: int) -> Node:
    attributes: dict[str, Node] = {}
    required = set(schema.get("required") or [])
    for api_name, sub in schema["properties"].items():
        name = tf_name(api_name)
        if name in attributes:  # two API names, one Terraform name: keep the shape as JSON
            return Node("json", description=_json_note(desc))
        attributes[name] = attribute(api_name, sub, api_name in required, depth + 1)
    return object_node(attributes, description=desc)


def attribute(api_name: str, schema: dict[str, Any], required: bool, depth: int = 0) -> Node:
    """A property as an attribute of its object, with the flags its schema gives it."""
    node = value_node(schema, depth)
    defaulted = schema.get("default") is not None
    return replace(node, api_name=api_name, required=required and not defaulted,
                   optional=not (required and not defaulted), computed=defaulted,
                   sensitive=is_sensitive(api_name, schema), replace=is_immutable(schema))


def computed_only(node: Node) -> Node:
    """The same shape, every attribute computed (status, and everything a data source reads)."""
    attributes = {n: computed_only(a) for n, a in node.attributes.items()}
    element = computed_only(node.element) if node.element is not None else None
    return replace(node, required=False, optional=False, computed=True, replace=False,
                   attributes=attributes, element=element)


def as_input(node: Node) -> Node:
    """Every attribute optional (the request spec of an action data source)."""
    attributes = {n: as_input(a) for n, a in node.attributes.items()}
    return replace(node, required=False, optional=True, computed=False, attributes=attributes)
