"""``status.scs.community/v1alpha1``: the provider's public status page, as KRM objects.

The SCS status-page API (spec 1.1.2, ``../shared/reference/status/``) is served as a *view*
of these kinds (``server/statuspage``), so kubectl, the status-page REST API, the health
probes and the Alertmanager receiver all read and write the same objects. Field names are
the status page's own. Differences, and why:

* The status page's ``id`` of a Component, ImpactType or Incident is the object's
  ``metadata.uid`` (a UUID, as the spec prefers), so names stay free for kubectl users
  (``kubectl get component keystone``). Objects created through the REST API get a name
  from their display name (:func:`name_from_display_name`).
* A Severity is keyed by its display name in the status page; here that is its
  ``metadata.name`` (any path segment, e.g. ``Degraded performance``).
* An Incident's ``affects`` names Components and ImpactTypes by ``metadata.name`` (the KRM
  way to reference); the REST view translates to and from their UIDs.
* An Incident's updates live in its ``spec.updates`` (one object: an update and the
  incident it belongs to are written together, and a deleted incident takes its updates).
* Phase lists are immutable generations: one ``PhaseList`` object per generation, named
  ``generation-<n>``; the highest generation is the current one.

A Component's current severity is derived from its active incidents' impacts
(:func:`active_impacts`); the status controller writes it to the Component's status for
kubectl, and the REST view computes it for any ``?at=`` time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ..machinery.errors import Cause
from .common import Model, Resource, Spec, Status
from .kind import Column, ResourceType, SpecRules, declare

if TYPE_CHECKING:
    from .catalog import Catalog

GROUP = "status.scs.community"
API_VERSION = f"{GROUP}/v1alpha1"

SOURCE_LABEL = f"{GROUP}/source"
"""Who opened an Incident: ``probe`` or ``alertmanager`` (absent: a person, by API)."""
PROBE_LABEL = f"{GROUP}/probe"
"""The health probe an Incident was opened for (with source ``probe``)."""
FINGERPRINT_LABEL = f"{GROUP}/alert-fingerprint"
"""The Alertmanager fingerprint an Incident was opened for (with source ``alertmanager``)."""

MAX_SEVERITY = 100
MAINTENANCE_SEVERITY = 0
"""An impact of severity 0 is planned maintenance (the reference server's convention);
Severity objects therefore take values 1..100."""

MAX_TEXT = 64 * 1024
MAX_NAME_TEXT = 256
MAX_IMPACTS = 500
MAX_UPDATES = 1000
MAX_PHASES = 100
MAX_LABELS = 64

DATE_TIME: dict[str, Any] = {"format": "date-time"}


def _text(description: str, limit: int = MAX_TEXT) -> Any:
    return Field("", max_length=limit, description=description)


# -- ImpactType ----------------------------------------------------------------------------
class ImpactTypeSpec(Spec):
    displayName: str = _text("Short name, e.g. 'Performance degraded'.", MAX_NAME_TEXT)
    description: str = _text("What this kind of impact means for users.")


class ImpactType(Resource):
    """A kind of impact an incident has on a component (e.g. performance degraded)."""

    spec: ImpactTypeSpec = Field(default_factory=ImpactTypeSpec)


# -- Severity ------------------------------------------------------------------------------
class SeveritySpec(Spec):
    value: int = Field(ge=MAINTENANCE_SEVERITY + 1, le=MAX_SEVERITY, description=(
        "Upper bound (inclusive) of the impact severities this Severity names: it covers "
        "the values above the next lower Severity's value up to this one. Unique. 0 is "
        "reserved for maintenance."))


class Severity(Resource):
    """A named severity band; its metadata.name is the status page's displayName."""

    spec: SeveritySpec


# -- PhaseList -----------------------------------------------------------------------------
class PhaseListSpec(Spec):
    generation: int = Field(ge=1, description="The generation; the object is named "
                                              "generation-<generation>.")
    phases: list[str] = Field(
        default_factory=list, max_length=MAX_PHASES,
        description="The phases an incident goes through, in order (e.g. Investigating, "
                    "Fixing, Monitoring, Resolved); an incident's phase names one by "
                    "generation and order (its index).",
        json_schema_extra={"items": {"type": "string", "maxLength": MAX_NAME_TEXT}})


class PhaseList(Resource):
    """One immutable generation of the phase list; the highest generation is current."""

    spec: PhaseListSpec


def phase_list_name(generation: int) -> str:
    return f"generation-{generation}"


class PhaseListRules(SpecRules):
    """A generation is immutable and named after its number."""

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None,
                 catalog: Catalog) -> list[Cause]:
        causes = super().validate(obj, old, catalog)
        spec = obj.get("spec") or {}
        generation = spec.get("generation")
        if isinstance(generation, int) and obj["metadata"].get("name") != \
                phase_list_name(generation):
            causes.append(Cause("metadata.name", f"Invalid value: must be "
                                f"{phase_list_name(generation)} for generation {generation}"))
        if old is not None and spec != (old.get("spec") or {}):
            causes.append(Cause("spec", "Invalid value: a phase list generation is immutable; "
                                        "create the next generation instead"))
        return causes


