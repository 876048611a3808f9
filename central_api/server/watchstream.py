"""Watch responses: the initial objects in bounded pages, then live events and bookmarks.

Why pages: a watch without a resourceVersion starts with every object it selects. Built as
one list, that cost each watch about the namespace's size in memory (300 watches of a member
over 46 MB of Secrets took the server to 24 GB). Read page by page at the list's snapshot
revision and written as the client reads (the transport pauses the stream while the client
is behind), a watch holds one page at a time, whatever the namespace's size. Watches per
identity are capped as well, so no caller multiplies even that.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from ..kinds.kind import ResourceType
from ..machinery import errors
from ..machinery.errors import ApiError
from ..machinery.user import MASTERS, User
from ..registry.resources import ListOptions, Resources
from ..registry.watch import Subscription, WatchHub
from ..registry.watchcache import CachedObject, WatchCaches, served_prefix
from ..store.base import Compacted, Event
from ..store.offload import off_loop
from .cachedreads import selection
from .routing import Target
from .tables import table

MAX_WATCH_SECONDS = 1800
BOOKMARK_SECONDS = 10.0
FRAME_CACHE = 4096
FRAME_CACHE_BYTES = 32 * 1024 * 1024
"""Encoded watch frames kept per server, by count and size (see
:meth:`WatchStream._event_frame`): 4,096 frames of large objects would be gigabytes."""
MAX_WATCHES_PER_USER = 100
"""Open watches per identity: kubectl, a controller or a console need tens at most."""
FIRST_PAGE = 1
"""Objects in the first initial page, before the size of the kind's objects is known."""
PAGE_BYTES = 1024 * 1024
"""Target size of one page of initial objects (encoded); later pages are sized to it."""
MAX_PAGE = 500
CHUNK_BYTES = 64 * 1024
"""Frames are written in chunks of about this size (one socket write each)."""


@dataclass
class WatchOptions:
    list: ListOptions
    send_initial: bool
    timeout: int
    bookmarks: bool
    as_table: bool
    include_object: str = "PartialObjectMetadata"

    @property
    def wants_initial(self) -> bool:
        return self.list.resource_version in ("", "0") or self.send_initial


class WatchStreams:
    """Starts watches: counts them per identity and keeps the frames they share."""

    def __init__(self, resources: Resources, hub: WatchHub, caches: WatchCaches,
                 per_user: int = MAX_WATCHES_PER_USER) -> None:
        self.resources = resources
        self.hub = hub
        self.caches = caches
        self.per_user = per_user
        self.open: Counter[str] = Counter()
        self.frames: dict[tuple[int, str, str, str, str], bytes] = {}
        """Encoded frames of recent watch events, oldest first. In one store a revision names
        one stored object, so (revision, event type, group, version, kind) determines the
        bytes every watcher of that version is sent."""
        self.frame_bytes = 0

    def remember_frame(self, key: tuple[int, str, str, str, str], frame: bytes) -> None:
        self.frames[key] = frame
        self.frame_bytes += len(frame)
        while len(self.frames) > FRAME_CACHE or self.frame_bytes > FRAME_CACHE_BYTES:
            self.frame_bytes -= len(self.frames.pop(next(iter(self.frames))))

    async def start(self, target: Target, opts: WatchOptions, user: User | None) -> Response:
        owner = self._admit(user)
        try:
            stream = await self._open(target, opts)
        except BaseException:
            self._release(owner)
            raise
        return StreamingResponse(self._counted(stream.events(), owner),
                                 media_type="application/json",
                                 headers={"Transfer-Encoding": "chunked"})

    def _admit(self, user: User | None) -> str:
        """The identity the watch counts against ("" for the uncounted operator)."""
        if user is None or MASTERS in user.groups:
            return ""
        if self.open[user.name] >= self.per_user:
            raise ApiError(429, "TooManyRequests",
                           f"too many open watches for {user.name!r} (limit {self.per_user}); "
                           "close some before opening more", retry_after=10)
        self.open[user.name] += 1
        return user.name

    def _release(self, owner: str) -> None:
        if owner:
            self.open[owner] -= 1
            if self.open[owner] <= 0:
                del self.open[owner]

    async def _counted(self, frames: AsyncIterator[bytes], owner: str) -> AsyncIterator[bytes]:
        try:
            async for frame in frames:
                yield frame
        finally:
            self._release(owner)

    async def _open(self, target: Target, opts: WatchOptions) -> WatchStream:
        predicate = None
        if opts.list.label_selector or opts.list.field_selector:
            predicate = lambda obj: Resources.matches(obj, opts.list)  # noqa: E731
        if opts.wants_initial:
            cache = await self.caches.reader(target.rt.storage_resource,
                                             opts.list.resource_version)
            if cache is not None:
                # No await from here to the subscription: the snapshot is the cache's state
                # at the hub's revision, and the watch follows the hub from exactly there
                # (which reads nothing from the store).
                entries, _ = cache.select(selection(target.rt, target.namespace, opts.list))
                start = self.hub.revision
                sub = self.hub.subscribe(target.rt.storage_resource, target.namespace, start,
                                         predicate)
                return WatchStream(self, target, sub, CachedInitial(target.rt, entries), start,
                                   opts)
        return await self._open_from_store(target, opts, predicate)

    async def _open_from_store(self, target: Target, opts: WatchOptions,
                               predicate: Callable[[dict[str, Any]], bool] | None
                               ) -> WatchStream:
        first: InitialPages | None = None
        store = self.resources.store
        if opts.wants_initial:
            first = InitialPages(self.resources, target.rt, target.namespace, opts.list)
            start = await first.read_first()
        else:
            start = int(opts.list.resource_version)
            if start > self.hub.revision and start > await off_loop(store,
                                                                   store.current_revision):
                # kube's answer for a revision not reached yet (a watch would otherwise sit
                # silent until its timeout, then the client would retry with the same one)
                raise ApiError(504, "Timeout", f"Too large resource version: {start}",
                               retry_after=1)
        try:
            sub = await self.hub.asubscribe(target.rt.storage_resource, target.namespace,
                                            start, predicate)
        except Compacted as exc:
            raise errors.gone(f"too old resource version: {start} ({exc.compacted})") from None
        return WatchStream(self, target, sub, first, start, opts)


