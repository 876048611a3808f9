"""``meta.k8s.io/v1 Table`` responses: the server decides what ``kubectl get`` prints.

Cells come from each kind's printer columns; ``date`` columns are rendered as an age ("5m"),
exactly as kube-apiserver does for CustomResourceDefinitions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..kinds.kind import ResourceType
from ..machinery.jsonpath import column_value


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration: 45s, 5m30s, 3h, 2d4h, 400d, 3y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"  # kube tolerates one second of clock skew as "now"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if days < 365 * 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _age(value: Any, now: datetime) -> str:
    if not isinstance(value, str):
        return "<unknown>"
    try:
        then = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration((now - then).total_seconds())


def column_definitions(rt: ResourceType) -> list[dict[str, Any]]:
    defs = []
    for col in rt.display_columns:
        fmt = "name" if col.name == "Name" else col.format
        defs.append({"name": col.name, "type": col.type, "format": fmt,
                     "description": col.description, "priority": col.priority})
    return defs


def row(rt: ResourceType, obj: dict[str, Any], include: str, now: datetime) -> dict[str, Any]:
    cells = []
    for col in rt.display_columns:
        if col.compute is not None:
            cells.append(col.compute(obj))
        elif col.type == "date":
            cells.append(_age(column_value(col.json_path, obj, col.type), now))
        else:
            cells.append(column_value(col.json_path, obj, col.type))
    out: dict[str, Any] = {"cells": cells}
    if include == "Object":
        out["object"] = obj
    elif include != "None":
        out["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                         "metadata": obj.get("metadata", {})}
    return out


def table(rt: ResourceType, objects: list[dict[str, Any]], list_meta: dict[str, Any],
          include: str = "PartialObjectMetadata") -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": column_definitions(rt),
            "rows": [row(rt, obj, include, now) for obj in objects]}
