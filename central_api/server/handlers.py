"""HTTP handlers for resource paths: translate requests into :class:`Resources` calls.

Everything protocol-specific lives here: query parameters, media types (Table, apply YAML,
patch flavours), Warning headers, DeleteOptions bodies and the chunked watch stream.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .bodies import MAX_BODY_BYTES, parse_json_object, parse_object, too_large
from .errors import ApiError
from .resources import DeleteOptions, ListOptions, Resources, WriteOptions
from .routing import Target
from .selectors import parse_field_selector, parse_label_selector
from .tables import table
from .watch import WatchHub
from .watchstream import MAX_WATCH_SECONDS, WatchOptions, WatchStreams

FIELD_SELECTABLE = {"metadata.name", "metadata.namespace"}
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
MAX_FIELD_MANAGER = 128
STORE_THREADS = 4
"""Worker threads for registry calls on a blocking store (at most this many transactions of
this process wait on the database at once; the pool has more connections)."""


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
        self.watches = WatchStreams(resources, hub)

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
        timeout = min(int(q.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        return self.watches.start(target, WatchOptions(
            list=opts, send_initial=send_initial, timeout=timeout,
            bookmarks=q.get("allowWatchBookmarks") in ("true", "1"),
            as_table=wants_table(request),
            include_object=q.get("includeObject", "PartialObjectMetadata")),
            getattr(request.state, "user", None))
