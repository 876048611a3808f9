"""The status kinds as the status-page API reads them: the process's shared informers, plus
an index by UID (the API's ids) and the set of incidents without an end.

Every read of the API is answered from memory: a GET by id is one dict lookup, and
``GET /components`` without ``?at=`` looks only at the unended incidents, not at the
thousands of past ones, so a public status page under load never touches the store.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

from ...kinds.status import COMPONENT, IMPACT_TYPE, INCIDENT, PHASE_LIST, SEVERITY
from ...registry.informers import Handlers, Informer, Informers

Object = dict[str, Any]
KINDS = {rt.plural: rt for rt in (COMPONENT, IMPACT_TYPE, INCIDENT, PHASE_LIST, SEVERITY)}


@dataclass
class UidIndex:
    """metadata.uid → metadata.name of one kind, kept by the informer's handlers."""

    names: dict[str, str] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)

    def handlers(self) -> Handlers:
        return Handlers(on_add=self.add, on_update=lambda _old, new: self.add(new),
                        on_delete=self.remove)

    def add(self, obj: Object) -> None:
        meta = obj["metadata"]
        self.names[meta["uid"]] = meta["name"]
        self.uids[meta["name"]] = meta["uid"]

    def remove(self, obj: Object) -> None:
        meta = obj["metadata"]
        self.names.pop(meta["uid"], None)
        if self.uids.get(meta["name"]) == meta["uid"]:
            del self.uids[meta["name"]]


@dataclass
class Unended:
    """Names of the incidents whose endedAt is null (the active ones, for the status page)."""

    names: set[str] = field(default_factory=set)

    def handlers(self) -> Handlers:
        return Handlers(on_add=self.track, on_update=lambda _old, new: self.track(new),
                        on_delete=lambda obj: self.names.discard(obj["metadata"]["name"]))

    def track(self, obj: Object) -> None:
        name = obj["metadata"]["name"]
        if (obj.get("spec") or {}).get("endedAt"):
            self.names.discard(name)
        else:
            self.names.add(name)


class StatusIndex:
    """The informers of the five status kinds and the indexes over them."""

    def __init__(self, informers: Informers) -> None:
        self.informers = {plural: informers.informer(rt.storage_resource)
                          for plural, rt in KINDS.items()}
        self.by_uid = {plural: UidIndex() for plural in ("components", "impacttypes",
                                                         "incidents")}
        for plural, index in self.by_uid.items():
            self.informers[plural].add_handlers(index.handlers())
        self.unended = Unended()
        self.informers["incidents"].add_handlers(self.unended.handlers())

    def informer(self, plural: str) -> Informer:
        return self.informers[plural]

    def get(self, plural: str, name: str) -> Object | None:
        return self.informers[plural].get("", name)

    def list(self, plural: str) -> list[Object]:
        return self.informers[plural].list("")

    def by_id(self, plural: str, uid: str) -> Object | None:
        name = self.by_uid[plural].names.get(uid)
        return None if name is None else self.get(plural, name)

    def uid_of(self, plural: str, name: str) -> str | None:
        return self.by_uid[plural].uids.get(name)

    def name_of(self, plural: str, uid: str) -> str | None:
        return self.by_uid[plural].names.get(uid)

    def unended_incidents(self) -> builtins.list[Object]:
        found = (self.get("incidents", name) for name in list(self.unended.names))
        return [obj for obj in found if obj is not None]

    async def caught_up(self, plural: str, revision: int, timeout: float = 10.0) -> None:
        """Read-after-write: wait until the informer includes ``revision``."""
        await self.informers[plural].wait_for(revision, timeout)
