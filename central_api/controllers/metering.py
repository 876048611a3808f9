"""The accountant: usage rows as a fold over the store's revision log (issue 16).

Three halves, the first two pure (no I/O; times passed in as integer microseconds), so the
rules are unit-tested exactly with fixed stamps (tests/unit/test_metering_fold.py):

* :func:`metered_state` — what one revision of a metered object is billed as: a tuple of
  :class:`~..kinds.metering.Meter` (a Server's flavor, a Volume's type and size, a
  FloatingIP or LoadBalancer being there, a Cluster's pools and control plane) or None.
  The rules (docs/metering.md):

  - metering starts at the first revision where the object is Ready — its ``Ready``
    condition True *and* observed for the object's current ``metadata.generation``;
  - a spec change (a resize) counts from the revision where Ready is True again with
    ``observedGeneration == generation``: the controller applied it. Until then the
    previous state stays;
  - Ready False after the start (an outage, a failed resize) does not stop metering: the
    backend resource still exists and still costs;
  - metering ends at the revision that sets ``metadata.deletionTimestamp`` (the user's
    delete), or at the DELETED event if there was none.

* :func:`fold` and :func:`close_hours` — the open state of every metered object and the
  usage rows that close: a state change at stamp *t* closes the open interval at *t* and
  opens the new one at *t*; intervals are cut at full UTC hours; when the clock has passed
  an hour boundary by :data:`GRACE_US`, open intervals are closed there, so rows for past
  hours of running resources appear within a minute.

* :class:`Accountant` — the leader-only loop (``Manager.runnables``): reads the events after
  the ledger's cursor, folds them, and commits the rows, the changed open states and the
  new cursor in one ledger transaction with a compare-and-set on the cursor. A crash, a
  restart or a leader change resumes from the committed cursor and states, so nothing is
  lost or counted twice; two leaders for a moment lose the compare-and-set, not rows.

Decisions the design left open:

* Why :data:`GRACE_US`: a write's stamp is taken inside its transaction, before it commits,
  so an event may become visible shortly after the clock passed its stamp. Hours are closed
  only once the clock is 15 s past the boundary and the fold has read every committed event;
  an event arriving later than that with a stamp before the closed boundary (a write
  transaction open for more than 15 s) is counted from the boundary instead of its stamp:
  the only inexact case, and it can only shorten a state by the late part.
* The tenant of a row is the tenant label of the object's namespace when its state opens
  (kept in the open state, so a row closed after the namespace was deleted keeps it).
* A first start on a store that was already compacted cannot replay history: the objects
  Ready then are opened at that moment (``bootstrap``), and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..auth.tenants import tenant_label
from ..kinds.metering import (
    CONTROL_PLANE_FLAVOR,
    HOUR_US,
    Meter,
    Usage,
    split_hours,
    to_us,
)
from ..machinery.clock import now
from ..store.base import Compacted, Event, Key, KeyExists, KeyNotFound, Store

log = logging.getLogger("central_api.metering")

METERED: dict[str, str] = {
    "iaas.scs.community/servers": "Server",
    "iaas.scs.community/volumes": "Volume",
    "iaas.scs.community/floatingips": "FloatingIP",
    "iaas.scs.community/loadbalancers": "LoadBalancer",
    "kaas.scs.community/clusters": "Cluster",
}
"""Store resource → kind, of every kind the accountant meters."""
GRACE_US = 15_000_000
TICK = Key("metering/ticks", "", "accountant")
"""The record the accountant rewrites to move its cursor when the log is idle (_tick)."""
BATCH = 1000
INTERVAL_SECONDS = 2.0

State = tuple[Meter, ...]


# -- metered state per kind, pure ------------------------------------------------------------
def measure(kind: str, obj: dict[str, Any]) -> State:
    """What an applied, Ready object of ``kind`` is billed as (the spec its controller
    applied and the status it observed)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Server":
        return (Meter(flavor=str(status.get("flavor") or spec.get("flavor") or "")),)
    if kind == "Volume":
        return (Meter(volume_type=str(spec.get("volumeType") or "default"),
                      size_gib=int(spec.get("sizeGiB") or 0)),)
    if kind == "Cluster":
        return _cluster(spec, status)
    return (Meter(),)


