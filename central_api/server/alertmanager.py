"""The Prometheus Alertmanager webhook receiver (``POST /webhooks/alertmanager``).

Alertmanager's ``webhook_config`` posts a notification (payload version 4) for a group of
alerts whenever the group changes and again every ``repeat_interval``. Each alert becomes an
:class:`~central_api.kinds.status.Incident` of the status page:

* a firing alert opens one, named from the alert's fingerprint and ``startsAt`` — so a
  re-sent notification, or the same notification reaching two replicas, finds the incident
  already there instead of opening a second one;
* a firing alert with an active incident changes it (and adds an update) only when what it
  says changed: the notifications Alertmanager repeats add nothing;
* a resolved alert ends it (``endedAt`` = the alert's ``endsAt``) with a closing update.

The whole payload is validated before anything is written (a bad one is answered 400 and
changes nothing). An alert naming a Component (or an ImpactType) that does not exist still
opens its incident — the outage is real — but without the impact, and the answer lists the
unknown names so the operator sees them in Alertmanager's log and fixes the mapping.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ..auth.authz import Attributes
from ..config import AlertmanagerConfig
from ..kinds.status import (
    COMPONENT,
    FINGERPRINT_LABEL,
    GROUP,
    IMPACT_TYPE,
    INCIDENT,
    MAX_NAME_TEXT,
    MAX_TEXT,
    MAX_UPDATES,
    SOURCE_LABEL,
    format_time,
)
from ..machinery import errors
from ..machinery.errors import ApiError
from ..machinery.selectors import LabelSelector, Operator, new_requirement
from ..registry.resources import ListOptions, Resources, WriteOptions
from ..registry.retry import retry_on_conflict
from .handlers import json_response
from .requestinfo import RequestInfo

if TYPE_CHECKING:
    from .app import CentralApi, Mount

log = logging.getLogger("central_api.alertmanager")

PATH = "/webhooks/alertmanager"
SOURCE = "alertmanager"
FIELD_MANAGER = "alertmanager-receiver"
MAX_BODY_BYTES = 2 * 1024 * 1024
"""Alertmanager sends every alert of a group in one notification; 2 MiB holds a thousand
alerts with long annotations, and nothing larger is read."""
MAX_ALERTS = 1000
MAX_LABELS = 128
AUDIT_PREFIX = f"{GROUP}/"
DIGEST_ANNOTATION = f"{GROUP}/alert-digest"
"""What the alert said when last applied to the incident (hashes of summary, description
and impact), so repeats that say the same change nothing."""


# -- the payload ---------------------------------------------------------------------------
Labels = dict[str, str]


class Alert(BaseModel):
    """One alert of a notification, as Alertmanager's webhook sends it."""

    model_config = ConfigDict(extra="ignore", strict=True)

    status: Literal["firing", "resolved"]
    labels: Labels = Field(max_length=MAX_LABELS)
    annotations: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    startsAt: AwareDatetime
    endsAt: AwareDatetime | None = None
    generatorURL: str = Field("", max_length=4096)
    fingerprint: str = Field(pattern=r"^[0-9a-fA-F]{1,63}$")


