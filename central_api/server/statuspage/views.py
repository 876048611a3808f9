"""KRM objects ⇄ status-page JSON (spec 1.1.2), and the typed reading of request bodies.

The API's ids are UIDs; the objects reference each other by name (see
``kinds/status.py``), so every view and every body goes through the :class:`StatusIndex`
to translate. Bodies are checked field by field before anything is written: a wrong type,
a malformed date or an unknown id is a 400 naming the field, and nothing is stored.
Fields the spec marks read-only (``id``, ``updates``, ``activelyAffectedBy``) and unknown
fields are ignored, as the reference server's JSON binding ignores them (front ends send
back the objects they read).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import orjson

from ...kinds.status import MAINTENANCE_SEVERITY, MAX_SEVERITY, format_time, parse_time
from .errors import StatusPageError, bad_request, invalid_parameter
from .index import IncidentEntry, Object, StatusIndex, micros

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|z|[+-]\d\d:\d\d)")
"""What Go's time.Time accepts in JSON and query parameters: a full date-time with zone."""


def sort_key(obj: Object) -> tuple[str, str]:
    """Oldest first, as the reference server lists rows in insertion order."""
    meta = obj["metadata"]
    return meta.get("creationTimestamp", ""), meta["name"]


def _time(value: str | None) -> str | None:
    parsed = parse_time(value)
    return format_time(parsed) if parsed else None


# -- objects → JSON --------------------------------------------------------------------------
def impact_type_view(obj: Object) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    return {"id": obj["metadata"]["uid"], "displayName": spec.get("displayName", ""),
            "description": spec.get("description", "")}


def severity_view(obj: Object) -> dict[str, Any]:
    return {"displayName": obj["metadata"]["name"], "value": obj["spec"]["value"]}


def phase_list_view(obj: Object | None) -> dict[str, Any]:
    """No phase list yet is generation 0 without phases, as the reference answers."""
    if obj is None:
        return {"generation": 0, "phases": []}
    return {"generation": obj["spec"]["generation"], "phases": list(obj["spec"]["phases"])}


def update_view(update: dict[str, Any]) -> dict[str, Any]:
    return {"order": update["order"], "displayName": update.get("displayName", ""),
            "description": update.get("description", ""),
            "createdAt": _time(update.get("createdAt"))}


def incident_view(obj: Object, index: StatusIndex) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    view: dict[str, Any] = {
        "id": obj["metadata"]["uid"], "displayName": spec.get("displayName", ""),
        "description": spec.get("description", ""), "beganAt": _time(spec.get("beganAt")),
        "endedAt": _time(spec.get("endedAt")),
        "affects": _impacts_of(spec.get("affects") or [], index),
        "updates": sorted(u["order"] for u in spec.get("updates") or [])}
    if spec.get("phase"):
        view["phase"] = {"generation": spec["phase"]["generation"],
                         "order": spec["phase"]["order"]}
    return view


def _impacts_of(affects: list[dict[str, Any]], index: StatusIndex) -> list[dict[str, Any]]:
    """An impact naming a component or impact type that is gone is left out: the API's
    ``reference`` and ``type`` must be ids."""
    found = []
    for impact in affects:
        component = index.uid_of("components", impact["component"])
        impact_type = index.uid_of("impacttypes", impact["impactType"])
        if component and impact_type:
            found.append({"reference": component, "type": impact_type,
                          "severity": impact["severity"]})
    return found


