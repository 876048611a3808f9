"""How controllers reach the API: one small async client interface, two implementations.

Reconcilers only use :class:`Client`, so the same controllers run in-process (``scs serve``,
:class:`LocalClient` straight on the registry, reading from the process's shared informers)
or as a separate process against any KRM API (``scs controllers``, :class:`HttpClient` with a
kubeconfig). Either way a controller follows its kind through an :class:`Informer`.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import orjson

from ..client import (
    ALL_NAMESPACES,
    ApiResource,
    AsyncClient,
    ConfigError,
    NotFound,
    TransportError,
    load_kubeconfig,
)
from ..client import Gone as SdkGone
from ..kinds.kind import ResourceType
from ..machinery import errors
from ..machinery.errors import ApiError
from ..registry.informers import Expired, Informer, Informers
from ..registry.resources import DeleteOptions, ListOptions, Resources, WriteOptions
from ..registry.watch import WatchHub
from ..store.offload import off_loop, off_loop_write

T = TypeVar("T")

MANAGER = "scs-controllers"
READ_AFTER_WRITE_WAIT = 1.0
"""How long a read waits for the informer to catch up with the client's own write before
it asks the registry instead (locally the event arrives within a few milliseconds)."""
WATCH_SECONDS = 600.0
"""How long one watch of :class:`HttpClient` lasts before its informer lists again."""
WRITTEN_LIMIT = 1024
"""Remembered own writes beyond which those the informers already hold are dropped."""


@dataclass(frozen=True)
class Kind(ApiResource):
    """Which resource a controller works on: an SDK :class:`ApiResource` without a model
    (controllers work on dicts), so its path (names quoted) and apiVersion are the SDK's and
    :class:`HttpClient` hands it to the SDK as it is."""


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: dict[str, Any]


class Client(Protocol):
    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def list(self, kind: Kind, namespace: str = "") -> tuple[list[dict[str, Any]], str]:
        """All objects (every namespace when ``namespace`` is empty) and the list's
        resourceVersion to watch from."""

    def watch(self, kind: Kind, resource_version: str) -> AsyncIterator[WatchEvent]: ...

    async def create(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def update(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace (optimistic: ``metadata.resourceVersion`` must be current, else 409)."""

    async def update_status(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete; a missing object is not an error."""

    def informer(self, kind: Kind) -> Informer:
        """The running cache of ``kind`` whose handlers tell a controller what changed."""


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class ClientListerWatcher:
    """A kind through a client's own list and watch: the informer of a controller that runs
    in its own process (``scs controllers``), where there is no watch hub to follow."""

    def __init__(self, client: Client, kind: Kind) -> None:
        self.client = client
        self.kind = kind

    async def list(self) -> tuple[list[dict[str, Any]], int]:
        items, revision = await self.client.list(self.kind)
        return items, int(revision)

    async def watch(self, revision: int) -> AsyncIterator[tuple[str, dict[str, Any], int]]:
        """Events until the server ends the stream (the informer then lists again)."""
        try:
            async for event in self.client.watch(self.kind, str(revision)):
                rv = event.object.get("metadata", {}).get("resourceVersion") or revision
                yield event.type, event.object, int(rv)
        except Gone as exc:
            raise Expired(str(exc)) from None


def private_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of a cached object that its reader may change: the cache's objects are shared
    by every reader (and by the watch hub's history). orjson copies a JSON document several
    times faster than ``copy.deepcopy``; what it cannot encode (integers beyond 64 bits, which
    the standard library's parser accepts) takes the slow way."""
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(obj))
        return copied
    except TypeError:
        return copy.deepcopy(obj)