def _cluster(spec: dict[str, Any], status: dict[str, Any]) -> State:
    """The control plane unless hosted, and every pool with nodes: the nodes the backend
    reports it wants (autoscaled pools move), else the spec's replicas."""
    meters = []
    plane = spec.get("controlPlane") or {}
    if not plane.get("hosted"):
        meters.append(Meter(part="control-plane", flavor=CONTROL_PLANE_FLAVOR,
                            count=int(plane.get("replicas") or 1)))
    wanted = {str(p.get("name")): int(p.get("desiredReplicas") or 0)
              for p in status.get("nodePools") or []}
    for pool in spec.get("nodePools") or []:
        name = str(pool.get("name"))
        nodes = wanted.get(name)
        if nodes is None:
            nodes = pool.get("replicas")
            nodes = int(nodes if nodes is not None else (pool.get("autoscaling") or {})
                        .get("min") or 0)
        if nodes > 0:
            meters.append(Meter(part=f"pool/{name}", flavor=str(pool.get("flavor") or ""),
                                count=nodes))
    return tuple(meters)


def applied_ready(obj: dict[str, Any]) -> bool:
    """Ready True, observed for the current generation (the controller applied the spec)."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or []
                  if isinstance(c, dict) and c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        return False
    observed = ready.get("observedGeneration")
    if observed is None:
        observed = status.get("observedGeneration")
    return observed is None or observed == meta.get("generation")


def metered_state(kind: str, obj: dict[str, Any], deleted: bool,
                  previous: State | None) -> State | None:
    """The state one revision is billed as, given the state before it (module docstring)."""
    if deleted or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if applied_ready(obj):
        return measure(kind, obj) or None
    return previous


# -- the fold, pure ----------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenState:
    """The open interval of one metered object: its state since ``since_us``."""

    uid: str
    kind: str
    namespace: str
    name: str
    tenant: str
    meters: State
    since_us: int

    def to_json(self) -> dict[str, Any]:
        return {"uid": self.uid, "kind": self.kind, "namespace": self.namespace,
                "name": self.name, "tenant": self.tenant, "since_us": self.since_us,
                "meters": [m.to_json() for m in self.meters]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpenState:
        return cls(uid=str(data["uid"]), kind=str(data["kind"]),
                   namespace=str(data["namespace"]), name=str(data["name"]),
                   tenant=str(data.get("tenant", "")), since_us=int(data["since_us"]),
                   meters=tuple(Meter.from_json(m) for m in data["meters"]))


@dataclass(frozen=True)
class Change:
    """One revision of a metered object, as the fold needs it."""

    stamp_us: int
    kind: str
    deleted: bool
    obj: dict[str, Any]


@dataclass
class Folded:
    """What a fold produced: closed rows and the open states it changed (None: closed)."""

    rows: list[Usage] = field(default_factory=list)
    changed: dict[str, OpenState | None] = field(default_factory=dict)


def close(state: OpenState, end_us: int) -> list[Usage]:
    """The rows of ``state`` from its start to ``end_us``, one per meter per hour piece."""
    return [Usage(state.tenant, state.namespace, state.kind, state.name, state.uid, meter,
                  start, end)
            for start, end in split_hours(state.since_us, end_us) for meter in state.meters]


def fold(states: dict[str, OpenState], changes: Iterable[Change],
         tenant_of: Callable[[str], str]) -> Folded:
    """Apply ``changes`` (in revision order) to the open ``states`` (changed in place)."""
    out = Folded()
    for change in changes:
        _apply(states, change, tenant_of, out)
    return out


def _apply(states: dict[str, OpenState], change: Change, tenant_of: Callable[[str], str],
           out: Folded) -> None:
    meta = change.obj.get("metadata") or {}
    uid = str(meta.get("uid") or "")
    if not uid:
        return
    current = states.get(uid)
    new = metered_state(change.kind, change.obj, change.deleted,
                        current.meters if current else None)
    if new == (current.meters if current else None):
        return
    at = change.stamp_us if current is None else max(change.stamp_us, current.since_us)
    if current is not None:
        out.rows += close(current, at)
    if new is None:
        states.pop(uid, None)
        out.changed[uid] = None
        return
    namespace = str(meta.get("namespace") or "")
    opened = OpenState(uid, change.kind, namespace, str(meta.get("name") or ""),
                       current.tenant if current else tenant_of(namespace), new, at)
    states[uid] = opened
    out.changed[uid] = opened


def close_hours(states: dict[str, OpenState], now_us: int, out: Folded) -> None:
    """Close every open interval at the last full hour the clock passed by the grace."""
    boundary = (now_us - GRACE_US) // HOUR_US * HOUR_US
    for uid, state in list(states.items()):
        if state.since_us < boundary:
            out.rows += close(state, boundary)
            states[uid] = replace(state, since_us=boundary)
            out.changed[uid] = states[uid]


# -- the loop ----------------------------------------------------------------------------------
class Ledger(Protocol):
    """The accountant's side of the ledger (``store/ledger.py``); blocking calls."""

    def cursor(self) -> int: ...

    def open_states(self) -> dict[str, dict[str, Any]]: ...

    def commit_fold(self, expected_cursor: int, new_cursor: int, rows: list[Usage],
                    open_states: dict[str, dict[str, Any] | None]) -> object:
        """Rows, changed open states (None: closed) and the cursor in one transaction;
        raises when the cursor is no longer ``expected_cursor``."""


