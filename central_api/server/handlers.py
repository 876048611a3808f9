"""HTTP handlers for resource paths: translate requests into :class:`Resources` calls.

Everything protocol-specific lives here: query parameters, media types (Table, apply YAML,
patch flavours), Warning headers, DeleteOptions bodies and the chunked watch stream.

Every parameter and body is checked here, before the registry sees it, so that a malformed
one is a 4xx naming it: the registry and the store take their inputs as well-formed (an
integer within int64, an object whose fields have their declared types).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from ..machinery import errors
from ..machinery.bodies import (
    INLINE_BYTES,
    INT64_MAX,
    INT64_MIN,
    MAX_BODY_BYTES,
    off_loop,
    parse_document,
    parse_object,
    parse_patch,
    too_large,
)
from ..machinery.errors import ApiError, Cause
from ..machinery.selectors import parse_field_selector, parse_label_selector
from ..registry.resources import DeleteOptions, ListOptions, Resources, WriteOptions
from ..registry.watch import WatchHub
from ..registry.watchcache import WatchCaches
from ..store.base import decode_continue
from .cachedreads import CachedList, CachedReads
from .routing import Target
from .tables import table
from .watchstream import MAX_WATCH_SECONDS, WatchOptions, WatchStreams

FIELD_SELECTABLE = {"metadata.name", "metadata.namespace"}
MATCH_EXACT, MATCH_NOT_OLDER = "Exact", "NotOlderThan"
INCLUDE_OBJECT = ("None", "Metadata", "Object")
"""What a Table row carries (kube's IncludeObjectPolicy); Metadata by default."""
PROPAGATION = ("Background", "Foreground", "Orphan")
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
MAX_LIMIT = 2**31
"""Larger limits (valid up to int64, as in kube) page exactly like this one, since no list is
that long; the cap keeps the store's look-ahead (``LIMIT limit + 1``) within SQL's integers."""
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
MAX_FIELD_MANAGER = 128
TABLE_INLINE = 100
"""Rows of a Table decoded on the event loop; longer Tables are built in a worker thread."""
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
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
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
    if validation not in FIELD_VALIDATION:
        raise unsupported_parameter("fieldValidation", validation, FIELD_VALIDATION)
    manager = q.get("fieldManager") or default_field_manager(request)
    if len(manager) > MAX_FIELD_MANAGER:
        raise errors.bad_request("fieldManager: Too long: may not be longer than 128")
    if not manager.isprintable():
        raise invalid_parameter("fieldManager", manager, "invalid characters, only printable "
                                "characters are allowed")
    return WriteOptions(dry_run=bool(dry_run), field_manager=manager,
                        field_validation=validation, user=getattr(request.state, "user", None))


def default_field_manager(request: Request) -> str:
    """Like kube-apiserver: the user agent's program name, e.g. ``kubectl``."""
    agent = request.headers.get("user-agent", "unknown")
    name = "".join(c for c in agent.split("/")[0] if c.isprintable())
    return name[:MAX_FIELD_MANAGER] or "unknown"


def list_options(request: Request, watch: bool = False) -> ListOptions:
    """ListOptions of a list, watch or deletecollection, checked as kube-apiserver checks them
    (ValidateListOptions): 400 for a value that does not parse, 422 for one that contradicts
    another."""
    q = request.query_params
    label = q.get("labelSelector")
    field = q.get("fieldSelector")
    opts = ListOptions(
        label_selector=parse_label_selector(label) if label else None,
        field_selector=parse_field_selector(field, FIELD_SELECTABLE) if field else None,
        limit=min(int_parameter(q, "limit", 0, INT64_MAX), MAX_LIMIT),
        continue_token=continue_token(q),
        resource_version=resource_version(q),
        resource_version_match=q.get("resourceVersionMatch", ""))
    causes = _watch_causes(q, opts) if watch else _list_causes(opts)
    if causes:
        raise errors.invalid("ListOptions", "", causes, "meta.k8s.io")
    return opts


def invalid_parameter(name: str, value: str, detail: str) -> ApiError:
    """400 naming the query parameter, in kube's field-error wording."""
    message = f"Invalid value: {_quoted(value)}: {detail}"
    return ApiError(400, "BadRequest", f"{name}: {message}", causes=[Cause(name, message)])


def unsupported_parameter(name: str, value: str, supported: tuple[str, ...]) -> ApiError:
    message = _unsupported(value, supported)
    return ApiError(400, "BadRequest", f"{name}: {message}",
                    causes=[Cause(name, message, "FieldValueNotSupported")])


def _quoted(value: str) -> str:
    """A value as Go's %q shows it, shortened: a query parameter may be 32 KiB."""
    return json.dumps(value if len(value) <= 64 else value[:64] + "...", ensure_ascii=False)


def _unsupported(value: str, supported: tuple[str, ...]) -> str:
    allowed = ", ".join(json.dumps(s) for s in supported)
    return f"Unsupported value: {_quoted(value)}: supported values: {allowed}"


def include_object(q: QueryParams) -> str:
    value = q.get("includeObject") or "Metadata"
    if value not in INCLUDE_OBJECT:
        raise unsupported_parameter("includeObject", value, INCLUDE_OBJECT)
    return value


_DECIMAL = re.compile(r"[0-9]{1,19}")
_SIGNED_DECIMAL = re.compile(r"[-+]?[0-9]{1,19}")


def int_parameter(q: QueryParams, name: str, default: int, high: int, low: int = 0) -> int:
    """A decimal ASCII integer parameter within [low, high] (``str.isdigit`` would take
    "²", which ``int`` refuses; and nothing beyond int64 fits the store)."""
    text = q.get(name)
    if not text:
        return default
    pattern = _SIGNED_DECIMAL if low < 0 else _DECIMAL
    if not pattern.fullmatch(text) or not low <= int(text) <= high:
        raise invalid_parameter(name, text, f"must be an integer from {low} to {high}")
    return int(text)


def resource_version(q: QueryParams) -> str:
    """A resourceVersion names a revision of the store: a decimal ASCII int64."""
    text = q.get("resourceVersion", "")
    if text:
        int_parameter(q, "resourceVersion", 0, INT64_MAX)
    return text


def continue_token(q: QueryParams) -> str:
    """A token this server issued (a revision within int64, a key the store can look up)."""
    token = q.get("continue", "")
    if not token:
        return ""
    try:
        revision, (namespace, name) = decode_continue(token)
        (namespace + name).encode()  # UnicodeEncodeError (a ValueError): lone surrogates
        valid = revision <= INT64_MAX
    except (ValueError, RecursionError):
        valid = False
    if not valid:
        raise invalid_parameter("continue", token, "the continue token is malformed; start "
                                "a new list without it")
    return token


def _list_causes(opts: ListOptions) -> list[Cause]:
    match, causes = opts.resource_version_match, []
    if not match:
        return []
    if not opts.resource_version:
        causes.append(_forbidden_match("resourceVersionMatch is forbidden unless "
                                       "resourceVersion is provided"))
    if opts.continue_token:
        causes.append(_forbidden_match("resourceVersionMatch is forbidden when continue is "
                                       "provided"))
    if match not in (MATCH_EXACT, MATCH_NOT_OLDER):
        causes.append(_unsupported_match(match, (MATCH_EXACT, MATCH_NOT_OLDER)))
    if match == MATCH_EXACT and opts.resource_version == "0":
        causes.append(_forbidden_match('resourceVersionMatch "exact" is forbidden for '
                                       'resourceVersion "0"'))
    return causes


def _watch_causes(q: QueryParams, opts: ListOptions) -> list[Cause]:
    match, causes = opts.resource_version_match, []
    if q.get("sendInitialEvents") in ("true", "1") and match != MATCH_NOT_OLDER:
        causes.append(_forbidden_match("sendInitialEvents requires setting "
                                       f"resourceVersionMatch to {MATCH_NOT_OLDER}"))
    if match and match != MATCH_NOT_OLDER:
        causes.append(_unsupported_match(match, (MATCH_NOT_OLDER,)))
    return causes


def _forbidden_match(detail: str) -> Cause:
    return Cause("resourceVersionMatch", f"Forbidden: {detail}", "FieldValueForbidden")


def _unsupported_match(match: str, supported: tuple[str, ...]) -> Cause:
    return Cause("resourceVersionMatch", _unsupported(match, supported),
                 "FieldValueNotSupported")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_WARNING = 256
"""Characters of one warning: unknown field names come from the body, which may be 3 MiB."""


def _warnings(opts: WriteOptions) -> dict[str, str]:
    """``Warning: 299 - "..."`` as kube-apiserver writes it: quotes and backslashes escaped,
    the text as UTF-8 bytes. A header value can only carry Latin-1 characters (a field named
    beyond it made the response fail with 500) and no control characters (a newline would end
    the header), so control characters are escaped too."""
    if not opts.warnings:
        return {}
    quoted = [_CONTROL.sub(lambda c: f"\\x{ord(c.group()):02x}",
                           w[:MAX_WARNING].replace("\\", "\\\\").replace('"', '\\"'))
              for w in opts.warnings[:20]]
    text = ", ".join(f'299 - "{w}"' for w in quoted)
    return {"Warning": text.encode().decode("latin-1")}


COUNTED_CREATES = frozenset({"core/namespaces"})
"""Resources whose create admission counts the objects already stored (a tenant's namespace
quota): their creates are admitted and committed one at a time in this process, since with
group commit ten creates admitted together would each count the same total (and all be let
through). Between worker processes or replicas the count may still trail by the writes of
that moment, as the storage quota's does."""


class ResourceHandlers:
    def __init__(self, resources: Resources, hub: WatchHub) -> None:
        self.resources = resources
        self.hub = hub
        self._off_loop = resources.store.blocking
        self.cached = CachedReads(WatchCaches(hub))
        self.watches = WatchStreams(resources, hub, self.cached.caches)
        self._counted_creates = asyncio.Lock()

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        """Run a registry call; off the event loop when the store waits on the network.

        Why: a PostgreSQL store blocks in every round trip (and the commit's fsync); on the
        loop, no other request — TLS, parsing, validation, watch fan-out — moves meanwhile.
        In a worker thread those overlap the database waits. That is safe because the stores
        are thread-safe by contract, the registry keeps no per-call state, and the caches the
        admission plugins read (RBAC rules, tenants) swap whole snapshots under a lock.
        SQLite reads answer in microseconds, where the thread hop would cost more than it
        saves; writes always take it (:meth:`_in_thread`).
        """
        if not self._off_loop:
            return func(*args)
        return await self._in_thread(func, *args)

    @staticmethod
    async def _in_thread(func: Callable[..., T], *args: Any) -> T:
        """Run a registry call in a worker thread: every write, whatever the store.

        A write's admission (pruning, defaulting, schema and CEL validation, managed fields,
        a patch's merge) costs CPU in proportion to the object: a Secret of 150,000 keys
        held every other request for 9 s on the loop, a patch of 250,000 finalizers for 31 s.
        In a thread the loop keeps its turns. Thread safety: as for :meth:`_call`.
        """
        return await asyncio.get_running_loop().run_in_executor(
            _store_executor(), functools.partial(func, *args))

    async def handle(self, request: Request, target: Target) -> Response:
        method = request.method
        if method == "GET":
            if target.name:
                return await self.get(request, target)
            if request.query_params.get("watch") in ("1", "true", "True"):
                return await self.watch(request, target)
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
            include = include_object(request.query_params)
            return json_response(table(target.rt, [obj], meta, include), status, headers)
        return json_response(obj, status, headers)

    async def get(self, request: Request, target: Target) -> Response:
        """From the watch cache: its bytes as they are, unless a Table is asked for."""
        served = await self.cached.get(target.rt, target.namespace or "", target.name,
                                       resource_version(request.query_params))
        if served is None:
            return self._render(request, target, await self._call(
                self.resources.get, target.rt, target.namespace or "", target.name))
        if wants_table(request):
            return self._render(request, target, orjson.loads(served))
        return Response(served, media_type="application/json")

    async def list(self, request: Request, target: Target) -> Response:
        opts = list_options(request)
        cached = await self.cached.list(target.rt, target.namespace, opts)
        if cached is not None:
            return await self._cached_list(request, target, cached)
        listed = await self._call(self.resources.list, target.rt, target.namespace, opts)
        if wants_table(request):
            include = include_object(request.query_params)
            return json_response(table(target.rt, listed["items"], listed["metadata"], include))
        return json_response(listed)

    @staticmethod
    async def _cached_list(request: Request, target: Target, cached: CachedList) -> Response:
        """A list from the watch cache: its items' bytes joined, or decoded for a Table (in
        a worker thread when long: decoding 100k objects takes seconds)."""
        if not wants_table(request):
            return Response(cached.document(), media_type="application/json")
        include = include_object(request.query_params)

        def render() -> dict[str, Any]:
            return table(target.rt, cached.objects(), cached.metadata, include)

        return json_response(render() if len(cached.entries) <= TABLE_INLINE
                             else await off_loop(render))

    async def _object_body(self, request: Request, target: Target
                           ) -> tuple[dict[str, Any], bool]:
        """A create or update body, parsed and type-checked against the kind's schema off
        the event loop (422 with every cause, as validation would report them); and whether
        it is small enough to be handled on the loop (:data:`INLINE_BYTES`)."""
        raw = await read_body(request)
        body = await parse_object(raw, media_type(request))
        small = len(raw) <= INLINE_BYTES
        schema = self.resources.compiled(target.rt)
        causes = schema.type_causes(body) if small else await off_loop(schema.type_causes,
                                                                         body)
        if causes:
            meta = body.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            raise errors.invalid(target.rt.kind, name if isinstance(name, str) else "", causes,
                                 target.rt.group)
        return body, small

    async def create(self, request: Request, target: Target) -> Response:
        body, small = await self._object_body(request, target)
        opts = write_options(request)
        # A create's admission costs in proportion to its body, so a small one runs on the
        # loop (SQLite); updates and patches take the thread: the stored object they change
        # may be large whatever the body's size. The store write goes to the group
        # committer: many creates are in flight at once and share one commit.
        admit = self._call if small else self._in_thread
        counted = target.rt.storage_resource in COUNTED_CREATES
        async with self._counted_creates if counted else contextlib.nullcontext():
            prepared = await admit(self.resources.prepare_create, target.rt,
                                   target.namespace or "", body, opts)
            obj = await self.resources.commit_create(prepared)
        return self._render(request, target, obj, 201, _warnings(opts))

    async def update(self, request: Request, target: Target) -> Response:
        body, _ = await self._object_body(request, target)
        opts = write_options(request)
        obj = await self._in_thread(self.resources.update, target.rt, target.namespace or "",
                                    target.name, body, opts, target.subresource)
        return self._render(request, target, obj, 200, _warnings(opts))

    async def patch(self, request: Request, target: Target) -> Response:
        kind = media_type(request)
        if kind not in PATCH_TYPES:
            raise errors.unsupported_media_type(
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}")
        raw = await parse_patch(await read_body(request), kind)
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
        obj = await self._in_thread(self.resources.patch, target.rt, target.namespace or "",
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
            listed = await self._in_thread(self.resources.delete_collection, target.rt,
                                           target.namespace, list_options(request), opts)
            return json_response(listed)
        obj = await self._in_thread(self.resources.delete, target.rt, target.namespace or "",
                                    target.name, opts)
        return self._render(request, target, obj)

    async def _delete_options(self, request: Request) -> DeleteOptions:
        raw = await read_body(request)
        body = delete_options_body(await parse_document(raw, "json") if raw.strip() else {})
        q = request.query_params
        int_parameter(q, "gracePeriodSeconds", 0, INT64_MAX, INT64_MIN)  # deletion is at once
        propagation = q.get("propagationPolicy") or body.get("propagationPolicy") or ""
        if propagation and propagation not in PROPAGATION:
            raise unsupported_parameter("propagationPolicy", propagation, PROPAGATION)
        if body.get("orphanDependents") is True:
            propagation = "Orphan"
        pre = body.get("preconditions") or {}
        dry_run = q.getlist("dryRun") or body.get("dryRun") or []
        if any(v != "All" for v in dry_run):
            raise errors.bad_request("dryRun: Unsupported value: only \"All\" is supported")
        return DeleteOptions(propagation=propagation, precondition_uid=pre.get("uid") or "",
                             precondition_rv=pre.get("resourceVersion") or "",
                             dry_run=bool(dry_run))

    async def watch(self, request: Request, target: Target) -> Response:
        q = request.query_params
        opts = list_options(request, watch=True)
        send_initial = q.get("sendInitialEvents") in ("true", "1")
        timeout = min(int_parameter(q, "timeoutSeconds", MAX_WATCH_SECONDS, INT64_MAX,
                                    INT64_MIN), MAX_WATCH_SECONDS)
        return await self.watches.start(target, WatchOptions(
            list=opts, send_initial=send_initial, timeout=timeout,
            bookmarks=q.get("allowWatchBookmarks") in ("true", "1"),
            as_table=wants_table(request),
            include_object=include_object(q)),
            getattr(request.state, "user", None))


_DELETE_OPTION_TYPES: dict[str, tuple[type, str]] = {
    "kind": (str, "string"), "apiVersion": (str, "string"),
    "propagationPolicy": (str, "v1.DeletionPropagation"), "orphanDependents": (bool, "bool"),
    "gracePeriodSeconds": (int, "int64"), "preconditions": (dict, "v1.Preconditions"),
    "dryRun": (list, "[]string"),
}


def delete_options_body(body: Any) -> dict[str, Any]:
    """A DeleteOptions body whose fields have their types (kube's decoder refuses others with
    400 before anything reads them; here reading them would fail with a 500)."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a DeleteOptions object")
    for name, (kind, go_type) in _DELETE_OPTION_TYPES.items():
        _require_type(body.get(name), kind, f"DeleteOptions.{name}", go_type)
    for item in body.get("dryRun") or ():
        _require_type(item, str, "DeleteOptions.dryRun", "string")
    for name in ("uid", "resourceVersion"):
        _require_type((body.get("preconditions") or {}).get(name), str,
                      f"Preconditions.preconditions.{name}", "string")
    return body


def _require_type(value: Any, kind: type, field: str, go_type: str) -> None:
    if value is None or type(value) is kind:
        return
    json_type = {str: "string", bool: "bool", int: "number", float: "number", list: "array",
                 dict: "object"}.get(type(value), "value")
    message = f"json: cannot unmarshal {json_type} into Go struct field {field} of type {go_type}"
    raise ApiError(400, "BadRequest", message, causes=[
        Cause(field.split(".", 1)[1], message, "FieldValueTypeInvalid")])

