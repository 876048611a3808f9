"""Values between the API (JSON objects) and Terraform (objects keyed by attribute names).

``to_tf`` renders an API value the way the Terraform schema expects it: every attribute of
an object present (null when the API has none), JSON subtrees as canonical JSON strings.
``to_api`` goes back, dropping nulls and unknowns so the server applies its defaults.
``settle`` keeps what Terraform already holds where the server's answer means the same
(``[]`` for null, equal JSON written differently, a write-only value the server does not
return): without it every plan would show changes that are none.
"""

from __future__ import annotations

import json
from typing import Any

from tf.types import Unknown

from .schema import Node


def canonical_json(value: Any) -> str:
    """Terraform's ``jsonencode`` form: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def to_tf(node: Node, value: Any) -> Any:
    if value is None:
        return None
    if node.type == "json":
        return canonical_json(value)
    if node.type == "string":
        return value if isinstance(value, str) else canonical_json(value)
    if node.type == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if node.type == "bool":
        return value if isinstance(value, bool) else None
    if node.type == "object":
        source = value if isinstance(value, dict) else {}
        return {name: to_tf(child, source.get(child.api_name))
                for name, child in node.attributes.items()}
    element = node.element
    if element is None:
        return None
    if node.type == "list":
        return [to_tf(element, v) for v in value] if isinstance(value, list) else None
    return {str(k): to_tf(element, v) for k, v in value.items()} \
        if isinstance(value, dict) else None


def to_api(node: Node, value: Any) -> Any:
    """The API form; None for null or unknown (the member is then left out)."""
    if value is None or value is Unknown:
        return None
    if node.type == "json":
        return json.loads(value) if isinstance(value, str) else value
    if node.type == "object":
        out = {}
        for name, child in node.attributes.items():
            converted = to_api(child, value.get(name))
            if converted is not None:
                out[child.api_name] = converted
        return out
    element = node.element
    if node.type == "list" and element is not None:
        return [v for v in (to_api(element, e) for e in value) if v is not None]
    if node.type == "map" and element is not None:
        return {k: v for k, v in ((k, to_api(element, e)) for k, e in value.items())
                if v is not None}
    return value


def empty(value: Any) -> bool:
    """Null, "", [] or {} — or an object whose attributes are all empty."""
    if value is None or value == "" or value == [] or value == {}:
        return True
    return isinstance(value, dict) and all(empty(v) for v in value.values())


def settle(node: Node, new: Any, held: Any) -> Any:
    """``new`` (from the server), but ``held`` (prior state or plan) where both mean the same."""
    if held is Unknown:
        return new
    if node.write_only:
        return held
    if empty(new) and empty(held):
        return held
    if new is None or held is None:
        return new
    if node.type == "json":
        return held if _same_json(new, held) else new
    if node.type == "object" and isinstance(new, dict) and isinstance(held, dict):
        return {name: settle(child, new.get(name), held.get(name))
                for name, child in node.attributes.items()}
    element = node.element
    if node.type == "list" and element is not None and isinstance(new, list) \
            and isinstance(held, list) and len(new) == len(held):
        return [settle(element, n, h) for n, h in zip(new, held, strict=True)]
    if node.type == "map" and element is not None and isinstance(new, dict) \
            and isinstance(held, dict) and new.keys() == held.keys():
        return {k: settle(element, new[k], held[k]) for k in new}
    return held if new == held else new


def _same_json(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b))
    except (TypeError, ValueError):
        return False


def unknown_where_computed(node: Node, value: Any) -> Any:
    """A create plan: what the server will fill (computed, null in the config) is unknown."""
    if value is Unknown:
        return value
    if value is None:
        return Unknown if node.computed else None
    if node.type == "object" and isinstance(value, dict):
        return {n: unknown_where_computed(c, value.get(n)) for n, c in node.attributes.items()}
    element = node.element
    if element is not None and element.type == "object":
        if node.type == "list" and isinstance(value, list):
            return [unknown_where_computed(element, v) for v in value]
        if node.type == "map" and isinstance(value, dict):
            return {k: unknown_where_computed(element, v) for k, v in value.items()}
    return value


def api_path(node: Node, field_path: str) -> list[str | tuple[str | int]]:
    """The Terraform attribute path of an API field path (``spec.networks[0].name`` ->
    ``spec``, ``networks``, [0], ``name``), as far as the schema follows it."""
    steps: list[str | tuple[str | int]] = []
    current: Node | None = node
    for token in _tokens(field_path):
        if current is None:
            break
        if isinstance(token, int):
            steps.append((token,))
            current = current.element
            continue
        if current.type == "map":
            steps.append((token,))
            current = current.element
            continue
        match = next(((n, c) for n, c in current.attributes.items() if c.api_name == token),
                     None)
        if match is None:
            break
        steps.append(match[0])
        current = match[1]
    return steps


def _tokens(field_path: str) -> list[str | int]:
    tokens: list[str | int] = []
    for part in field_path.replace("]", "").split("."):
        name, *indexes = part.split("[")
        if name:
            tokens.append(name)
        for index in indexes:
            tokens.append(int(index) if index.isdigit() else index.strip("'\""))
    return tokens
