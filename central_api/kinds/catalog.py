"""The catalog of served resource types: built-in kinds plus those of applied CRDs.

Discovery, OpenAPI and request routing all read from here, so a CRD that becomes established
shows up everywhere at once. ``generation`` changes on every change, which lets discovery and
OpenAPI documents be cached and given ETags.

Reads are answered from an index built once per change (:class:`_Index`) instead of a scan of
every type: with 500 CRDs served, the informers' ``by_storage_resource`` on every event and
discovery's ``in_version`` per group had each become a scan (and a sort) of a thousand types.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .kind import ResourceType


class _Index:
    """Every way the catalog is read, computed from one snapshot of its types."""

    def __init__(self, types: Iterable[ResourceType]) -> None:
        self.all = sorted(types, key=lambda rt: (rt.group, rt.version, rt.plural))
        self.in_version: dict[tuple[str, str], list[ResourceType]] = {}
        by_group: dict[str, list[ResourceType]] = {}
        by_resource: dict[str, list[ResourceType]] = {}
        for rt in self.all:
            self.in_version.setdefault((rt.group, rt.version), []).append(rt)
            by_group.setdefault(rt.group, []).append(rt)
            by_resource.setdefault(rt.storage_resource, []).append(rt)
        self.versions = {group: _preferred_first(types) for group, types in by_group.items()}
        self.groups = sorted(by_group, key=lambda g: (g != "", g))
        self.by_storage_resource = {resource: _storage_type(matches)
                                    for resource, matches in by_resource.items()}
        self.namespaced_storage_resources = sorted(
            {rt.storage_resource for rt in self.all if rt.namespaced})


def _preferred_first(types: list[ResourceType]) -> list[str]:
    """Versions of one group, the storage version first."""
    ordered = sorted(types, key=lambda rt: (not rt.storage_version, rt.version))
    return list(dict.fromkeys(rt.version for rt in ordered))


def _storage_type(matches: list[ResourceType]) -> ResourceType:
    preferred = [rt for rt in matches if rt.storage_version]
    return (preferred or matches)[0]


class Catalog:
    def __init__(self, builtins: Iterable[ResourceType] = ()) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._by_crd: dict[str, list[ResourceType]] = {}
        self._index: _Index | None = None
        self.generation = 0
        for rt in builtins:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    @property
    def _view(self) -> _Index:
        """The index of the current types, built on the first read after a change."""
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    self._index = _Index(self._types.values())
                index = self._index
        return index

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def require(self, group: str, version: str, plural: str) -> ResourceType:
        """A kind the server cannot work without (e.g. namespaces)."""
        rt = self.lookup(group, version, plural)
        if rt is None:
            raise LookupError(f"{plural}.{group or 'core'}/{version} is not served")
        return rt

    def all(self) -> list[ResourceType]:
        return list(self._view.all)

    def versions(self, group: str) -> list[str]:
        """Served versions of a group, preferred (storage) version first."""
        return list(self._view.versions.get(group, ()))

    def groups(self) -> list[str]:
        return list(self._view.groups)

    def in_version(self, group: str, version: str) -> list[ResourceType]:
        return list(self._view.in_version.get((group, version), ()))

    def by_storage_resource(self, resource: str) -> ResourceType | None:
        """The storage version's type for a store key prefix (``core/secrets``)."""
        return self._view.by_storage_resource.get(resource)

    def namespaced_storage_resources(self) -> list[str]:
        return list(self._view.namespaced_storage_resources)

    def conflicts_with(self, group: str, plural: str, crd_name: str) -> bool:
        """True when (group, plural) is served by something other than this CRD."""
        owner = self._by_crd.get(crd_name, [])
        view = self._view
        return any(rt.plural == plural and all(rt is not own for own in owner)
                   for version in view.versions.get(group, ())
                   for rt in view.in_version[(group, version)])

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
            self._index = None
            self.generation += 1
