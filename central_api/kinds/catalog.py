"""The catalog of served resource types: built-in kinds plus those of applied CRDs.

Discovery, OpenAPI and request routing all read from here, so a CRD that becomes established
shows up everywhere at once. ``generation`` changes on every change, which lets discovery and
OpenAPI documents be cached and given ETags.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .kind import ResourceType


class Catalog:
    def __init__(self, builtins: Iterable[ResourceType] = ()) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._by_crd: dict[str, list[ResourceType]] = {}
        self.generation = 0
        for rt in builtins:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def require(self, group: str, version: str, plural: str) -> ResourceType:
        """A kind the server cannot work without (e.g. namespaces)."""
        rt = self.lookup(group, version, plural)
        if rt is None:
            raise LookupError(f"{plural}.{group or 'core'}/{version} is not served")
        return rt

    def all(self) -> list[ResourceType]:
        return sorted(self._types.values(), key=lambda rt: (rt.group, rt.version, rt.plural))

    def versions(self, group: str) -> list[str]:
        """Served versions of a group, preferred (storage) version first."""
        types = [rt for rt in self._types.values() if rt.group == group]
        ordered = sorted(types, key=lambda rt: (not rt.storage_version, rt.version))
        return list(dict.fromkeys(rt.version for rt in ordered))

    def groups(self) -> list[str]:
        return sorted({rt.group for rt in self._types.values()}, key=lambda g: (g != "", g))

    def in_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.all() if rt.group == group and rt.version == version]

    def by_storage_resource(self, resource: str) -> ResourceType | None:
        """The storage version's type for a store key prefix (``core/secrets``)."""
        matches = [rt for rt in self._types.values() if rt.storage_resource == resource]
        preferred = [rt for rt in matches if rt.storage_version]
        found = preferred or matches
        return found[0] if found else None

    def namespaced_storage_resources(self) -> list[str]:
        return sorted({rt.storage_resource for rt in self._types.values() if rt.namespaced})

    def conflicts_with(self, group: str, plural: str, crd_name: str) -> bool:
        """True when (group, plural) is served by something other than this CRD."""
        owner = [rt for name, rts in self._by_crd.items() if name == crd_name for rt in rts]
        return any(rt.group == group and rt.plural == plural and rt not in owner
                   for rt in self._types.values())

    def crd_names(self) -> list[str]:
        return list(self._by_crd)

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        """Serve exactly ``types`` for the CRD ``crd_name`` (empty list: stop serving)."""
        with self._lock:
            for rt in self._by_crd.pop(crd_name, []):
                self._types.pop((rt.group, rt.version, rt.plural), None)
            for rt in types:
                self._types[(rt.group, rt.version, rt.plural)] = rt
            if types:
                self._by_crd[crd_name] = types
            self.generation += 1
