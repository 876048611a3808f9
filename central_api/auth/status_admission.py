"""Rules across status.scs.community objects, for every writer (REST view, kubectl, probes).

A kind's schema checks one object; these check it against the others, so the status page
never shows an incident affecting a component that does not exist or two severities with one
value:

* a Severity's value is unique (its bands would overlap otherwise; the reference server's
  column is unique too);
* an Incident's ``affects`` names existing Components and ImpactTypes — checked when they
  change, so deleting a component later does not make every edit of an old incident fail;
* an Incident's ``phase`` names an existing PhaseList generation and an index within it.

Reads go to the store (a key read each), not to an informer: a component created a moment
ago by the same client (``kubectl apply`` of a file with both) must be found.
"""

from __future__ import annotations

from typing import Any

from ..kinds.kind import ResourceType
from ..kinds.status import COMPONENT, GROUP, IMPACT_TYPE, PHASE_LIST, phase_list_name
from ..machinery import errors
from ..machinery.errors import ApiError, Cause
from ..registry.resources import ListOptions, Resources, WriteOptions


class StatusAdmission:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def __call__(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                 opts: WriteOptions) -> None:
        if rt.group != GROUP:
            return
        if rt.kind == "Severity":
            causes = self.severity_causes(rt, obj)
        elif rt.kind == "Incident":
            causes = self.incident_causes(obj, old)
        else:
            return
        if causes:
            raise errors.invalid(rt.kind, obj["metadata"].get("name", ""), causes, rt.group)

    def severity_causes(self, rt: ResourceType, obj: dict[str, Any]) -> list[Cause]:
        value = obj["spec"]["value"]
        for other in self.resources.list(rt, None, ListOptions())["items"]:
            if other["spec"]["value"] == value and \
                    other["metadata"]["name"] != obj["metadata"]["name"]:
                return [Cause("spec.value", f"Duplicate value: {value}: severity "
                              f'"{other["metadata"]["name"]}" has it', "FieldValueDuplicate")]
        return []

    def incident_causes(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        spec, before = obj.get("spec") or {}, (old or {}).get("spec") or {}
        causes = []
        if spec.get("affects") != before.get("affects"):
            for i, impact in enumerate(spec.get("affects") or []):
                causes += self._missing(COMPONENT, impact["component"],
                                        f"spec.affects[{i}].component")
                causes += self._missing(IMPACT_TYPE, impact["impactType"],
                                        f"spec.affects[{i}].impactType")
        if spec.get("phase") and spec.get("phase") != before.get("phase"):
            causes += self._phase_causes(spec["phase"])
        return causes

    def _missing(self, rt: ResourceType, name: str, path: str) -> list[Cause]:
        if self._get(rt, name) is None:
            return [Cause(path, f'Not found: "{name}": no {rt.kind} of that name',
                          "FieldValueNotFound")]
        return []

    def _phase_causes(self, phase: dict[str, int]) -> list[Cause]:
        found = self._get(PHASE_LIST, phase_list_name(phase["generation"]))
        if found is None:
            return [Cause("spec.phase.generation", f"Not found: {phase['generation']}: no "
                          "PhaseList of that generation", "FieldValueNotFound")]
        if phase["order"] >= len(found["spec"]["phases"]):
            return [Cause("spec.phase.order", f"Invalid value: {phase['order']}: generation "
                          f"{phase['generation']} has {len(found['spec']['phases'])} phases")]
        return []

    def _get(self, rt: ResourceType, name: str) -> dict[str, Any] | None:
        try:
            return self.resources.get(rt, "", name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise
