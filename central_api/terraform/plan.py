"""Planning a change: what the new state will be, what is unknown, what forces a new object.

Terraform hands the provider its *proposed* new state (the configuration, with prior values
for computed attributes the configuration leaves null). The plan then:

- on create, marks what the server fills unknown: computed attributes that are null
  (``id``, ``status``, server-side defaults, uid, resourceVersion);
- on update, keeps the proposal when nothing the server holds changes (a plan with no diff),
  and otherwise marks what the server will write anew unknown (``status``, resourceVersion,
  generation): a known planned value the server then changes would be an inconsistent result;
- lists the attribute paths whose change requires replacement: ``metadata.name`` and
  ``metadata.namespace``, and every attribute the kind's schema marks immutable
  (``x-kubernetes-validations: self == oldSelf``), such as an Image's source.
"""

from __future__ import annotations

import re
from typing import Any

from tf.types import Unknown

from .schema import Node
from .values import empty, unknown_where_computed

LOCAL = ("timeouts", "wait_for_ready")
"""Top-level attributes only the provider reads; changing them changes nothing on the server."""
Path = list[str | tuple[str | int]]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def plan(root: Node, prior: dict[str, Any] | None, proposed: dict[str, Any] | None
         ) -> tuple[dict[str, Any] | None, list[Path]]:
    """The planned state and the paths that require replacement."""
    if proposed is None:
        return None, []
    if prior is None:
        planned = unknown_where_computed(root, proposed)
        planned["id"] = planned_id(root, planned.get("metadata"))
        return planned, []
    planned = dict(proposed)
    if server_side(root, prior) != server_side(root, proposed):
        for name, node in root.attributes.items():
            if (node.computed and not node.optional) or name == "metadata":
                planned[name] = renewed(name, proposed.get(name))
    return planned, replacements(root, prior, proposed, [])


def planned_id(root: Node, metadata: Any) -> Any:
    """``namespace/name`` (or ``name``) when both are known at plan time."""
    if not isinstance(metadata, dict):
        return Unknown
    parts = [metadata.get("name")]
    if "namespace" in root.child("metadata").attributes:
        parts.insert(0, metadata.get("namespace"))
    names = [p for p in parts if isinstance(p, str)]
    return "/".join(names) if len(names) == len(parts) else Unknown


def server_side(root: Node, state: dict[str, Any]) -> dict[str, Any]:
    """What the configuration decides on the server: no computed-only or local attribute,
    and empty values (null, [], {}) as one."""
    return {name: _desired(node, state.get(name)) for name, node in root.attributes.items()
            if name not in LOCAL and not (node.computed and not node.optional)}


def _desired(node: Node, value: Any) -> Any:
    if value is Unknown:
        return value
    if empty(value):
        return None
    if node.type == "object" and isinstance(value, dict):
        return {n: _desired(c, value.get(n)) for n, c in node.attributes.items()
                if not (c.computed and not c.optional)}
    element = node.element
    if element is not None and node.type == "list" and isinstance(value, list):
        return [_desired(element, v) for v in value]
    if element is not None and node.type == "map" and isinstance(value, dict):
        return {k: _desired(element, v) for k, v in value.items()}
    return value


def renewed(name: str, value: Any) -> Any:
    """A computed value after an update: status wholly unknown, and in metadata what the
    server bumps (resourceVersion, generation); uid and creationTimestamp stay, and so does
    ``id`` (namespace/name: a change of either replaces the object)."""
    if name == "id":
        return value
    if name != "metadata" or not isinstance(value, dict):
        return Unknown
    return {**value, "resource_version": Unknown, "generation": Unknown}


def replacements(node: Node, prior: Any, proposed: Any, path: Path) -> list[Path]:
    """Paths of immutable attributes whose value changes."""
    found: list[Path] = []
    if node.type == "object":
        old = prior if isinstance(prior, dict) else {}
        new = proposed if isinstance(proposed, dict) else {}
        for name, child in node.attributes.items():
            here: Path = [*path, name]
            if child.replace and _differs(old.get(name), new.get(name)):
                found.append(here)
            elif child.attributes or child.element is not None:
                found += replacements(child, old.get(name), new.get(name), here)
        return found
    element = node.element
    if element is not None and element.type == "object" and isinstance(proposed, list) \
            and isinstance(prior, list):
        for index, (old_item, new_item) in enumerate(zip(prior, proposed, strict=False)):
            found += replacements(element, old_item, new_item, [*path, (index,)])
    return found


def _differs(old: Any, new: Any) -> bool:
    if new is Unknown:
        return True
    return not (old == new or (empty(old) and empty(new)))


def parse_duration(text: str) -> float:
    """Go's duration syntax as Terraform users write it: ``90s``, ``10m``, ``1h30m``."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"{text!r} is not a duration such as 30s, 10m or 1h30m")
    return sum(float(n) * _UNIT[u] for n, u in parts)
