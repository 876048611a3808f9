"""HTTP handlers for resource paths: translate requests into :class:`Resources` calls.

Everything protocol-specific lives here: query parameters, media types (Table, apply YAML,
patch flavours), Warning headers, DeleteOptions bodies and the chunked watch stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..kinds.kind import ResourceType
from ..store.base import Compacted, Event
from . import errors
from .bodies import MAX_BODY_BYTES, parse_json_object, parse_object, too_large
from .errors import ApiError
from .resources import DeleteOptions, ListOptions, Resources, WriteOptions
from .routing import Target
from .selectors import parse_field_selector, parse_label_selector
from .tables import table
from .watch import WatchHub

FIELD_SELECTABLE = {"metadata.name", "metadata.namespace"}
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
MAX_WATCH_SECONDS = 1800
BOOKMARK_SECONDS = 10.0
MAX_FIELD_MANAGER = 128
STORE_THREADS = 4
"""Worker threads for registry calls on a blocking store (at most this many transactions of
this process wait on the database at once; the pool has more connections)."""
FRAME_CACHE = 4096
"""Encoded watch frames kept per server (see ``WatchStream._event_frame``)."""


T = TypeVar("T")
_executor: ThreadPoolExecutor | None = None


def _store_executor() -> ThreadPoolExecutor:
    global _executor  # noqa: PLW0603 - one pool per process, created on first use
    if _executor is None:
        _executor = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="store")
    return _executor


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=media_type)


def wants_table(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def write_options(request: Request) -> WriteOptions:
    q = request.query_params
    dry_run = q.getlist("dryRun")
    if any(v != "All" for v in dry_run):
        raise errors.bad_request("dryRun: Unsupported value: only \"All\" is supported")
    validation = q.get("fieldValidation") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f"fieldValidation: Unsupported value: {validation!r}: "
                                 "supported values: \"Ignore\", \"Warn\", \"Strict\"")
    manager = q.get("fieldManager") or default_field_manager(request)
    if len(manager) > MAX_FIELD_MANAGER:
        raise errors.bad_request("fieldManager: Too long: may not be longer than 128")
    return WriteOptions(dry_run=bool(dry_run), field_manager=manager,
                        field_validation=validation, user=getattr(request.state, "user", None))


def default_field_manager(request: Request) -> str:
    """Like kube-apiserver: the user agent's program name, e.g. ``kubectl``."""
    agent = request.headers.get("user-agent", "unknown")
    return agent.split("/")[0][:MAX_FIELD_MANAGER] or "unknown"


def list_options(request: Request) -> ListOptions:
    q = request.query_params
    limit_text = q.get("limit") or "0"
    if not limit_text.isdigit():
        raise errors.bad_request(f"limit: Invalid value: {limit_text!r}")
    label = q.get("labelSelector")
    field = q.get("fieldSelector")
    return ListOptions(
        label_selector=parse_label_selector(label) if label else None,
        field_selector=parse_field_selector(field, FIELD_SELECTABLE) if field else None,
        limit=int(limit_text), continue_token=q.get("continue", ""),
        resource_version=q.get("resourceVersion", ""),
        resource_version_match=q.get("resourceVersionMatch", ""))


def _warnings(opts: WriteOptions) -> dict[str, str]:
    if not opts.warnings:
        return {}
    text = ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in opts.warnings[:20])
    return {"Warning": text}