class LocalClient:
    """In-process: writes go to the registry; reads of a kind the process keeps an informer
    for are answered from that cache (controller-runtime's cached client), others (Secrets,
    Leases) from the registry.

    A cached read returns a private copy, so a reconciler changing its object cannot corrupt
    what every other reader sees. It never goes back behind the client's own writes: a get
    of an object the client wrote (a list of a kind it wrote) waits until the informer holds
    that revision (a local write wakes the watch hub at once), and asks the registry if the
    informer does not get there within :data:`READ_AFTER_WRITE_WAIT`. Per object, not per
    kind: four workers writing status would otherwise make every read wait for the others'
    writes. Writes by others may be seen late, as with any informer; their events queue the
    object again."""

    def __init__(self, resources: Resources, hub: WatchHub,
                 informers: Informers | None = None) -> None:
        self.resources = resources
        self.hub = hub
        self.informers = informers or Informers(resources.catalog)
        """The process's shared informers; without them the client keeps its own."""
        self._written: dict[tuple[str, str, str], int] = {}
        """(storage resource, namespace, name) -> the revision of this client's latest write
        of the object, until a read found the informer past it."""
        self._latest: dict[str, int] = {}
        """Storage resource -> the revision of this client's latest write of the kind."""

    def _type(self, kind: Kind) -> Any:
        return self.resources.catalog.require(kind.group, kind.version, kind.plural)

    def _opts(self) -> WriteOptions:
        return WriteOptions(field_manager=MANAGER, field_validation="Strict")

    async def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A registry call, in a worker thread when the store waits on the network
        (PostgreSQL): on the event loop it would hold every request and watch meanwhile."""
        return await off_loop(self.resources.store, func, *args, **kwargs)

    def informer(self, kind: Kind) -> Informer:
        """The shared informer of ``kind``, started; from now on reads of it are cached."""
        informer = self.informers.informer(self._type(kind).storage_resource)
        if not self.informers.started:
            self.informers.start(self.hub)
        return informer

    async def _cache(self, rt: ResourceType, key: tuple[str, str, str] | None = None
                     ) -> Informer | None:
        """The informer to answer a read from, holding this client's latest write of the
        object ``key`` (of the kind without one); None sends the read to the registry."""
        informer = self.informers.lookup(rt.storage_resource)
        if informer is None or not informer.has_synced:
            return None
        written = self._written.get(key, 0) if key else self._latest.get(rt.storage_resource, 0)
        if informer.revision < written and \
                not await informer.wait_for(written, READ_AFTER_WRITE_WAIT):
            return None
        if key and self._written.get(key, 0) <= informer.revision:
            self._written.pop(key, None)  # revisions only grow: no later read need wait
        return informer

    def _key(self, rt: ResourceType, namespace: str, name: str) -> tuple[str, str, str]:
        return rt.storage_resource, namespace if rt.namespaced else "", name

    def _wrote(self, rt: ResourceType, namespace: str, name: str, revision: int) -> None:
        """Remember a write of a cached kind (an informer started later lists after it)."""
        key = self._key(rt, namespace, name)
        if self.informers.lookup(key[0]) is None:
            return
        self._written[key] = max(self._written.get(key, 0), revision)
        self._latest[key[0]] = max(self._latest.get(key[0], 0), revision)
        if len(self._written) > WRITTEN_LIMIT:
            self._forget_seen()

    def _forget_seen(self) -> None:
        """Drop the writes informers already hold (objects written and never read again)."""
        for key, revision in list(self._written.items()):
            informer = self.informers.lookup(key[0])
            if informer is None or informer.revision >= revision:
                del self._written[key]

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        rt = self._type(kind)
        key = self._key(rt, namespace, name)
        informer = await self._cache(rt, key)
        if informer is not None:
            found = informer.get(key[1], name)
            return None if found is None else self.resources.present(rt, private_copy(found))
        try:
            return await self._call(self.resources.get, rt, namespace, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def list(self, kind: Kind, namespace: str = "") -> tuple[list[dict[str, Any]], str]:
        rt = self._type(kind)
        informer = await self._cache(rt)
        if informer is not None:
            items = informer.list((namespace or None) if rt.namespaced else None)
            return ([self.resources.present(rt, private_copy(obj)) for obj in items],
                    str(informer.revision))
        listed = await self._call(self.resources.list, rt, namespace or None, ListOptions())
        return listed["items"], listed["metadata"]["resourceVersion"]

    async def watch(self, kind: Kind, resource_version: str) -> AsyncIterator[WatchEvent]:
        rt = self._type(kind)
        from ..store.base import Compacted

        try:
            sub = await self.hub.asubscribe(rt.storage_resource, None, int(resource_version))
        except Compacted as exc:
            raise Gone(str(exc)) from None
        try:
            while True:
                event = await sub.queue.get()
                if event is None:
                    raise Gone("watch fell behind")
                yield WatchEvent(event.type, self.resources.present(rt, event.object))
        finally:
            self.hub.unsubscribe(sub)

    async def _write(self, rt: ResourceType, func: Callable[..., dict[str, Any]],
                     *args: Any, **kwargs: Any) -> dict[str, Any]:
        written = await off_loop_write(self.resources.store, func, rt, *args, **kwargs)
        meta = written["metadata"]
        self._wrote(rt, meta.get("namespace", ""), meta["name"], int(meta["resourceVersion"]))
        return written

    async def create(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj["metadata"].get("namespace", "")
        return await self._write(self._type(kind), self.resources.create, namespace, obj,
                                 self._opts())

    async def update(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return await self._write(self._type(kind), self.resources.update,
                                 meta.get("namespace", ""), meta["name"], obj, self._opts())

    async def update_status(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return await self._write(self._type(kind), self.resources.update,
                                 meta.get("namespace", ""), meta["name"], obj, self._opts(),
                                 subresource="status")

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """The deleted object carries its last resourceVersion, not the deletion's: the
        store's revision right after the delete is the one reads must wait for."""
        rt = self._type(kind)
        try:
            revision = await off_loop_write(self.resources.store, self._delete, rt,
                                            namespace, name)
        except ApiError as exc:
            if exc.code != 404:
                raise
            return
        self._wrote(rt, namespace, name, revision)

    def _delete(self, rt: ResourceType, namespace: str, name: str) -> int:
        self.resources.delete(rt, namespace, name, DeleteOptions())
        return self.resources.store.current_revision()


