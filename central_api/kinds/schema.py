"""Turn a pydantic model into a Kubernetes structural schema.

pydantic emits JSON Schema 2020-12 with ``$defs``/``$ref``, ``anyOf`` for optionals and
``const``/titles; Kubernetes wants an OpenAPI v3 *structural* schema: every node typed, no
references, ``nullable`` instead of a null branch. Declaring kinds in pydantic keeps the Python
types that controllers use and the served schema one and the same thing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

DROPPED_KEYS = {"title", "$defs", "discriminator"}


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(mode="validation", by_alias=True)
    defs = raw.get("$defs", {})
    return _convert(raw, defs)


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = _collapse_optional(node)
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED_KEYS or (key == "additionalProperties" and value is False):
            continue  # structural schemas prune unknown fields instead of forbidding them
        if key in ("properties", "patternProperties"):
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _convert(value, defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" \
            not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "integer" and "format" not in out:
        out["format"] = "int64"
    return out


def _collapse_optional(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [T, {type: null}]`` becomes ``T`` with ``nullable: true``."""
    branches = node.get("anyOf")
    if not branches:
        return node
    non_null = [b for b in branches if b.get("type") != "null"]
    if len(non_null) != 1:
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    merged = {**non_null[0], **rest}
    if len(non_null) < len(branches):
        merged["nullable"] = True
    if merged.get("default", 0) is None:
        del merged["default"]
    return merged