class Notification(BaseModel):
    """Alertmanager's webhook payload, version 4 (its only version so far)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    version: Literal["4"]
    groupKey: str = Field(max_length=4096)
    truncatedAlerts: int = Field(0, ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = Field(max_length=MAX_NAME_TEXT)
    groupLabels: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    commonLabels: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    commonAnnotations: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    externalURL: str = Field("", max_length=4096)
    alerts: list[Alert] = Field(min_length=1, max_length=MAX_ALERTS)


def parse_notification(body: bytes) -> Notification:
    """The validated payload, or a 400 naming every problem (nothing is written then)."""
    try:
        return Notification.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:10])
        raise errors.bad_request(f"not an Alertmanager webhook payload (version 4): "
                                 f"{problems}") from None


# -- what an alert asks for ----------------------------------------------------------------
@dataclass(frozen=True)
class Wanted:
    """The incident an alert describes, before the store is asked what exists."""

    name: str
    fingerprint: str
    began: str
    display_name: str
    description: str
    component: str
    impact_type: str
    severity: int

    def impact(self) -> dict[str, Any]:
        return {"component": self.component, "impactType": self.impact_type,
                "severity": self.severity}


def incident_name(fingerprint: str, starts_at: str) -> str:
    """One name per alert episode: Prometheus keeps ``startsAt`` while the alert fires."""
    episode = hashlib.sha256(f"{fingerprint}/{starts_at}".encode()).hexdigest()[:10]
    return f"alert-{fingerprint}-{episode}"


def wanted(alert: Alert, config: AlertmanagerConfig) -> Wanted:
    labels, notes = alert.labels, alert.annotations
    fingerprint = alert.fingerprint.lower()
    began = format_time(alert.startsAt)
    title = notes.get("summary") or labels.get("alertname") or f"Alert {fingerprint}"
    value = labels.get(config.component_label, "")
    return Wanted(
        name=incident_name(fingerprint, began), fingerprint=fingerprint, began=began,
        display_name=title[:MAX_NAME_TEXT], description=notes.get("description", "")[:MAX_TEXT],
        component=config.components.get(value, value),
        impact_type=labels.get("impact_type") or config.impact_type,
        severity=alert_severity(labels.get("severity", ""), config.severities))


def alert_severity(label: str, severities: dict[str, int]) -> int:
    """The configured severity of the alert's ``severity`` label; unknown: the highest."""
    if label in severities:
        return severities[label]
    return max(severities.values(), default=100)


# -- writing incidents ---------------------------------------------------------------------
@dataclass
class Outcome:
    opened: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, Any]:
        found: dict[str, Any] = {"opened": self.opened, "updated": self.updated,
                                 "unchanged": self.unchanged, "ended": self.ended,
                                 "ignored": self.ignored}
        if self.unknown:
            found["unknownReferences"] = sorted(self.unknown)
        return found


