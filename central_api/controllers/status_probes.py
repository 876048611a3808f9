"""Health probes of the backends, feeding the status page: a failing backend opens an
Incident on its Component, and its recovery ends it.

Two halves. :func:`step` is the incident lifecycle as a pure state machine (no I/O, the
time passed in), so thresholds, flapping and restarts are unit-tested exactly. The
:class:`StatusProbes` runner checks each backend every ``intervalSeconds`` under a
``timeoutSeconds`` deadline, reports to ``scs_probe_up``/``scs_probe_duration_seconds`` and
writes what :func:`step` decided through the controllers' client. It runs with the
controllers (only in the replica holding their lease, in ``scs serve`` and in
``scs controllers`` alike), so two replicas never probe and write at once.

Why the lifecycle looks the way it does:

* An incident opens after ``failureThreshold`` failures in a row, not at the first one: one
  lost packet is no outage. Its ``beganAt`` is the first of those failures.
* It ends after ``recoveryThreshold`` successes in a row; a failure in between starts the
  count again. A flapping backend (fail, ok, fail, ...) therefore keeps one incident instead
  of opening one per failure.
* Updates are written when the error changes, not per failure (a day's outage at 30 s
  would be 2,880 updates), and at most :data:`MAX_PROBE_UPDATES` per incident.
* The name is derived from the probe and the first failure's time, and a new leader (or a
  restart) adopts the open incident of its probe from the store, so no two are opened.
* Error texts are the providers' messages (which name the backend, never a credential),
  with any user-info or query string of a URL removed and bounded in length.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..config import ProbesConfig
from ..kinds.status import (
    COMPONENT,
    IMPACT_TYPE,
    INCIDENT,
    PROBE_LABEL,
    SEVERITY,
    SOURCE_LABEL,
    format_time,
    parse_time,
)
from ..machinery.errors import ApiError
from ..providers.base import HealthCheck
from .client import Client, Kind
from .leader import LEASE_NAMESPACE, LEASES
from .metrics import ControllerMetrics
from .typed import kind_of

log = logging.getLogger("central_api.status_probes")

COMPONENTS, INCIDENTS = kind_of(COMPONENT), kind_of(INCIDENT)
IMPACT_TYPES, SEVERITIES = kind_of(IMPACT_TYPE), kind_of(SEVERITY)
KIND_NAMES = {"components": "Component", "impacttypes": "ImpactType",
              "severities": "Severity"}
SOURCE = "probe"
MAX_PROBE_UPDATES = 20
MAX_ERROR_TEXT = 1000
PREPARE_RETRY_SECONDS = 5.0
STORE_LEASE = "scs-controllers"
"""The store probe reads the controllers' Lease: never cached, so it reaches the store
(in ``scs controllers``, the API and its store)."""

DISPLAY_NAMES = {"store": "Central API store", "identity": "Identity (Keystone)",
                 "compute": "Compute", "network": "Network", "block-storage": "Block storage",
                 "image": "Images", "load-balancer": "Load balancers",
                 "kaas": "Kubernetes clusters (KaaS)"}
DEFAULT_SEVERITIES = {"operational": 33, "limited": 66, "broken": 100}
"""Created only when no Severity exists at all (the SCS status page's three bands); an
operator's own Severities are never touched."""


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- the lifecycle, pure --------------------------------------------------------------------
@dataclass(frozen=True)
class Thresholds:
    failures: int = 3
    recoveries: int = 2
    max_updates: int = MAX_PROBE_UPDATES


@dataclass(frozen=True)
class ProbeState:
    failures: int = 0
    """Failures in a row."""
    successes: int = 0
    """Successes in a row since the incident's last failure."""
    first_failure: datetime | None = None
    incident: str = ""
    """The open incident's name ("" if none)."""
    error: str = ""
    """The error the incident last reported."""
    updates: int = 0
    """Updates the incident has."""


@dataclass(frozen=True)
class Open:
    name: str
    began: datetime
    error: str
    failures: int


@dataclass(frozen=True)
class AddUpdate:
    incident: str
    error: str


@dataclass(frozen=True)
class End:
    incident: str
    at: datetime
    successes: int


Action = Open | AddUpdate | End


def incident_name(probe: str, first_failure: datetime) -> str:
    """Deterministic: a second writer of the same outage gets 409, not a duplicate."""
    return f"probe-{probe}-{first_failure.astimezone(UTC):%Y%m%d-%H%M%S}"


def step(state: ProbeState, ok: bool, error: str, now: datetime, probe: str,
         limits: Thresholds) -> tuple[ProbeState, list[Action]]:
    """The state after one probe result, and what to write for it."""
    if ok:
        return _succeeded(state, now, limits)
    first = state.first_failure or now
    failed = replace(state, failures=state.failures + 1, successes=0, first_failure=first)
    if not state.incident:
        if failed.failures < limits.failures:
            return failed, []
        name = incident_name(probe, first)
        return (replace(failed, incident=name, error=error, updates=1),
                [Open(name, first, error, failed.failures)])
    if error == state.error or state.updates >= limits.max_updates:
        return failed, []
    return (replace(failed, error=error, updates=state.updates + 1),
            [AddUpdate(state.incident, error)])


def _succeeded(state: ProbeState, now: datetime, limits: Thresholds
               ) -> tuple[ProbeState, list[Action]]:
    if not state.incident:
        return ProbeState(), []
    successes = state.successes + 1
    if successes < limits.recoveries:
        return replace(state, successes=successes, failures=0), []
    return ProbeState(), [End(state.incident, now, successes)]


def adopted(incident: dict[str, Any], limits: Thresholds) -> ProbeState:
    """The state of a runner that finds its probe's incident open (after a restart or a
    change of leader): failing since it began, as if it had opened it."""
    spec = incident.get("spec") or {}
    updates = spec.get("updates") or []
    last: dict[str, Any] = max(updates, key=lambda u: u.get("order", 0), default={})
    return ProbeState(failures=limits.failures, first_failure=parse_time(spec.get("beganAt")),
                      incident=incident["metadata"]["name"],
                      error=str(last.get("description") or ""), updates=len(updates))


URL_USERINFO = re.compile(r"(\w+://)[^/@\s]*@")
URL_QUERY = re.compile(r"(\w+://[^\s?]*)\?\S*")


def clean_error(exc: BaseException) -> str:
    """What a probe failure says publicly: the message without URL credentials or query
    strings (which may carry tokens), bounded."""
    text = str(exc) or type(exc).__name__
    text = URL_QUERY.sub(r"\1", URL_USERINFO.sub(r"\1", text))
    return text[:MAX_ERROR_TEXT]


# -- the runner -----------------------------------------------------------------------------
@dataclass
class Probe:
    name: str
    check: HealthCheck
    component: str
    """The Component it reports on ("" : metrics only)."""
    state: ProbeState = field(default_factory=ProbeState)
    pending: asyncio.Future[None] | None = None
    """A check still running past its deadline: no second one is started beside it (a
    hanging backend would otherwise pile up worker threads)."""


class StatusProbes:
    def __init__(self, client: Client, checks: dict[str, HealthCheck], config: ProbesConfig,
                 metrics: ControllerMetrics,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.client = client
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.limits = Thresholds(config.failure_threshold, config.recovery_threshold)
        mapping = config.components or {name: name for name in checks}
        self.probes = {name: Probe(name, check, mapping.get(name, ""))
                       for name, check in checks.items()}

    async def run(self) -> None:
        """Prepare the status objects, adopt open incidents, then probe until cancelled."""
        while True:
            try:
                await self.prepare()
                break
            except (ApiError, OSError) as exc:
                log.warning("status probes: cannot prepare the status objects (%s); "
                            "retrying", exc)
                await asyncio.sleep(PREPARE_RETRY_SECONDS)
        try:
            await asyncio.gather(*(self._loop(probe) for probe in self.probes.values()))
        finally:
            for probe in self.probes.values():
                if probe.pending is not None:
                    probe.pending.cancel()

    # -- start ----------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Create the mapped Components, the ImpactType and (if there are none) default
        Severities; never change what exists. Then adopt each probe's open incident."""
        for probe in self.probes.values():
            if probe.component:
                await self._ensure(COMPONENTS, probe.component, {
                    "displayName": DISPLAY_NAMES.get(probe.name, probe.name)})
        await self._ensure(IMPACT_TYPES, self.config.impact_type, {
            "displayName": self.config.impact_type.replace("-", " ").capitalize(),
            "description": "The component does not answer."})
        severities, _ = await self.client.list(SEVERITIES)
        if not severities:
            for name, value in DEFAULT_SEVERITIES.items():
                await self._ensure(SEVERITIES, name, {"value": value})
        incidents, _ = await self.client.list(INCIDENTS)
        for probe in self.probes.values():
            found = sorted((i for i in incidents if _open_for(i, probe.name)),
                           key=lambda i: i["spec"].get("beganAt") or "")
            if found:
                probe.state = adopted(found[-1], self.limits)
                log.info("status probe %s adopts open incident %s", probe.name,
                         probe.state.incident)

    async def _ensure(self, kind: Kind, name: str, spec: dict[str, Any]) -> None:
        if await self.client.get(kind, "", name) is not None:
            return
        body = {"apiVersion": kind.api_version, "kind": KIND_NAMES[kind.plural],
                "metadata": {"name": name}, "spec": spec}
        try:
            await self.client.create(kind, body)
        except ApiError as exc:
            if exc.code != 409:
                raise

    # -- probing --------------------------------------------------------------------------
    async def _loop(self, probe: Probe) -> None:
        while True:
            started = time.monotonic()
            error = await self.check(probe)
            if probe.component:
                await self._record(probe, error)
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.config.interval_seconds - elapsed))

    async def check(self, probe: Probe) -> str | None:
        """Run the probe once under its deadline: None if it succeeded, else why not.

        A check still running from the last round gets another deadline instead of a new
        check beside it; failing it at once would count one slow answer twice in a row
        (the loop does not sleep after a round that took the whole deadline), so a single
        answer slower than ``timeoutSeconds`` opened an incident with failureThreshold 2."""
        started = time.monotonic()
        error: str | None = None
        timeout = self.config.timeout_seconds
        pending = probe.pending
        fresh = pending is None or pending.done()
        if pending is None or fresh:
            pending = probe.pending = asyncio.ensure_future(probe.check())
        done, _ = await asyncio.wait({pending}, timeout=timeout)
        if not done:
            error = (f"no answer within {timeout:g} s" if fresh else
                     f"no answer yet to a probe started more than {timeout:g} s ago")
        else:
            probe.pending = None
            failure = pending.exception()
            if failure is not None:
                error = clean_error(failure)
        self.metrics.probe_up.labels(probe.name).set(0 if error else 1)
        self.metrics.probe_seconds.labels(probe.name).observe(time.monotonic() - started)
        if error:
            log.info("status probe %s failed: %s", probe.name, error)
        return error

    async def _record(self, probe: Probe, error: str | None) -> None:
        """Advance the lifecycle; the new state holds only once its writes succeeded (a
        failed write is decided again at the next result)."""
        state, actions = step(probe.state, error is None, error or "", self.clock(),
                              probe.name, self.limits)
        try:
            for action in actions:
                state = await self._write(probe, action, state)
        except (ApiError, OSError) as exc:
            log.warning("status probe %s: cannot write its incident (%s); retrying at the "
                        "next probe", probe.name, exc)
            return
        probe.state = state

    async def _write(self, probe: Probe, action: Action, state: ProbeState) -> ProbeState:
        if isinstance(action, Open):
            name = await self._open(probe, action)
            return replace(state, incident=name)
        if isinstance(action, AddUpdate):
            if not await self._append(action.incident, "Probe error changed", action.error):
                return replace(state, incident="", error="", updates=0)  # ended by someone
            return state
        await self._end(action)
        return state

    async def _open(self, probe: Probe, action: Open) -> str:
        """Create the incident; if the name exists (another writer of this outage), take
        it while it is open, else open one beside the ended one."""
        body = self._incident(probe, action, action.name)
        try:
            await self.client.create(INCIDENTS, body)
            return action.name
        except ApiError as exc:
            if exc.code != 409:
                raise
        existing = await self.client.get(INCIDENTS, "", action.name)
        if existing is not None and not (existing.get("spec") or {}).get("endedAt"):
            return action.name
        name = f"{action.name}-{self.clock():%H%M%S}"
        await self.client.create(INCIDENTS, self._incident(probe, action, name))
        return name

    def _incident(self, probe: Probe, action: Open, name: str) -> dict[str, Any]:
        title = DISPLAY_NAMES.get(probe.name, probe.name)
        return {
            "apiVersion": INCIDENTS.api_version, "kind": "Incident",
            "metadata": {"name": name, "labels": {SOURCE_LABEL: SOURCE,
                                                  PROBE_LABEL: probe.name}},
            "spec": {
                "displayName": f"{title} not answering",
                "description": (f"The Central API's health probe of {probe.name} failed "
                                f"{action.failures} times in a row."),
                "beganAt": format_time(action.began),
                "affects": [{"component": probe.component,
                             "impactType": self.config.impact_type,
                             "severity": self.config.severity}],
                "updates": [{"order": 0, "displayName": "Probe failing",
                             "description": action.error,
                             "createdAt": format_time(self.clock())}]}}

    async def _append(self, name: str, title: str, text: str,
                      ended_at: datetime | None = None) -> bool:
        """Add an update (and end the incident with ``ended_at``); False if the incident
        is gone or already ended. Optimistic: a concurrent edit is read again."""
        for _ in range(3):
            incident = await self.client.get(INCIDENTS, "", name)
            if incident is None or (incident.get("spec") or {}).get("endedAt"):
                return False
            spec = incident["spec"]
            updates = spec.get("updates") or []
            order = max((u.get("order", 0) for u in updates), default=-1) + 1
            spec["updates"] = [*updates, {"order": order, "displayName": title,
                                          "description": text,
                                          "createdAt": format_time(self.clock())}]
            if ended_at is not None:
                spec["endedAt"] = format_time(ended_at)
            try:
                await self.client.update(INCIDENTS, incident)
                return True
            except ApiError as exc:
                if exc.code != 409:
                    raise
        raise ApiError(409, "Conflict", f"incident {name} kept changing")

    async def _end(self, action: End) -> None:
        await self._append(action.incident, "Recovered",
                           f"The probe succeeded {action.successes} times in a row.",
                           ended_at=action.at)


def _open_for(incident: dict[str, Any], probe: str) -> bool:
    labels = incident["metadata"].get("labels") or {}
    return (labels.get(SOURCE_LABEL) == SOURCE and labels.get(PROBE_LABEL) == probe
            and not (incident.get("spec") or {}).get("endedAt"))


def store_check(client: Client) -> HealthCheck:
    """The ``store`` probe: one uncached read through the controllers' client."""

    async def check() -> None:
        await client.get(LEASES, LEASE_NAMESPACE, STORE_LEASE)

    return check


def status_probes(client: Client, checks: dict[str, HealthCheck], config: ProbesConfig,
                  metrics: ControllerMetrics) -> StatusProbes | None:
    """The runner for the configured backends plus the store; None when probes are off."""
    if not config.enabled:
        return None
    return StatusProbes(client, {"store": store_check(client), **checks}, config, metrics)


__all__ = ["AddUpdate", "End", "Open", "ProbeState", "StatusProbes", "Thresholds",
           "adopted", "clean_error", "incident_name", "status_probes", "step"]