# -- Component -----------------------------------------------------------------------------
class ComponentSpec(Spec):
    displayName: str = _text("Name shown on the status page, e.g. 'Block storage'.",
                             MAX_NAME_TEXT)
    labels: dict[str, str] = Field(
        default_factory=dict, max_length=MAX_LABELS,
        description="The status page's free-text labels (e.g. region, service type); unlike "
                    "metadata.labels any key is allowed.",
        json_schema_extra={"additionalProperties": {"type": "string",
                                                    "maxLength": MAX_NAME_TEXT}})


class ComponentStatus(Status):
    severity: int | None = Field(None, description=(
        "Highest severity among the impacts of the incidents active now (none: operational)."))
    severityName: str = Field("", description="The Severity that value falls in.")
    activeIncidents: list[str] = Field(default_factory=list,
                                       description="Names of the incidents affecting it now.")


class Component(Resource):
    """A part of the cloud shown on the status page (e.g. compute in region 1)."""

    spec: ComponentSpec = Field(default_factory=ComponentSpec)
    status: ComponentStatus = Field(default_factory=ComponentStatus)


# -- Incident ------------------------------------------------------------------------------
class Impact(Model):
    component: str = Field(min_length=1, max_length=253, description="Component name.")
    impactType: str = Field(min_length=1, max_length=253, description="ImpactType name.")
    severity: int = Field(ge=MAINTENANCE_SEVERITY, le=MAX_SEVERITY, description=(
        "0 (maintenance) to 100; the Severity bands name it."))


class PhaseReference(Model):
    generation: int = Field(ge=1, description="The PhaseList generation.")
    order: int = Field(ge=0, description="Index of the phase in that generation.")


class IncidentUpdate(Model):
    order: int = Field(ge=0, description="Unique in the incident; updates come in order.")
    displayName: str = _text("Short summary.", MAX_NAME_TEXT)
    description: str = _text("What happened, what is being done.")
    createdAt: str | None = Field(None, description="When the update was written.",
                                  json_schema_extra=DATE_TIME)


class IncidentSpec(Spec):
    displayName: str = _text("Short summary, e.g. 'Volumes cannot be attached'.",
                             MAX_NAME_TEXT)
    description: str = _text("Details for users.")
    beganAt: str | None = Field(None, description="When it began (null: not yet known).",
                                json_schema_extra=DATE_TIME)
    endedAt: str | None = Field(None, description="When it ended; active while null.",
                                json_schema_extra=DATE_TIME)
    phase: PhaseReference | None = None
    affects: list[Impact] = Field(default_factory=list, max_length=MAX_IMPACTS,
                                  description="The components it affects, and how badly.")
    updates: list[IncidentUpdate] = Field(
        default_factory=list, max_length=MAX_UPDATES,
        description="Updates written while it lasts (the REST API's incident updates).",
        json_schema_extra={"x-kubernetes-list-type": "map",
                           "x-kubernetes-list-map-keys": ["order"]})

    def causes(self) -> list[Cause]:
        found: list[Cause] = []
        try:
            began, ended = parse_time(self.beganAt), parse_time(self.endedAt)
        except ValueError:
            return []  # not a time: the schema's date-time check names the field
        if began and ended and ended < began:
            found.append(Cause("spec.endedAt", f'Invalid value: "{self.endedAt}": must not be '
                                               "before beganAt"))
        seen: set[tuple[str, str]] = set()
        for i, impact in enumerate(self.affects):
            key = (impact.component, impact.impactType)
            if key in seen:
                found.append(Cause(f"spec.affects[{i}]", f'Duplicate value: component '
                                   f'"{impact.component}" with impactType "{impact.impactType}"',
                                   "FieldValueDuplicate"))
            seen.add(key)
        return found


