"""The status kinds as the status-page API reads them: the process's shared informers, plus
an index by UID (the API's ids), the incidents' times and the answers derived from them.

The API is public and anonymous, so every read must be cheap for the event loop: one
caller's ``GET /incidents`` must not hold up every other request. Work is therefore done
once, when the informer delivers a change, not on every read:

* each incident's begin and end are parsed on delivery, and incidents are kept sorted by
  begin and by end (plus the set without an end), so a time window is two bisections and a
  scan of the smaller side, not a parse of every incident;
* each incident's JSON view is rendered once and kept as pre-serialized bytes until the
  incident changes (or a Component or ImpactType comes or goes: their ids appear in it);
* answers that depend only on the index's state (the component list, impact types,
  severities, the current phase list) are kept per :attr:`StatusIndex.revision`, which
  every change of the five kinds moves on, so a busy status page costs a dict lookup.

Read-after-write holds: a write answers once the informer has its revision, and the
informer's handlers (which drop what the change makes stale) run before that.
"""

from __future__ import annotations

import bisect
import builtins
import logging
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson

from ...kinds.status import COMPONENT, IMPACT_TYPE, INCIDENT, PHASE_LIST, SEVERITY, parse_time
from ...registry.informers import Handlers, Informer, Informers, on_any_change

log = logging.getLogger("central_api.statuspage")

Object = dict[str, Any]
T = TypeVar("T")
KINDS = {rt.plural: rt for rt in (COMPONENT, IMPACT_TYPE, INCIDENT, PHASE_LIST, SEVERITY)}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """A time as integer microseconds since the epoch: exact, unlike a float timestamp
    (which rounds far-future times), and compared as fast."""
    return (at - EPOCH) // MICROSECOND


@dataclass
class UidIndex:
    """metadata.uid → metadata.name of one kind, kept by the informer's handlers."""

    names: dict[str, str] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)
    on_change: Callable[[], None] = lambda: None
    """Called when the uid ↔ name mapping changes (an object added or deleted)."""

    def handlers(self) -> Handlers:
        return Handlers(on_add=self.add, on_update=lambda _old, new: self.add(new),
                        on_delete=self.remove)

    def add(self, obj: Object) -> None:
        meta = obj["metadata"]
        if self.names.get(meta["uid"]) == meta["name"] and \
                self.uids.get(meta["name"]) == meta["uid"]:
            return
        self.names[meta["uid"]] = meta["name"]
        self.uids[meta["name"]] = meta["uid"]
        self.on_change()

    def remove(self, obj: Object) -> None:
        meta = obj["metadata"]
        self.names.pop(meta["uid"], None)
        if self.uids.get(meta["name"]) == meta["uid"]:
            del self.uids[meta["name"]]
        self.on_change()


@dataclass(eq=False, slots=True)
class IncidentEntry:
    """One incident as reads need it, computed when the informer delivers it."""

    obj: Object
    name: str
    uid: str
    began: float
    """Microseconds since the epoch; -inf when the begin is not known (it lasts back)."""
    ended: float | None
    """Microseconds since the epoch; None while active."""
    order: str
    """The API's list order as one string (compared faster than a tuple when sorting
    hundreds): oldest first, creationTimestamp, then name."""
    view: orjson.Fragment | None = None
    """The rendered JSON view (see ``views.incident_fragment``), valid for ``view_epoch``
    (set together: a current epoch means a view)."""
    view_epoch: int = -1

    @classmethod
    def of(cls, obj: Object) -> IncidentEntry:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        began = _micros_of(spec.get("beganAt"), meta["name"])
        ended = _micros_of(spec.get("endedAt"), meta["name"]) if spec.get("endedAt") else None
        return cls(obj, meta["name"], meta["uid"], -math.inf if began is None else began,
                   ended, f'{meta.get("creationTimestamp", "")}\0{meta["name"]}')