def changes(events: Iterable[Event], now_us: int) -> list[Change]:
    """The metered objects' revisions among ``events``; a revision without a stamp (written
    before stamps existed) counts as now."""
    return [Change(to_us(e.stamp) if e.stamp else now_us, METERED[e.key.resource],
                   e.type == "DELETED", e.object)
            for e in events if e.key.resource in METERED]


class Accountant:
    """The leader-only loop: fold the log after the ledger's cursor into usage rows."""

    def __init__(self, store: Store, ledger: Ledger, clock: Callable[[], float] = now,
                 interval: float = INTERVAL_SECONDS) -> None:
        self.store = store
        self.ledger = ledger
        self.clock = clock
        self.interval = interval
        self._tenants: dict[str, str] = {}

    async def run(self) -> None:
        """Step until cancelled; a failing step (the store away, a lost compare-and-set) is
        logged and retried from the committed cursor."""
        while True:
            try:
                busy = await asyncio.to_thread(self.step)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried from the committed state
                log.warning("metering: accounting step failed, retrying: %s", exc)
                busy = False
            if not busy:
                await asyncio.sleep(self.interval)

    def step(self) -> bool:
        """One fold and commit; True when more events are waiting (step again at once)."""
        cursor = self.ledger.cursor()
        states = {uid: OpenState.from_json(s) for uid, s in self.ledger.open_states().items()}
        now_us = to_us(self.clock())
        try:
            events = self.store.events_since(cursor, BATCH)
        except Compacted as exc:
            return self._bootstrap(cursor, states, exc, now_us)
        out = fold(states, changes(events, now_us), self._tenant_of)
        caught_up = len(events) < BATCH
        if caught_up:
            close_hours(states, now_us, out)
        new_cursor = events[-1].revision if events else cursor
        if new_cursor == cursor and (out.rows or out.changed):
            self._tick()  # close the hours on the next step, past the tick (see _tick)
            return True
        if out.rows or out.changed or new_cursor != cursor:
            self.ledger.commit_fold(cursor, new_cursor, out.rows, _json(out.changed))
        return not caught_up

    def _tick(self) -> None:
        """Write a revision for the next step to fold past.

        Why: hours closed with no new event would commit with ``expected_cursor ==
        new_cursor``, a compare-and-set that cannot fail — a second leader for a moment
        (the old one not yet aware that its lease expired), having read the same cursor and
        open states, would append the same closed hours again. Folding past a revision of
        its own makes every commit move the cursor, so exactly one of them wins. Needed
        only while the log is idle (no writes, not even lease renewals, since the last
        step): at most once per hour and leader."""
        record = {"name": TICK.name, "purpose": "metering: the accountant's cursor moves"}
        try:
            self.store.update(TICK, record, None)
        except KeyNotFound:
            try:
                self.store.create(TICK, record)
            except KeyExists:
                pass  # another accountant's tick: as good as ours

    def _bootstrap(self, cursor: int, states: dict[str, OpenState], exc: Compacted,
                   now_us: int) -> bool:
        """The log after the cursor is gone (metering turned on for an existing store):
        open every metered object Ready now, from now."""
        log.warning("metering: the store was compacted past the accountant's cursor (%s); "
                    "metering the objects Ready now from now on", exc)
        revision = self.store.current_revision()
        out = Folded()
        for resource, kind in METERED.items():
            for obj in self.store.iter_list(resource, None, revision, None, 500):
                fold(states, [Change(now_us, kind, False, obj)], self._tenant_of).rows.clear()
                uid = str(obj["metadata"].get("uid") or "")
                if uid in states:
                    out.changed[uid] = states[uid]
        self.ledger.commit_fold(cursor, revision, [], _json(out.changed))
        return True

    def _tenant_of(self, namespace: str) -> str:
        if namespace not in self._tenants:
            try:
                ns = self.store.get(Key("core/namespaces", "", namespace))
            except KeyNotFound:
                return ""
            self._tenants[namespace] = tenant_label(ns) or ""
        return self._tenants[namespace]


