"""GET and LIST answered from the watch caches (:mod:`..registry.watchcache`).

The handlers ask here first; None means "read the store": a cache still filling, a
consistent read the hub did not catch up with in time, a continue token at a revision whose
state the cache no longer holds, or an Exact resourceVersion of the past. The store's answer
is the same (the caches follow its log), only slower, so falling back is always correct.

Continue tokens: a page is served from the cache when the resource has not changed since the
token's revision (the cache then holds exactly that snapshot). Otherwise the store reads the
snapshot as before: it keeps every revision until compaction (410 after), whereas the cache
would need a copy of every changed object per open pagination to do the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..kinds.kind import ResourceType
from ..machinery import errors
from ..registry.resources import ListOptions
from ..registry.watchcache import CachedObject, Selection, WatchCaches, served_prefix
from ..store.base import decode_continue, encode_continue

Entries = list[tuple[str, str, CachedObject]]


def selection(rt: ResourceType, namespace: str | None, opts: ListOptions,
              after: tuple[str, str] | None = None) -> Selection:
    """What a list or watch selects, as :meth:`Resources.list` reads it from the store: a
    field selector may pin the name and the namespace."""
    ns = namespace if rt.namespaced else None
    fields = opts.field_selector
    name = fields.exact("metadata.name") if fields else None
    if fields and (only_ns := fields.exact("metadata.namespace")):
        ns = only_ns if ns is None or ns == only_ns else "\0"
    return Selection(ns, name, opts.label_selector, fields, after, opts.limit)


@dataclass
class CachedList:
    """A list read from a cache, rendered without decoding its objects."""

    rt: ResourceType
    entries: Entries
    metadata: dict[str, Any]

    def document(self) -> bytes:
        """The list's JSON: the cached bytes of its items joined."""
        rt = self.rt
        head = (b'{"kind":' + orjson.dumps(rt.list_kind) + b',"apiVersion":'
                + orjson.dumps(rt.api_version) + b',"metadata":' + orjson.dumps(self.metadata)
                + b',"items":[')
        if not self.entries:
            return head + b"]}"
        prefix = served_prefix(rt.api_version, rt.kind)
        return (head + prefix + (b"," + prefix).join([e.body for _, _, e in self.entries])
                + b"]}")

    def objects(self) -> list[dict[str, Any]]:
        """The items decoded (for Table rows): CPU in proportion to the list."""
        prefix = served_prefix(self.rt.api_version, self.rt.kind)
        return [orjson.loads(prefix + entry.body) for _, _, entry in self.entries]


class CachedReads:
    def __init__(self, caches: WatchCaches) -> None:
        self.caches = caches

    async def get(self, rt: ResourceType, namespace: str, name: str,
                  resource_version: str) -> bytes | None:
        """The object's served JSON; 404 if the cache knows it does not exist."""
        cache = await self.caches.reader(rt.storage_resource, resource_version)
        if cache is None:
            return None
        entry = cache.get(namespace if rt.namespaced else "", name)
        if entry is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return served_prefix(rt.api_version, rt.kind) + entry.body

    async def list(self, rt: ResourceType, namespace: str | None,
                   opts: ListOptions) -> CachedList | None:
        resource = rt.storage_resource
        after: tuple[str, str] | None = None
        if opts.continue_token:
            try:
                revision, after = decode_continue(opts.continue_token)
            except ValueError:
                return None  # the store's path answers 400
            cache = await self.caches.at(resource, revision)
        else:
            exact = opts.resource_version_match == "Exact"
            cache = await self.caches.reader(resource, opts.resource_version, exact)
            # no await from here on: the hub's revision is the state the cache holds
            revision = int(opts.resource_version) if exact else self.caches.hub.revision
        if cache is None:
            return None
        entries, last = cache.select(selection(rt, namespace, opts, after))
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if last is not None:
            meta["continue"] = encode_continue(revision, last)
        return CachedList(rt, entries, meta)
