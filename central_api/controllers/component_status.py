"""Writes each Component's current status (``kubectl get components``): the highest severity
among the impacts of the incidents active now, the Severity band it falls in, and those
incidents' names.

A Component is reconciled when it is created, when an Incident affecting it changes (before
or after the change: an impact removed concerns the component it named) and when any
Severity changes (bands name every value). Incidents end by an explicit write of
``endedAt``, which is such a change; only times in the future need a timer: a planned
incident whose ``beganAt`` (or a set ``endedAt``) lies ahead requeues the Component for then.

The active impacts of all incidents are computed once per change of the Incident cache
(:class:`ActiveIndex`), not once per Component: with 200 components and 10,000 incidents a
resync would otherwise scan two million impacts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ..kinds.status import (
    COMPONENT,
    INCIDENT,
    SEVERITY,
    ActiveImpact,
    Component,
    active_impacts,
    parse_time,
    severity_name,
)
from ..registry.informers import Informer
from .client import Client, Kind
from .runtime import Key, Result
from .typed import kind_of

COMPONENTS, INCIDENTS, SEVERITIES = kind_of(COMPONENT), kind_of(INCIDENT), kind_of(SEVERITY)
TIMER_SLACK = 0.5
"""Seconds after a planned begin or end that the Component is looked at again."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ActiveIndex:
    """Component name → the impacts active now, kept until the Incident cache changes or
    the next future begin or end among the incidents comes due."""

    def __init__(self) -> None:
        self._revision = -1
        self._valid_until: datetime | None = None
        self._impacts: dict[str, list[ActiveImpact]] = {}
        self.next_change: datetime | None = None
        """The earliest begin or end after the last computation."""

    def impacts(self, incidents: Informer, now: datetime) -> dict[str, list[ActiveImpact]]:
        stale = incidents.revision != self._revision or (
            self._valid_until is not None and now >= self._valid_until)
        if stale:
            self._revision = incidents.revision
            listed = incidents.list()  # shared cache objects: read only
            self._impacts = active_impacts(listed, now)
            self.next_change = min(_future_times(listed, now), default=None)
            self._valid_until = self.next_change
        return self._impacts


def _future_times(incidents: Iterable[dict[str, Any]], now: datetime) -> Iterable[datetime]:
    for incident in incidents:
        spec = incident.get("spec") or {}
        if not spec.get("affects"):
            continue
        for value in (spec.get("beganAt"), spec.get("endedAt")):
            when = parse_time(value)
            if when is not None and when > now:
                yield when


def _affected(incident: dict[str, Any]) -> list[Key]:
    return [("", impact["component"])
            for impact in (incident.get("spec") or {}).get("affects") or []
            if isinstance(impact, dict) and impact.get("component")]


class ComponentStatusReconciler:
    kind = COMPONENTS
    model = Component
    finalizer = ""
    """None: a Component has nothing outside the API to clean up."""

    def __init__(self, client: Client, clock: Callable[[], datetime] = utc_now) -> None:
        self.client = client
        self.clock = clock
        self.index = ActiveIndex()

    def watches(self) -> list[tuple[Kind, Callable[[dict[str, Any]], Iterable[Key]]]]:
        return [(INCIDENTS, _affected), (SEVERITIES, self._every_component)]

    def _every_component(self, _: dict[str, Any]) -> list[Key]:
        return [("", c["metadata"]["name"]) for c in self.client.informer(COMPONENTS).list()]

    async def reconcile(self, component: Component) -> Result:
        now = self.clock()
        impacts = self.index.impacts(self.client.informer(INCIDENTS), now)
        mine = impacts.get(component.metadata.name, [])
        severity = max((impact.severity for impact in mine), default=None)
        severities = self.client.informer(SEVERITIES).list()
        component.status.severity = severity
        component.status.severityName = severity_name(severity, severities)
        component.status.activeIncidents = sorted({impact.incident for impact in mine})
        due = self.index.next_change
        return Result(requeue_after=None if due is None
                      else max(0.0, (due - now).total_seconds()) + TIMER_SLACK)

    async def finalize(self, component: Component) -> bool:
        return True