def _json(changed: dict[str, OpenState | None]) -> dict[str, dict[str, Any] | None]:
    return {uid: None if s is None else s.to_json() for uid, s in changed.items()}


# -- what the API reads ------------------------------------------------------------------------
class LedgerUsage:
    """The ledger as ``server/usage.py`` reads it (its ``UsageSource``): stored rows, and
    the open parts of running objects up to now from the accountant's open states."""

    def __init__(self, ledger: Any, clock: Callable[[], float] = now) -> None:
        self.ledger = ledger
        """A :class:`~..store.ledger.Ledger` (rows, row, open_states, summary ...)."""
        self.clock = clock

    def rows(self, namespace: str | None, after_seq: int, limit: int) -> list[dict[str, Any]]:
        return [_row(r) for r in self.ledger.rows(namespace=namespace, after_seq=after_seq,
                                                   limit=limit)]

    def row(self, seq: int) -> dict[str, Any] | None:
        found = self.ledger.row(seq)
        return None if found is None else _row(found)

    def open_rows(self, namespace: str | None) -> list[dict[str, Any]]:
        now_us = to_us(self.clock())
        found = []
        for uid in sorted(states := self.ledger.open_states()):
            state = OpenState.from_json(states[uid])
            if namespace is not None and state.namespace != namespace:
                continue
            for index, meter in enumerate(state.meters):
                end_us = max(now_us, state.since_us)
                found.append({"seq": 0, "index": index, "tenant": state.tenant,
                              "namespace": state.namespace, "kind": state.kind,
                              "name": state.name, "uid": state.uid, "meter": meter,
                              "start": state.since_us / 1e6, "end": end_us / 1e6,
                              "seconds": (end_us - state.since_us) / 1e6})
        return found

    def summary(self, tenant: str, start: float, end: float) -> dict[str, Any]:
        stored = self.ledger.summary(tenant, start, end)
        groups = [{"kind": g.kind, "part": g.part, "flavor": g.flavor,
                   "volume_type": g.volume_type, "seconds": g.seconds,
                   "gib_seconds": g.gib_seconds, "count_seconds": g.count_seconds}
                  for g in stored]
        rows = sum(g.rows for g in stored)
        lo, hi = to_us(start), to_us(end)
        for row in self.open_rows(None):
            if row["tenant"] != tenant:
                continue
            meter: Meter = row["meter"]
            seconds = max(0, min(hi, to_us(row["end"])) - max(lo, to_us(row["start"]))) / 1e6
            if seconds > 0:
                rows += 1
                groups.append({"kind": row["kind"], "part": meter.part,
                               "flavor": meter.flavor, "volume_type": meter.volume_type,
                               "seconds": seconds, "gib_seconds": meter.size_gib * seconds,
                               "count_seconds": meter.count * seconds})
        samples = [{"counterName": s.counter_name, "unit": s.unit, "volume": s.volume,
                    "samples": s.samples}
                   for s in self.ledger.sample_summary(tenant, start, end)]
        return {"groups": groups, "rows": rows, "ceilometer": samples}


def _row(row: Any) -> dict[str, Any]:
    return {"seq": row.seq, "tenant": row.tenant, "namespace": row.namespace,
            "kind": row.kind, "name": row.name, "uid": row.uid,
            "meter": Meter(row.part, row.flavor, row.volume_type, row.size_gib, row.count),
            "start": row.start, "end": row.end, "seconds": row.seconds}