class InitialPages:
    """The objects a watch starts with, read page by page at one snapshot revision.

    The first page is read when the watch starts (:meth:`read_first`: its revision is
    known before the subscription); later pages as the client consumes the earlier ones;
    both off the event loop when the store waits on the network. Pages are sized to about
    :data:`PAGE_BYTES` from the size of the frames sent so far (``frame_size``, kept by the
    stream)."""

    def __init__(self, resources: Resources, rt: ResourceType, namespace: str | None,
                 opts: ListOptions) -> None:
        self.resources, self.rt, self.namespace, self.opts = resources, rt, namespace, opts
        self._first: dict[str, Any] = {}
        self.frame_size = PAGE_BYTES
        """Average size of the frames sent so far (the stream updates it)."""

    async def read_first(self) -> int:
        """Read the first page; returns the snapshot revision every page is read at."""
        self._first = await off_loop(self.resources.store, self._read, FIRST_PAGE, "")
        return int(self._first["metadata"]["resourceVersion"])

    def _read(self, limit: int, continue_token: str) -> dict[str, Any]:
        return self.resources.list(self.rt, self.namespace, ListOptions(
            self.opts.label_selector, self.opts.field_selector, limit=limit,
            continue_token=continue_token))

    async def pages(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Each page's objects; raises ApiError 410 if the snapshot was compacted meanwhile
        (the watch ends and the client lists again, as after any expired continue token)."""
        page = self._first
        while True:
            yield page["items"]
            token = page["metadata"].get("continue")
            if not token:
                return
            limit = max(1, min(MAX_PAGE, PAGE_BYTES // max(self.frame_size, 1)))
            page = await off_loop(self.resources.store, self._read, limit, token)


@dataclass
class CachedInitial:
    """The objects a watch starts with, from a watch cache's snapshot: references to the
    cached bytes (no copy of the objects, no store read), framed as they are sent."""

    rt: ResourceType
    entries: list[tuple[str, str, CachedObject]]

    def chunks(self, stream: WatchStream) -> Iterator[bytes]:
        """ADDED frames in chunks of about :data:`CHUNK_BYTES`."""
        prefix = served_prefix(self.rt.api_version, self.rt.kind)
        head = b'{"type":"ADDED","object":' + prefix
        chunk: list[bytes] = []
        size = 0
        for namespace, name, entry in self.entries:
            stream.sub.seed(namespace, name)
            if stream.opts.as_table:
                frame = stream._frame("ADDED", orjson.loads(prefix + entry.body))
            else:
                frame = head + entry.body + b"}\n"
            chunk.append(frame)
            size += len(frame)
            if size >= CHUNK_BYTES:
                yield b"".join(chunk)
                chunk, size = [], 0
        if chunk:
            yield b"".join(chunk)


class WatchStream:
    """One client's watch: initial objects, then live events, bookmarks, timeout."""

    def __init__(self, streams: WatchStreams, target: Target, sub: Subscription,
                 initial: InitialPages | CachedInitial | None, start: int,
                 opts: WatchOptions) -> None:
        self.streams, self.target, self.sub, self.initial = streams, target, sub, initial
        self.revision, self.opts = start, opts

    def _frame(self, kind: str, obj: dict[str, Any]) -> bytes:
        if self.opts.as_table and kind != "BOOKMARK":
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            obj = table(self.target.rt, [obj], meta, self.opts.include_object)
        return orjson.dumps({"type": kind, "object": obj}) + b"\n"

    def _event_frame(self, rt: ResourceType, event: Event) -> bytes:
        """The frame of a live event, encoded once for every watcher that wants the same bytes
        (same event, type and served version): with a thousand watchers of a kind, encoding
        per watcher was a thousand ``orjson.dumps`` of the same object."""
        resources = self.streams.resources
        if self.opts.as_table:
            return self._frame(event.type, resources.present(rt, event.object))
        frames = self.streams.frames
        key = (event.revision, event.type, rt.group, rt.version, rt.kind)
        frame = frames.get(key)
        if frame is None:
            frame = self._frame(event.type, resources.present(rt, event.object))
            self.streams.remember_frame(key, frame)
        return frame

    def _bookmark(self, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(self.revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return self._frame("BOOKMARK", {"kind": self.target.rt.kind,
                                        "apiVersion": self.target.rt.api_version,
                                        "metadata": meta})

    async def _initial_frames(self) -> AsyncIterator[bytes]:
        """ADDED frames of the initial objects in chunks; the live events of the same objects
        wait in the subscription's queue meanwhile and follow them."""
        if isinstance(self.initial, CachedInitial):
            for part in self.initial.chunks(self):
                yield part
            return
        if self.initial is None:
            return
        sent = count = 0
        try:
            async for items in self.initial.pages():
                chunk: list[bytes] = []
                size = 0
                for obj in items:
                    self.sub.seed(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                    frame = self._frame("ADDED", obj)
                    chunk.append(frame)
                    size += len(frame)
                    sent, count = sent + len(frame), count + 1
                    if size >= CHUNK_BYTES:
                        yield b"".join(chunk)
                        chunk, size = [], 0
                if chunk:
                    yield b"".join(chunk)
                self.initial.frame_size = sent // max(count, 1)
        except ApiError as exc:
            if exc.code != 410:
                raise
            self.sub.overflowed = True  # the snapshot is gone: end the watch, client re-lists

    async def events(self) -> AsyncIterator[bytes]:
        rt = self.target.rt
        deadline = time.monotonic() + self.opts.timeout
        try:
            async for chunk in self._initial_frames():
                yield chunk
            if self.sub.overflowed:
                return
            if self.opts.send_initial and self.opts.bookmarks:
                yield self._bookmark(initial_end=True)
            next_bookmark = time.monotonic() + BOOKMARK_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                wait = min(left, max(next_bookmark - time.monotonic(), 0.01))
                event = await self._next(wait)
                if event is None:
                    if self.sub.overflowed:
                        return
                    if self.opts.bookmarks and time.monotonic() >= next_bookmark:
                        self.revision = max(self.revision, self.streams.hub.revision)
                        yield self._bookmark()
                        next_bookmark = time.monotonic() + BOOKMARK_SECONDS
                    continue
                # Send what is already queued as one chunk (up to CHUNK_BYTES): one socket
                # write per batch instead of per event is what keeps a thousand watchers fed,
                # and the bound keeps a watcher that fell behind from copying its backlog.
                frames, size = [], 0
                while event is not None:
                    self.revision = event.revision
                    frame = self._event_frame(rt, event)
                    frames.append(frame)
                    size += len(frame)
                    event = self.sub.take() if size < CHUNK_BYTES else None
                yield b"".join(frames)
                if self.sub.overflowed:
                    return
        finally:
            self.streams.hub.unsubscribe(self.sub)

    async def _next(self, wait: float) -> Event | None:
        event = self.sub.take()
        if event is not None or self.sub.overflowed:
            return event
        # asyncio.timeout, unlike wait_for, needs no extra Task per wait
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                return await self.sub.wait()
        return None