class HttpClient:
    """Any KRM API over HTTPS, configured from a kubeconfig: a thin adapter of the SDK's
    :class:`~central_api.client.AsyncClient` (which reads the kubeconfig, sends, retries and
    maps refusals to exceptions carrying the server's Status) to the controllers' interface.

    Reads are requests: a separate controllers process keeps informers only for the kinds
    its controllers follow, and does not hold a copy of what they read by reference. What
    the SDK raises on the client's side becomes what callers of this class always caught: a
    kubeconfig that cannot be used an ApiError 400, an unreachable API an httpx error."""

    def __init__(self, kubeconfig: Path, context: str = "",
                 user_agent: str = "scs-controllers") -> None:
        try:
            config = load_kubeconfig(kubeconfig, context)
        except ConfigError as exc:
            raise errors.bad_request(str(exc)) from None
        config.user_agent, config.field_manager = user_agent, MANAGER
        self.sdk = AsyncClient(config)
        self._informers: dict[Kind, Informer] = {}

    async def close(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
        await self.sdk.aclose()

    def informer(self, kind: Kind) -> Informer:
        """An informer of ``kind`` over this client's list and watch, started once."""
        found = self._informers.get(kind)
        if found is None:
            found = self._informers[kind] = Informer(kind.plural)
            found.start(ClientListerWatcher(self, kind))
        return found

    async def _call(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except TransportError as exc:
            raise httpx.TransportError(str(exc)) from exc

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._call(
            self.sdk.find(kind, name, namespace))
        return found

    async def list(self, kind: Kind, namespace: str = "") -> tuple[list[dict[str, Any]], str]:
        listing = await self._call(self.sdk.list(kind, namespace))
        return listing.items, listing.resource_version

    async def watch(self, kind: Kind, resource_version: str) -> AsyncIterator[WatchEvent]:
        """Events until the watch times out (the informer then lists again)."""
        try:
            async for event in self.sdk.watch(kind, ALL_NAMESPACES,
                                              resource_version=resource_version,
                                              timeout=WATCH_SECONDS):
                yield WatchEvent(event.type, event.raw)
        except SdkGone as exc:
            raise Gone(exc.message) from None
        except TransportError as exc:
            raise httpx.TransportError(str(exc)) from exc

    async def create(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await self._call(self.sdk.create(obj, kind=kind))
        return created

    async def update(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        updated: dict[str, Any] = await self._call(self.sdk.update(obj, kind=kind))
        return updated

    async def update_status(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        updated: dict[str, Any] = await self._call(
            self.sdk.update_status(obj, kind=kind))
        return updated

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        try:
            await self._call(self.sdk.delete(kind, name, namespace))
        except NotFound:
            pass
