"""Status conditions the Kubernetes way: one entry per type, transitions timestamped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(obj: dict[str, Any], type_: str, status: bool | str, reason: str,
                  message: str = "") -> None:
    """Set condition ``type_`` in ``obj.status``; ``lastTransitionTime`` only moves when the
    status value changes, so ``kubectl wait`` and humans see when it really flipped."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    conditions: list[dict[str, Any]] = obj.setdefault("status", {}).setdefault("conditions", [])
    generation = obj.get("metadata", {}).get("generation")
    for condition in conditions:
        if condition.get("type") == type_:
            if condition.get("status") != value:
                condition["lastTransitionTime"] = now()
            condition.update(status=value, reason=reason, message=message[:1024],
                             observedGeneration=generation)
            return
    conditions.append({"type": type_, "status": value, "reason": reason,
                       "message": message[:1024], "lastTransitionTime": now(),
                       "observedGeneration": generation})


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            return dict(entry)
    return None


def is_true(obj: dict[str, Any], type_: str) -> bool:
    found = condition(obj, type_)
    return found is not None and found.get("status") == "True"