class Incident(Resource):
    """Something that impairs components, with its updates; active while endedAt is null."""

    spec: IncidentSpec = Field(default_factory=IncidentSpec)


# -- declarations --------------------------------------------------------------------------
def _declare(kind: str, model: type[Resource], columns: list[Column], *,
             status: bool = False, **extra: Any) -> ResourceType:
    return declare(API_VERSION, kind, model, namespaced=False, columns=columns,
                   categories=["scs", "status"], status_subresource=status, **extra)


IMPACT_TYPE = _declare("ImpactType", ImpactType, [
    Column("Display Name", ".spec.displayName")])
SEVERITY = _declare("Severity", Severity, [Column("Value", ".spec.value", "integer")],
                    plural="severities", path_segment_names=True)
PHASE_LIST = _declare("PhaseList", PhaseList, [
    Column("Generation", ".spec.generation", "integer"),
    Column("Phases", ".spec.phases")], strategy=PhaseListRules(PhaseList))
COMPONENT = _declare("Component", Component, [
    Column("Display Name", ".spec.displayName"),
    Column("Severity", ".status.severityName"),
    Column("Incidents", ".status.activeIncidents", priority=1)], status=True)
INCIDENT = _declare("Incident", Incident, [
    Column("Display Name", ".spec.displayName"),
    Column("Began", ".spec.beganAt"),  # as times: a "date" column shows future ones as
    Column("Ended", ".spec.endedAt"),  # <invalid>, and maintenance is planned ahead
    Column("Source", ".metadata.labels.status\\.scs\\.community/source", priority=1)])

STATUS_KINDS = [IMPACT_TYPE, SEVERITY, PHASE_LIST, COMPONENT, INCIDENT]


# -- shared rules --------------------------------------------------------------------------
LEAP_SECOND = re.compile(r"(?<=T\d\d:\d\d):60|(?<= \d\d:\d\d):60")


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time as stored (the schema checked its format); naive means UTC."""
    if not value:
        return None
    # The schema's date-time allows "t"/"z" and a leap second (":60"); Python does not.
    text = LEAP_SECOND.sub(":59", value.upper().replace("Z", "+00:00"))
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_active(incident: dict[str, Any], at: datetime) -> bool:
    """Active at ``at``: began (or no begin known) at or before it, not ended by then."""
    spec = incident.get("spec") or {}
    began, ended = parse_time(spec.get("beganAt")), parse_time(spec.get("endedAt"))
    return (began is None or began <= at) and (ended is None or ended > at)


@dataclass(frozen=True)
class ActiveImpact:
    incident: str
    impact_type: str
    severity: int


def active_impacts(incidents: Iterable[dict[str, Any]], at: datetime
                   ) -> dict[str, list[ActiveImpact]]:
    """Component name → the impacts of the incidents active at ``at``."""
    found: dict[str, list[ActiveImpact]] = {}
    for incident in incidents:
        if not is_active(incident, at):
            continue
        for impact in (incident.get("spec") or {}).get("affects") or []:
            found.setdefault(impact["component"], []).append(ActiveImpact(
                incident["metadata"]["name"], impact["impactType"], impact["severity"]))
    return found


def severity_name(value: int | None, severities: Iterable[dict[str, Any]]) -> str:
    """The Severity band ``value`` falls in: the lowest Severity value at or above it."""
    if value is None:
        return ""
    bands = sorted((s["spec"]["value"], s["metadata"]["name"]) for s in severities)
    return next((name for upper, name in bands if value <= upper), "")


NAME_CHARS = re.compile(r"[^a-z0-9-]+")


def name_from_display_name(display_name: str, unique: str) -> str:
    """A readable, valid object name for an object created through the status-page API:
    its display name as a DNS label plus a short hash of ``unique`` (so two components
    called alike do not collide)."""
    slug = NAME_CHARS.sub("-", display_name.lower()).strip("-")[:40].strip("-") or "object"
    suffix = hashlib.sha256(unique.encode()).hexdigest()[:8]
    return f"{slug}-{suffix}"