def _micros_of(value: str | None, name: str) -> int | None:
    """A stored time (the schema checked its format); one Python cannot read is taken as
    unknown rather than failing every read of the list."""
    if not value:
        return None
    try:  # the stored form (…Z) directly; parse_time for "z", ":60" and the like
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    try:
        parsed = parsed or parse_time(value)
    except ValueError:
        log.warning("incident %s: unreadable time %r taken as unknown", name, value)
        return None
    if parsed is None:
        return None
    return micros(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


_ORDER = operator.attrgetter("order")
"""The sort key (attrgetter: no Python call per item when sorting hundreds)."""


Row = tuple[float, str, float, "IncidentEntry"]
LAST = "\U0010ffff"
"""Sorts after every object name (bisect bounds)."""


class IncidentTimeline:
    """The incidents by name, sorted by begin and by end, and the ones without an end."""

    def __init__(self) -> None:
        self.entries: dict[str, IncidentEntry] = {}
        self.unended: dict[str, IncidentEntry] = {}
        self._by_began: list[Row] = []
        """(began, name, ended, entry) of the ended incidents: the other time is in the row
        so a scan reads no entry (names are unique: entries are never compared)."""
        self._by_ended: list[Row] = []
        """(ended, name, began, entry) of the ended incidents."""
        self._irregular: dict[str, IncidentEntry] = {}
        """Ended before they began (validation refuses that; kept out of the sorted lists,
        whose scans rely on began <= ended, and checked one by one)."""

    def handlers(self) -> Handlers:
        return Handlers(on_add=self.put, on_update=lambda _old, new: self.put(new),
                        on_delete=lambda obj: self.drop(obj["metadata"]["name"]))

    def put(self, obj: Object) -> None:
        self.drop(obj["metadata"]["name"])
        entry = IncidentEntry.of(obj)
        self.entries[entry.name] = entry
        if entry.ended is None:
            self.unended[entry.name] = entry
        elif entry.began > entry.ended:
            self._irregular[entry.name] = entry
        else:
            bisect.insort(self._by_began, (entry.began, entry.name, entry.ended, entry))
            bisect.insort(self._by_ended, (entry.ended, entry.name, entry.began, entry))

    def drop(self, name: str) -> None:
        entry = self.entries.pop(name, None)
        if entry is None:
            return
        if entry.ended is None:
            del self.unended[name]
        elif name in self._irregular:
            del self._irregular[name]
        else:
            _remove(self._by_began, (entry.began, name))
            _remove(self._by_ended, (entry.ended, name))

    def overlapping(self, start: float, end: float) -> builtins.list[IncidentEntry]:
        """The incidents in [start, end] (as the reference selects): begun by its end and
        not ended before its start, in the API's order.

        The ended ones come from whichever sorted list has fewer candidates: those begun by
        ``end`` (of which the ones begun from ``start`` on need no check: they ended after
        they began) or those ended from ``start`` on (the ones ended by ``end`` need no
        check)."""
        by_began, by_ended = self._by_began, self._by_ended
        began_by = bisect.bisect_right(by_began, (end, LAST))
        ended_from = bisect.bisect_left(by_ended, (start, ""))
        if began_by <= len(by_ended) - ended_from:
            began_from = bisect.bisect_left(by_began, (start, ""))
            found = [row[3] for row in by_began[:began_from] if row[2] >= start]
            found += [row[3] for row in by_began[began_from:began_by]]
        else:
            ended_by = bisect.bisect_right(by_ended, (end, LAST))
            found = [row[3] for row in by_ended[ended_from:ended_by]]
            found += [row[3] for row in by_ended[ended_by:] if row[2] <= end]
        found += [e for e in self.unended.values() if e.began <= end]
        found += [e for e in self._irregular.values() if e.began <= end
                  and e.ended is not None and e.ended >= start]
        found.sort(key=_ORDER)
        return found

    def active_at(self, at: float) -> builtins.list[IncidentEntry]:
        """The incidents active at ``at``: begun by then and not ended by then."""
        return [e for e in self.overlapping(at, at) if e.ended is None or e.ended > at]

    def active(self) -> builtins.list[IncidentEntry]:
        """The incidents whose endedAt is null (the reference server's "active")."""
        return sorted(self.unended.values(), key=_ORDER)


def _remove(items: list[Row], key: tuple[float, str]) -> None:
    at = bisect.bisect_left(items, key)
    if at < len(items) and items[at][:2] == key:
        del items[at]


class StatusIndex:
    """The informers of the five status kinds and the indexes over them."""

    def __init__(self, informers: Informers) -> None:
        self.informers = {plural: informers.informer(rt.storage_resource)
                          for plural, rt in KINDS.items()}
        self.revision = 0
        """Moves on with every change of the five kinds (see :meth:`memo`)."""
        self.views_epoch = 0
        """Moves on when a Component or ImpactType comes or goes: every incident view names
        their ids, so every rendered view is stale."""
        self._memo: dict[str, Any] = {}
        self.by_uid = {plural: UidIndex(on_change=self._views_stale)
                       for plural in ("components", "impacttypes")}
        self.by_uid["incidents"] = UidIndex()
        for plural, index in self.by_uid.items():
            self.informers[plural].add_handlers(index.handlers())
        self.incidents = IncidentTimeline()
        self.informers["incidents"].add_handlers(self.incidents.handlers())
        for informer in self.informers.values():
            informer.add_handlers(on_any_change(self._changed))

    def _views_stale(self) -> None:
        self.views_epoch += 1

    def _changed(self) -> None:
        self.revision += 1
        self._memo.clear()

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """``build()``, kept until the next change of any of the five kinds. ``build`` runs
        on the event loop and must only read the index (no await in between)."""
        if key not in self._memo:
            self._memo[key] = build()
        found: T = self._memo[key]
        return found

    def informer(self, plural: str) -> Informer:
        return self.informers[plural]

    def get(self, plural: str, name: str) -> Object | None:
        return self.informers[plural].get("", name)

    def list(self, plural: str) -> builtins.list[Object]:
        return self.informers[plural].list("")

    def by_id(self, plural: str, uid: str) -> Object | None:
        name = self.by_uid[plural].names.get(uid)
        return None if name is None else self.get(plural, name)

    def incident_by_id(self, uid: str) -> IncidentEntry | None:
        name = self.by_uid["incidents"].names.get(uid)
        return None if name is None else self.incidents.entries.get(name)

    def uid_of(self, plural: str, name: str) -> str | None:
        return self.by_uid[plural].uids.get(name)

    def name_of(self, plural: str, uid: str) -> str | None:
        return self.by_uid[plural].names.get(uid)

    async def caught_up(self, plural: str, revision: int, timeout: float = 10.0) -> None:
        """Read-after-write: wait until the informer includes ``revision``."""
        await self.informers[plural].wait_for(revision, timeout)