class IncidentWriter:
    """Applies alerts to Incidents through the registry (admission, validation, audit of
    the same kind as any other write), retrying when a concurrent writer wins."""

    def __init__(self, resources: Resources, options: WriteOptions) -> None:
        self.resources = resources
        self.options = options
        self._active: dict[str, list[dict[str, Any]]] | None = None
        """Active alert incidents by fingerprint, read once per notification when needed."""

    def apply(self, alerts: list[tuple[Alert, Wanted]]) -> Outcome:
        outcome = Outcome()
        for alert, want in alerts:
            step = self.fire if alert.status == "firing" else self.resolve
            retry_on_conflict(functools.partial(step, alert, want, outcome),
                              before_retry=self._forget_active)
        return outcome

    def _forget_active(self) -> None:
        self._active = None  # another writer was first: read again

    def _get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.resources.get(INCIDENT, "", name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def _exists(self, rt: Any, name: str) -> bool:
        try:
            self.resources.get(rt, "", name)
            return True
        except ApiError as exc:
            if exc.code == 404:
                return False
            raise

    def _active_with_fingerprint(self, fingerprint: str) -> list[dict[str, Any]]:
        """Active incidents of this alert opened for an earlier episode (a resolve that
        never arrived). Needs a label-selected scan of the incidents, so it is done once per
        notification, and only when a new episode opens or an unknown one resolves."""
        if self._active is None:
            selector = LabelSelector((new_requirement(SOURCE_LABEL, Operator.EQUALS,
                                                      [SOURCE]),))
            found = self.resources.list(INCIDENT, None, ListOptions(label_selector=selector))
            self._active = {}
            for item in found["items"]:
                if not (item.get("spec") or {}).get("endedAt"):
                    key = item["metadata"]["labels"].get(FINGERPRINT_LABEL, "")
                    self._active.setdefault(key, []).append(item)
        return list(self._active.get(fingerprint, []))

    def _affects(self, want: Wanted, outcome: Outcome) -> list[dict[str, Any]]:
        """The alert's impact, if the Component and ImpactType it names exist."""
        if not want.component:
            return []
        missing = [f"{kind} {name!r}" for kind, rt, name in (
            ("component", COMPONENT, want.component),
            ("impactType", IMPACT_TYPE, want.impact_type)) if not self._exists(rt, name)]
        outcome.unknown.update(missing)
        return [] if missing else [want.impact()]

    def fire(self, alert: Alert, want: Wanted, outcome: Outcome) -> None:
        current = self._get(want.name)
        if current is not None:
            if current["spec"].get("endedAt"):
                outcome.ignored.append(want.name)  # a late repeat of an episode that ended
            else:
                self._refresh(current, want, outcome)
            return
        for older in self._active_with_fingerprint(want.fingerprint):
            self._end(older, want.began, "Superseded", "The alert fired again; this "
                      "episode ended before it (its resolution was not received).")
            outcome.ended.append(older["metadata"]["name"])
        self._open(alert, want, outcome)

    def _open(self, alert: Alert, want: Wanted, outcome: Outcome) -> None:
        affects = self._affects(want, outcome)
        body = {"apiVersion": INCIDENT.api_version, "kind": INCIDENT.kind,
                "metadata": {"name": want.name, "labels": {
                    SOURCE_LABEL: SOURCE, FINGERPRINT_LABEL: want.fingerprint},
                    "annotations": {DIGEST_ANNOTATION: _digest_text(_digest(want, affects))}},
                "spec": {"displayName": want.display_name, "description": want.description,
                         "beganAt": want.began, "affects": affects}}
        # 409 AlreadyExists: another replica opened it just now; the retry refreshes it
        self.resources.create(INCIDENT, "", body, self.options)
        outcome.opened.append(want.name)
        log.info("alert %s (%s) opened incident %s", want.fingerprint,
                 alert.labels.get("alertname", ""), want.name)

    def _refresh(self, current: dict[str, Any], want: Wanted, outcome: Outcome) -> None:
        """Change the incident, with an update saying so, only if the alert changed since
        it was last applied (the digest annotation): a status editor's own edits of the
        incident stay until the alert itself says something new."""
        spec, meta = current["spec"], current["metadata"]
        affects = self._affects(want, outcome)
        digest = _digest(want, affects)
        applied = dict(p.split(":", 1) for p in meta.get("annotations", {}).get(
            DIGEST_ANNOTATION, "").split(",") if ":" in p)
        changes = [what for what, value in digest.items() if applied.get(what) != value]
        if not changes:
            outcome.unchanged.append(want.name)
            return
        spec.update(displayName=want.display_name, description=want.description,
                    affects=affects)
        meta.setdefault("annotations", {})[DIGEST_ANNOTATION] = _digest_text(digest)
        _add_update(spec, want.display_name, f"The alert changed ({', '.join(changes)}). "
                    f"{want.description}".strip())
        self.resources.update(INCIDENT, "", want.name, current, self.options)
        outcome.updated.append(want.name)

    def resolve(self, alert: Alert, want: Wanted, outcome: Outcome) -> None:
        current = self._get(want.name)
        targets = [current] if current is not None and not current["spec"].get("endedAt") \
            else [] if current is not None else self._active_with_fingerprint(want.fingerprint)
        if not targets:
            outcome.ignored.append(want.name)  # ended already, or never seen firing
            return
        ended = format_time(alert.endsAt) if alert.endsAt and alert.endsAt.year > 1 else \
            format_time(datetime.now(UTC))
        for incident in targets:
            self._end(incident, ended, "Resolved", "The alert resolved.")
            outcome.ended.append(incident["metadata"]["name"])

    def _end(self, incident: dict[str, Any], at: str, title: str, text: str) -> None:
        spec = incident["spec"]
        began = spec.get("beganAt")
        spec["endedAt"] = max(at, began) if began and _comparable(at, began) else at
        _add_update(spec, title, text)
        name = incident["metadata"]["name"]
        self.resources.update(INCIDENT, "", name, incident, self.options)
        if self._active is not None:
            for fingerprint, items in self._active.items():
                self._active[fingerprint] = [i for i in items if i["metadata"]["name"] != name]


def _digest(want: Wanted, affects: list[dict[str, Any]]) -> dict[str, str]:
    """Short hashes of what the alert says, per part (the update names what changed)."""
    parts = {"summary": want.display_name, "description": want.description,
             "impact": repr(affects)}
    return {k: hashlib.sha256(v.encode()).hexdigest()[:12] for k, v in parts.items()}


def _digest_text(digest: dict[str, str]) -> str:
    return ",".join(f"{k}:{v}" for k, v in digest.items())


def _comparable(a: str, b: str) -> bool:
    """Both written by :func:`format_time` (UTC, milliseconds): string order is time order."""
    return len(a) == len(b) and a.endswith("Z") and b.endswith("Z")


def _add_update(spec: dict[str, Any], title: str, text: str) -> None:
    updates = spec.setdefault("updates", [])
    if len(updates) >= MAX_UPDATES:
        del updates[0]  # the oldest goes: an alert changing for months keeps its latest
    order = max((u["order"] for u in updates), default=-1) + 1
    updates.append({"order": order, "displayName": title[:MAX_NAME_TEXT],
                    "description": text[:MAX_TEXT],
                    "createdAt": format_time(datetime.now(UTC))})


# -- the HTTP side -------------------------------------------------------------------------
async def read_limited(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge",
                    f"the notification is too large (limit {limit} bytes); lower the "
                    "receiver's max_alerts in the Alertmanager configuration")


def alertmanager_receiver(config: AlertmanagerConfig) -> Mount:
    """The mount answering ``POST /webhooks/alertmanager``: a token (Alertmanager's
    ``authorization.credentials_file``) allowed to create and update incidents."""

    async def receive(request: Request, api: CentralApi) -> Response:
        request.state.info = RequestInfo(True, "create", api_group=GROUP,
                                         api_version="v1alpha1", resource=INCIDENT.plural)
        user = await api.identify(request)
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        for verb in ("create", "update"):
            api.authorize(Attributes(user, verb, GROUP, INCIDENT.plural), request)
        if request.url.path != PATH:
            raise errors.not_found("", "")
        if request.method != "POST":
            raise errors.method_not_allowed(f"{request.method} is not supported; Alertmanager "
                                            "POSTs its notifications")
        notification = parse_notification(await read_limited(request))
        alerts = [(a, wanted(a, config)) for a in notification.alerts]
        writer = IncidentWriter(api.ctx.resources, WriteOptions(field_manager=FIELD_MANAGER,
                                                                user=user))
        # In a worker thread on every store (the stores are thread-safe): a notification
        # may carry a thousand alerts, seconds of writes that must not stall the event loop
        # even where single store calls run on it (SQLite)
        outcome = await asyncio.to_thread(writer.apply, alerts)
        notes = {"alertmanager-receiver": notification.receiver, "alerts": str(len(alerts)),
                 "opened": ",".join(outcome.opened), "updated": ",".join(outcome.updated),
                 "ended": ",".join(outcome.ended)}
        request.state.audit_annotations = {f"{AUDIT_PREFIX}{k}": v for k, v in notes.items()
                                           if v}
        if outcome.unknown:
            log.warning("alerts name unknown status objects (incidents opened without that "
                        "impact): %s", ", ".join(sorted(outcome.unknown)))
        return json_response(outcome.summary())

    return receive