class ResourceHandlers:
    def __init__(self, resources: Resources, hub: WatchHub) -> None:
        self.resources = resources
        self.hub = hub
        self._off_loop = resources.store.blocking
        self.frames: dict[tuple[int, str, str, str, str], bytes] = {}
        """Encoded frames of recent watch events, oldest first. In one store a revision names
        one stored object, so (revision, event type, group, version, kind) determines the
        bytes every watcher of that version is sent."""

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        """Run a registry call; off the event loop when the store waits on the network.

        Why: a PostgreSQL store blocks in every round trip (and the commit's fsync); on the
        loop, no other request — TLS, parsing, validation, watch fan-out — moves meanwhile.
        In a worker thread those overlap the database waits. That is safe because the stores
        are thread-safe by contract, the registry keeps no per-call state, and the caches the
        admission plugins read (RBAC rules, tenants) swap whole snapshots under a lock.
        SQLite answers in microseconds, where the thread hop would cost more than it saves.
        """
        if not self._off_loop:
            return func(*args)
        return await asyncio.get_running_loop().run_in_executor(
            _store_executor(), functools.partial(func, *args))

    async def handle(self, request: Request, target: Target) -> Response:
        method = request.method
        if method == "GET":
            if target.name:
                return self._render(request, target, await self._call(
                    self.resources.get, target.rt, target.namespace or "", target.name))
            if request.query_params.get("watch") in ("1", "true", "True"):
                return self.watch(request, target)
            return await self.list(request, target)
        if method == "POST" and not target.name:
            return await self.create(request, target)
        if method == "PUT" and target.name:
            return await self.update(request, target)
        if method == "PATCH" and target.name:
            return await self.patch(request, target)
        if method == "DELETE":
            return await self.delete(request, target)
        raise errors.method_not_allowed(f"{method} is not supported on this path")

    def _render(self, request: Request, target: Target, obj: dict[str, Any],
                status: int = 200, headers: dict[str, str] | None = None) -> Response:
        if wants_table(request):
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            include = request.query_params.get("includeObject", "PartialObjectMetadata")
            return json_response(table(target.rt, [obj], meta, include), status, headers)
        return json_response(obj, status, headers)

    async def list(self, request: Request, target: Target) -> Response:
        listed = await self._call(self.resources.list, target.rt, target.namespace,
                                  list_options(request))
        if wants_table(request):
            include = request.query_params.get("includeObject", "PartialObjectMetadata")
            return json_response(table(target.rt, listed["items"], listed["metadata"], include))
        return json_response(listed)

    async def create(self, request: Request, target: Target) -> Response:
        body = parse_object(await read_body(request), media_type(request))
        opts = write_options(request)
        obj = await self._call(self.resources.create, target.rt, target.namespace or "", body,
                               opts)
        return self._render(request, target, obj, 201, _warnings(opts))

    async def update(self, request: Request, target: Target) -> Response:
        body = parse_object(await read_body(request), media_type(request))
        opts = write_options(request)
        obj = await self._call(self.resources.update, target.rt, target.namespace or "",
                               target.name, body, opts, target.subresource)
        return self._render(request, target, obj, 200, _warnings(opts))

    async def patch(self, request: Request, target: Target) -> Response:
        kind = media_type(request)
        if kind not in PATCH_TYPES:
            raise errors.unsupported_media_type(
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}")
        raw = await read_body(request)
        opts = write_options(request)
        force = request.query_params.get("force") in ("true", "1")
        if force and kind != "application/apply-patch+yaml":
            raise errors.bad_request("force: Invalid value: may not be specified for "
                                     "non-apply patch")
        if kind == "application/apply-patch+yaml" and not request.query_params.get(
                "fieldManager"):
            opts.field_manager = ""
        existed = kind != "application/apply-patch+yaml" or await self._call(self._exists,
                                                                              target)
        obj = await self._call(self.resources.patch, target.rt, target.namespace or "",
                               target.name, kind, raw, opts, target.subresource, force)
        return self._render(request, target, obj, 200 if existed else 201, _warnings(opts))

    def _exists(self, target: Target) -> bool:
        try:
            self.resources.get(target.rt, target.namespace or "", target.name)
        except ApiError:
            return False
        return True

    async def delete(self, request: Request, target: Target) -> Response:
        opts = await self._delete_options(request)
        if not target.name:
            listed = await self._call(self.resources.delete_collection, target.rt,
                                      target.namespace, list_options(request), opts)
            return json_response(listed)
        obj = await self._call(self.resources.delete, target.rt, target.namespace or "",
                               target.name, opts)
        return self._render(request, target, obj)

    async def _delete_options(self, request: Request) -> DeleteOptions:
        raw = await read_body(request)
        body = parse_json_object(raw) if raw.strip() else {}
        q = request.query_params
        propagation = q.get("propagationPolicy") or body.get("propagationPolicy") or ""
        if propagation not in ("", "Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"propagationPolicy: Unsupported value: {propagation!r}")
        if body.get("orphanDependents") is True:
            propagation = "Orphan"
        pre = body.get("preconditions") or {}
        dry_run = q.getlist("dryRun") or body.get("dryRun") or []
        if any(v != "All" for v in dry_run):
            raise errors.bad_request("dryRun: Unsupported value: only \"All\" is supported")
        return DeleteOptions(propagation=propagation, precondition_uid=pre.get("uid") or "",
                             precondition_rv=pre.get("resourceVersion") or "",
                             dry_run=bool(dry_run))

    # -- watch -----------------------------------------------------------------------------
    def watch(self, request: Request, target: Target) -> Response:
        q = request.query_params
        opts = list_options(request)
        rv = opts.resource_version
        if rv and not rv.isdigit():
            raise errors.bad_request(f'invalid resourceVersion "{rv}"')
        send_initial = q.get("sendInitialEvents") in ("true", "1")
        if send_initial and opts.resource_version_match != "NotOlderThan":
            raise errors.invalid("ListOptions", "", [errors.Cause(
                "resourceVersionMatch", "Forbidden: sendInitialEvents requires setting "
                "resourceVersionMatch to NotOlderThan", "FieldValueForbidden")])
        initial: list[dict[str, Any]] = []
        if rv in ("", "0") or send_initial:
            listed = self.resources.list(target.rt, target.namespace, ListOptions(
                opts.label_selector, opts.field_selector))
            initial, start = listed["items"], int(listed["metadata"]["resourceVersion"])
        else:
            start = int(rv)
        rt = target.rt
        predicate = None
        if opts.label_selector or opts.field_selector:
            predicate = lambda obj: Resources.matches(obj, opts)  # noqa: E731
        try:
            sub = self.hub.subscribe(rt.storage_resource, target.namespace, start, predicate)
        except Compacted as exc:
            raise errors.gone(f"too old resource version: {start} ({exc.compacted})") from None
        for obj in initial:
            sub.seed(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        timeout = min(int(q.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        stream = WatchStream(self, request, target, sub, initial, start, timeout,
                             bookmarks=q.get("allowWatchBookmarks") in ("true", "1"),
                             initial_end_bookmark=send_initial)
        return StreamingResponse(stream.events(), media_type="application/json",
                                 headers={"Transfer-Encoding": "chunked"})


class WatchStream:
    """One client's watch: initial objects, then live events, bookmarks, timeout."""

    def __init__(self, handlers: ResourceHandlers, request: Request, target: Target,
                 sub: Any, initial: list[dict[str, Any]], start: int, timeout: int,
                 bookmarks: bool, initial_end_bookmark: bool) -> None:
        self.handlers, self.request, self.target, self.sub = handlers, request, target, sub
        self.initial, self.revision, self.timeout = initial, start, timeout
        self.bookmarks, self.initial_end_bookmark = bookmarks, initial_end_bookmark
        self.as_table = wants_table(request)

    def _frame(self, kind: str, obj: dict[str, Any]) -> bytes:
        if self.as_table and kind != "BOOKMARK":
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            obj = table(self.target.rt, [obj], meta, self.request.query_params.get(
                "includeObject", "PartialObjectMetadata"))
        return orjson.dumps({"type": kind, "object": obj}) + b"\n"

    def _event_frame(self, rt: ResourceType, event: Event) -> bytes:
        """The frame of a live event, encoded once for every watcher that wants the same bytes
        (same event, type and served version): with a thousand watchers of a kind, encoding
        per watcher was a thousand ``orjson.dumps`` of the same object."""
        if self.as_table:
            return self._frame(event.type, self.handlers.resources.present(rt, event.object))
        frames = self.handlers.frames
        key = (event.revision, event.type, rt.group, rt.version, rt.kind)
        frame = frames.get(key)
        if frame is None:
            obj = self.handlers.resources.present(rt, event.object)
            frame = frames[key] = self._frame(event.type, obj)
            if len(frames) > FRAME_CACHE:
                del frames[next(iter(frames))]
        return frame

    def _bookmark(self, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(self.revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return self._frame("BOOKMARK", {"kind": self.target.rt.kind,
                                        "apiVersion": self.target.rt.api_version,
                                        "metadata": meta})

    async def events(self) -> AsyncIterator[bytes]:
        rt = self.target.rt
        deadline = time.monotonic() + self.timeout
        try:
            for obj in self.initial:
                yield self._frame("ADDED", obj)
            if self.initial_end_bookmark and self.bookmarks:
                yield self._bookmark(initial_end=True)
            next_bookmark = time.monotonic() + BOOKMARK_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                wait = min(left, max(next_bookmark - time.monotonic(), 0.01))
                event: Event | None = None
                queue = self.sub.queue
                if not queue.empty():
                    event = queue.get_nowait()
                else:  # asyncio.timeout, unlike wait_for, needs no extra Task per wait
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            event = await queue.get()
                if event is None:
                    if self.sub.overflowed:
                        return
                    if self.bookmarks and time.monotonic() >= next_bookmark:
                        self.revision = max(self.revision, self.handlers.hub.revision)
                        yield self._bookmark()
                        next_bookmark = time.monotonic() + BOOKMARK_SECONDS
                    continue
                # Send everything already queued as one chunk: one socket write per batch
                # instead of per event is what keeps a thousand watchers fed.
                frames = []
                while event is not None:
                    self.revision = event.revision
                    frames.append(self._event_frame(rt, event))
                    event = self.sub.queue.get_nowait() if not self.sub.queue.empty() else None
                yield b"".join(frames)
                if self.sub.overflowed:
                    return
        finally:
            self.handlers.hub.unsubscribe(self.sub)