def component_view(obj: Object, affected: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    return {"id": obj["metadata"]["uid"], "displayName": spec.get("displayName", ""),
            "labels": dict(spec.get("labels") or {}),
            "activelyAffectedBy": affected.get(obj["metadata"]["name"], [])}


def incident_fragment(entry: IncidentEntry, index: StatusIndex) -> orjson.Fragment:
    """The incident's view as JSON bytes, rendered once per change (see ``index``)."""
    if entry.view is None or entry.view_epoch != index.views_epoch:
        entry.view = orjson.Fragment(orjson.dumps(incident_view(entry.obj, index)))
        entry.view_epoch = index.views_epoch
    return entry.view


def affected_by(index: StatusIndex, at: datetime | None) -> dict[str, list[dict[str, Any]]]:
    """Component name → the impacts of the incidents active at ``at``; without ``at``, of the
    incidents whose endedAt is null (the reference server's "active"), kept until the
    next change."""
    if at is None:
        return index.memo("affected", lambda: _impacts_by_component(index.incidents.active(),
                                                                    index))
    return _impacts_by_component(index.incidents.active_at(micros(at)), index)


def _impacts_by_component(incidents: list[IncidentEntry], index: StatusIndex
                          ) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in incidents:
        for impact in (entry.obj.get("spec") or {}).get("affects") or []:
            impact_type = index.uid_of("impacttypes", impact["impactType"])
            if impact_type:
                found.setdefault(impact["component"], []).append(
                    {"reference": entry.uid, "type": impact_type,
                     "severity": impact["severity"]})
    return found


# -- parameters ------------------------------------------------------------------------------
def uuid_parameter(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid_parameter(name, f"{_shown(value)} is not a UUID") from None


def order_parameter(name: str, value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise invalid_parameter(name, f"{_shown(value)} is not a non-negative integer")
    return int(value)


def time_parameter(name: str, value: str | None, required: bool = False) -> datetime | None:
    if value is None or value == "":
        if required:
            raise invalid_parameter(name, f"query parameter '{name}' is required")
        return None
    parsed = _parse_rfc3339(value)
    if parsed is None:
        raise invalid_parameter(name, f"{_shown(value)} is not an RFC 3339 date-time "
                                "(e.g. 2024-01-01T10:00:00Z)")
    return parsed


def _parse_rfc3339(value: str) -> datetime | None:
    if not RFC3339.fullmatch(value):
        return None
    try:
        return parse_time(value[:26] + value[29:] if _long_fraction(value) else value)
    except ValueError:
        return None


def _long_fraction(value: str) -> bool:
    """Python parses at most 6 fractional digits; Go sends up to 9."""
    match = re.search(r"\.(\d+)", value)
    return bool(match and len(match.group(1)) > 6)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 64 else value[:64] + "...")


# -- bodies → spec fields --------------------------------------------------------------------
MISSING: Any = object()


class Body:
    """A request body (a JSON object) read field by field with the spec's types."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def has(self, *fields: str) -> bool:
        return any(f in self.data for f in fields)

    def text(self, field: str) -> Any:
        value = self.data.get(field, MISSING)
        if value is MISSING or isinstance(value, str):
            return value
        raise bad_request(f"{field}: must be a string")

    def date(self, field: str) -> Any:
        """A date-time string stored normalized (UTC), None (null), or MISSING."""
        value = self.data.get(field, MISSING)
        if value is MISSING or value is None:
            return value
        parsed = _parse_rfc3339(value) if isinstance(value, str) else None
        if parsed is None:
            raise bad_request(f"{field}: must be an RFC 3339 date-time (e.g. "
                              "2024-01-01T10:00:00Z) or null")
        return format_time(parsed)

    def integer(self, field: str, low: int, high: int) -> Any:
        value = self.data.get(field, MISSING)
        if value is MISSING:
            return value
        return _integer(field, value, low, high)

    def labels(self) -> Any:
        value = self.data.get("labels", MISSING)
        if value is MISSING:
            return value
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad_request("labels: must be an object of strings")
        return dict(value)

    def phases(self) -> list[str]:
        value = self.data.get("phases")
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise bad_request("phases: must be a list of strings")
        if not value:
            raise bad_request("phases: must not be empty")
        return list(value)

    def phase(self) -> Any:
        value = self.data.get("phase", MISSING)
        if value is MISSING or value is None:
            return value
        if not isinstance(value, dict):
            raise bad_request("phase: must be an object with generation and order")
        return {"generation": _integer("phase.generation", value.get("generation"), 1,
                                       2**31 - 1),
                "order": _integer("phase.order", value.get("order"), 0, 2**31 - 1)}

    def affects(self, index: StatusIndex) -> Any:
        """The impacts, with the ids of components and impact types as names."""
        value = self.data.get("affects", MISSING)
        if value is MISSING:
            return value
        if value is None:
            return []
        if not isinstance(value, list):
            raise bad_request("affects: must be a list of impacts")
        return [_impact(i, item, index) for i, item in enumerate(value)]


def _integer(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"{field}: must be an integer from {low} to {high}")
    return value


def _impact(i: int, item: Any, index: StatusIndex) -> dict[str, Any]:
    where = f"affects[{i}]"
    if not isinstance(item, dict):
        raise bad_request(f"{where}: must be an object with reference, type and severity")
    component = _referenced(f"{where}.reference", item.get("reference"), "components", index)
    impact_type = _referenced(f"{where}.type", item.get("type"), "impacttypes", index)
    severity = _integer(f"{where}.severity", item.get("severity"), MAINTENANCE_SEVERITY,
                        MAX_SEVERITY)
    return {"component": component, "impactType": impact_type, "severity": severity}


def _referenced(field: str, value: Any, plural: str, index: StatusIndex) -> str:
    what = "component" if plural == "components" else "impact type"
    if not isinstance(value, str):
        raise bad_request(f"{field}: must be the id of a {what}")
    try:
        uid = str(uuid.UUID(value))
    except ValueError:
        raise bad_request(f"{field}: {_shown(value)} is not a UUID") from None
    name = index.name_of(plural, uid)
    if name is None:
        raise bad_request(f"{field}: no {what} with id {uid}")
    return name


def present(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields the body set (MISSING ones dropped)."""
    return {k: v for k, v in fields.items() if v is not MISSING}


def require_some(fields: dict[str, Any]) -> dict[str, Any]:
    """The reference server refuses a body that sets nothing (400 "empty request")."""
    if not fields:
        raise StatusPageError(400, "Bad Request: the body sets none of the object's fields")
    return fields


def check_maintenance(spec: dict[str, Any]) -> None:
    """Planned maintenance (an impact of severity 0) has an end, as the reference requires."""
    if spec.get("endedAt") is None and any(
            impact["severity"] == MAINTENANCE_SEVERITY for impact in spec.get("affects") or []):
        raise bad_request("endedAt: an incident with a maintenance impact (severity 0) needs "
                          "an end")
