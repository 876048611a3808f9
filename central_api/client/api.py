"""The clients: :class:`Client` (synchronous: the CLI, a Terraform provider, scripts) and
:class:`AsyncClient` (controllers), with the same methods.

Both build every request with :class:`_Ops` and read every answer with the functions of
:mod:`.transport`; only sending and waiting differ. Typed calls (a kind's model class, or an
instance of it) answer instances of the model; custom resources answer dicts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import httpx

from ..kinds.common import Resource
from ..kinds.kind import ResourceType
from . import resources
from .config import Config, load_kubeconfig
from .errors import ConfigError, Conflict, Gone, NotFound, WaitTimeout
from .resources import ApiResource, KindRef, Obj
from .transport import (
    PATCH_TYPES,
    Call,
    WatchCursor,
    WatchEvent,
    answer,
    error_of,
    http_options,
    retry_wait,
    transport_error,
)

R = TypeVar("R", bound=Resource)
T = TypeVar("T")
ALL_NAMESPACES = ""
"""``namespace=ALL_NAMESPACES`` lists or watches every namespace; ``None`` (the default)
means the configuration's namespace, as kubectl without ``-n``."""
PAGE_SIZE = 500
WATCH_CHUNK = 300
"""Seconds one watch request lasts before the client resumes it from the last event."""


@dataclass
class ObjectList(Generic[T]):
    """A complete list (every page) and the resourceVersion to watch from."""

    items: list[T] = field(default_factory=list)
    resource_version: str = ""


def _deleting(propagation: str | None, dry_run: bool) -> dict[str, str]:
    params: dict[str, str] = {}
    if propagation:
        params["propagationPolicy"] = propagation
    if dry_run:
        params["dryRun"] = "All"
    return params


class _Ops:
    """What both clients share: the configuration, resolving kinds and namespaces, and every
    request as a :class:`Call`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._discovered: dict[tuple[str, str], ApiResource] = {}

    def namespace(self, res: ApiResource, namespace: str | None) -> str:
        if not res.namespaced:
            return ""
        return self.config.namespace if namespace is None else namespace

    def write_params(self, field_manager: str, dry_run: bool) -> dict[str, str]:
        params = {"fieldManager": field_manager or self.config.field_manager}
        if dry_run:
            params["dryRun"] = "All"
        return params

    def known(self, obj: Resource | Obj, kind: KindRef | None) -> ApiResource | None:
        """The object's resource when it is known without discovery."""
        if kind is not None:
            return resources.resolve(kind)
        found = resources.of_object(obj)
        if found is None and not isinstance(obj, Resource):
            if (obj.get("apiVersion"), obj.get("kind")) in self._discovered:
                return self._discovered[(obj["apiVersion"], obj["kind"])]
        return found

    def discovery_call(self, api_version: str) -> Call:
        group, _, version = api_version.rpartition("/")
        return Call("GET", f"/apis/{group}/{version}" if group else f"/api/{version}")

    def discovered(self, api_version: str, kind: str, document: Any) -> ApiResource:
        """The resource named ``kind`` (or its plural) in an APIResourceList."""
        group, _, version = api_version.rpartition("/")
        for entry in (document or {}).get("resources") or []:
            name = str(entry.get("name") or "")
            if "/" not in name and kind in (entry.get("kind"), name):
                res = ApiResource(group, version, name, bool(entry.get("namespaced")),
                                  str(entry.get("kind") or ""))
                self._discovered[(api_version, res.kind)] = res
                return res
        raise NotFound(404, "NotFound", f"{api_version} serves no resource {kind!r}")

    def where(self, res: ApiResource, obj: Resource | Obj, namespace: str | None
              ) -> tuple[str, str]:
        """(namespace, name) a write of ``obj`` goes to."""
        obj_ns, name = resources.meta_of(obj)
        return self.namespace(res, namespace if namespace is not None else obj_ns or None), name

    def create(self, res: ApiResource, obj: Resource | Obj, namespace: str | None,
               field_manager: str, dry_run: bool) -> Call:
        ns, _ = self.where(res, obj, namespace)
        body = resources.to_body(res, obj)
        if ns:
            body["metadata"]["namespace"] = ns
        return Call("POST", res.path(ns), self.write_params(field_manager, dry_run), body)

    def update(self, res: ApiResource, obj: Resource | Obj, subresource: str,
               field_manager: str, dry_run: bool) -> Call:
        ns, name = self.where(res, obj, None)
        return Call("PUT", res.path(ns, name, subresource),
                    self.write_params(field_manager, dry_run), resources.to_body(res, obj))

    def patch(self, res: ApiResource, name: str, namespace: str | None, patch: Any,
              patch_type: str, subresource: str, field_manager: str, dry_run: bool) -> Call:
        if patch_type not in PATCH_TYPES or patch_type == "apply":
            raise ValueError(f"patch type {patch_type!r}: use merge, json or strategic "
                             "(or apply())")
        return Call("PATCH", res.path(self.namespace(res, namespace), name, subresource),
                    self.write_params(field_manager, dry_run), patch, PATCH_TYPES[patch_type])

    def apply(self, res: ApiResource, obj: Resource | Obj, field_manager: str, force: bool,
              subresource: str, dry_run: bool) -> Call:
        ns, name = self.where(res, obj, None)
        body = resources.to_apply_body(res, obj)
        if ns:
            body["metadata"]["namespace"] = ns
        params = self.write_params(field_manager, dry_run)
        if force:
            params["force"] = "true"
        return Call("PATCH", res.path(ns, name, subresource), params, body, PATCH_TYPES["apply"])

    def list_params(self, label_selector: str, field_selector: str, limit: int,
                    token: str) -> dict[str, str]:
        params = {"limit": str(limit)}
        for key, value in (("labelSelector", label_selector), ("fieldSelector", field_selector),
                           ("continue", token)):
            if value:
                params[key] = value
        return params

    @staticmethod
    def page(res: ApiResource, answered: Any) -> tuple[ObjectList[Any], str]:
        """An answered list page, and the continue token of the next ('' after the last)."""
        meta = answered.get("metadata") or {}
        return (ObjectList([resources.load(res, i) for i in answered.get("items") or []],
                           str(meta.get("resourceVersion") or "")),
                str(meta.get("continue") or ""))

    @staticmethod
    def deadline(timeout: float | None) -> float:
        return math.inf if timeout is None else time.monotonic() + timeout

    @staticmethod
    def chunk(deadline: float) -> int:
        """Seconds the next watch request may last (0: the deadline has passed)."""
        remaining = min(float(WATCH_CHUNK), deadline - time.monotonic())
        return 0 if remaining <= 0 else math.ceil(remaining)

    @staticmethod
    def timed_out(res: ApiResource, namespace: str, name: str, timeout: float, what: str,
                  last: Any) -> WaitTimeout:
        """The timeout naming the last Ready condition (else the last condition) seen."""
        who = f"{res.kind or res.plural} {namespace + '/' if namespace else ''}{name}"
        if last is None:
            return WaitTimeout(f"{who}: not {what} after {timeout:g}s (it does not exist)")
        conds = resources.conditions(last)
        cond = next((c for c in conds if c.get("type") == "Ready"), conds[-1] if conds else None)
        seen = (f"{cond.get('type')}={cond.get('status')} reason={cond.get('reason') or '-'}"
                f" message={cond.get('message') or '-'}") if cond else "no conditions yet"
        return WaitTimeout(f"{who}: not {what} after {timeout:g}s; last seen {seen}", last)


def _typed_events(res: ApiResource, cursor: WatchCursor, line: str) -> WatchEvent | None:
    decoded = cursor.event(line)
    if decoded is None:
        return None
    kind, obj = decoded
    return WatchEvent(kind, obj if kind == "BOOKMARK" else resources.load(res, obj), obj)


class Client:
    """A synchronous client of the Central API (or any KRM API).

    What a call answers follows what it was given: a model class or instance answers model
    instances, a dict answers a dict, a ResourceType or :class:`ApiResource` answers its
    model's instances (dicts for custom resources, or with ``ApiResource.as_dicts()``).

    ``Client()`` reads the kubeconfig kubectl would; ``Client(config)`` takes a
    :class:`Config` (``Config.from_token(...)``, ``load_kubeconfig(path, context)``).
    Close it (or use it in a ``with`` block) to release its connections."""

    def __init__(self, config: Config | None = None, *, kubeconfig: str | Path | None = None,
                 context: str = "") -> None:
        self.config = config or load_kubeconfig(kubeconfig, context)
        self._ops = _Ops(self.config)
        self._http = httpx.Client(**http_options(self.config))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- sending ---------------------------------------------------------------------------------
    def _send(self, call: Call) -> httpx.Response:
        for attempt in count():
            try:
                response = self._http.request(call.method, call.path, **call.request_args())
            except httpx.TransportError as exc:
                raise transport_error(exc, self.config) from None
            wait = retry_wait(call, response, attempt, self.config)
            if wait is None:
                return response
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _do(self, call: Call) -> Any:
        return answer(self._send(call))

    def _of(self, obj: Resource | Obj, kind: KindRef | None) -> ApiResource:
        found = self._ops.known(obj, kind)
        if found is None:
            if not isinstance(obj, dict):
                raise ConfigError(f"cannot tell the resource of {obj!r}")
            found = self.discover(str(obj.get("apiVersion")), str(obj.get("kind")))
        return found.as_dicts() if isinstance(obj, dict) else found

    # -- reading ---------------------------------------------------------------------------------
    def discover(self, api_version: str, kind: str) -> ApiResource:
        """A served resource (a CRD's, say) by apiVersion and kind or plural, from discovery."""
        return self._ops.discovered(api_version, kind,
                                    self._do(self._ops.discovery_call(api_version)))

    @overload
    def get(self, kind: type[R], name: str, namespace: str | None = None) -> R: ...
    @overload
    def get(self, kind: ResourceType | ApiResource, name: str,
            namespace: str | None = None) -> Any: ...

    def get(self, kind: KindRef, name: str, namespace: str | None = None) -> Any:
        """The object ``name``; :class:`NotFound` if there is none."""
        res = resources.resolve(kind)
        return resources.load(res, self._do(Call("GET", res.path(
            self._ops.namespace(res, namespace), name))))

    @overload
    def find(self, kind: type[R], name: str, namespace: str | None = None) -> R | None: ...
    @overload
    def find(self, kind: ResourceType | ApiResource, name: str,
             namespace: str | None = None) -> Any: ...

    def find(self, kind: KindRef, name: str, namespace: str | None = None) -> Any:
        """Like :meth:`get`, but None when the object does not exist."""
        try:
            return self.get(kind, name, namespace)  # type: ignore[arg-type]
        except NotFound:
            return None

    @overload
    def list(self, kind: type[R], namespace: str | None = None, *, label_selector: str = "",
             field_selector: str = "", page_size: int = PAGE_SIZE) -> ObjectList[R]: ...
    @overload
    def list(self, kind: ResourceType | ApiResource, namespace: str | None = None, *,
             label_selector: str = "", field_selector: str = "",
             page_size: int = PAGE_SIZE) -> ObjectList[Any]: ...

    def list(self, kind: KindRef, namespace: str | None = None, *, label_selector: str = "",
             field_selector: str = "", page_size: int = PAGE_SIZE) -> ObjectList[Any]:
        """Every matching object (all pages, one snapshot) and the list's resourceVersion."""
        listing: ObjectList[Any] = ObjectList()
        for page in self._pages(resources.resolve(kind), namespace, label_selector,
                                field_selector, page_size):
            listing.items += page.items
            listing.resource_version = page.resource_version
        return listing

    def iterate(self, kind: KindRef, namespace: str | None = None, *, label_selector: str = "",
                field_selector: str = "", page_size: int = PAGE_SIZE) -> Iterator[Any]:
        """The matching objects page by page, fetching the next page when needed."""
        for page in self._pages(resources.resolve(kind), namespace, label_selector,
                                field_selector, page_size):
            yield from page.items

    def _pages(self, res: ApiResource, namespace: str | None, label_selector: str,
               field_selector: str, page_size: int) -> Iterator[ObjectList[Any]]:
        path, token = res.path(self._ops.namespace(res, namespace)), ""
        while True:
            page, token = self._ops.page(res, self._do(Call("GET", path, self._ops.list_params(
                label_selector, field_selector, page_size, token))))
            yield page
            if not token:
                return

    def watch(self, kind: KindRef, namespace: str | None = None, *,
              resource_version: str = "", label_selector: str = "", field_selector: str = "",
              timeout: float | None = None, bookmarks: bool = True) -> Iterator[WatchEvent]:
        """Events from ``resource_version`` (without one: ADDED for every current object,
        then the changes) until ``timeout`` seconds have passed (None: for ever). The
        client resumes after the server ends a stream; a resourceVersion the server no
        longer keeps raises :class:`Gone` (list again, watch from the list's)."""
        res = resources.resolve(kind)
        ns = self._ops.namespace(res, namespace)
        deadline = self._ops.deadline(timeout)
        cursor = WatchCursor(resource_version, label_selector, field_selector, bookmarks)
        if not resource_version:
            listing = self.list(res, ns, label_selector=label_selector,
                                field_selector=field_selector)
            cursor.resource_version = listing.resource_version
            yield from (WatchEvent("ADDED", item, item if isinstance(item, dict) else
                                   item.model_dump(mode="json")) for item in listing.items)
        while seconds := self._ops.chunk(deadline):
            yield from self._stream(res, ns, cursor, seconds)

    def _stream(self, res: ApiResource, namespace: str, cursor: WatchCursor, seconds: int
                ) -> Iterator[WatchEvent]:
        call = Call("GET", res.path(namespace), cursor.params(seconds))
        timeout = httpx.Timeout(self.config.timeout, read=seconds + self.config.timeout)
        for attempt in count():
            try:
                with self._http.stream("GET", call.path, params=call.params,
                                       timeout=timeout) as response:
                    if response.status_code < 400:
                        for line in response.iter_lines():
                            event = _typed_events(res, cursor, line)
                            if event is not None:
                                yield event
                        return
                    response.read()
            except httpx.TransportError as exc:
                raise transport_error(exc, self.config) from None
            wait = retry_wait(call, response, attempt, self.config)
            if wait is None:
                raise error_of(response)
            time.sleep(wait)

    # -- writing ---------------------------------------------------------------------------------
    @overload
    def create(self, obj: R, *, kind: KindRef | None = None, namespace: str | None = None,
               field_manager: str = "", dry_run: bool = False) -> R: ...
    @overload
    def create(self, obj: Obj, *, kind: KindRef | None = None, namespace: str | None = None,
               field_manager: str = "", dry_run: bool = False) -> Any: ...

    def create(self, obj: Resource | Obj, *, kind: KindRef | None = None,
               namespace: str | None = None, field_manager: str = "",
               dry_run: bool = False) -> Any:
        """Create ``obj`` (a model instance or a dict); :class:`AlreadyExists` if taken."""
        res = self._of(obj, kind)
        return resources.load(res, self._do(self._ops.create(res, obj, namespace,
                                                             field_manager, dry_run)))

    @overload
    def update(self, obj: R, *, kind: KindRef | None = None, field_manager: str = "",
               dry_run: bool = False) -> R: ...
    @overload
    def update(self, obj: Obj, *, kind: KindRef | None = None, field_manager: str = "",
               dry_run: bool = False) -> Any: ...

    def update(self, obj: Resource | Obj, *, kind: KindRef | None = None,
               field_manager: str = "", dry_run: bool = False) -> Any:
        """Replace the object; its resourceVersion must be the stored one (else
        :class:`Conflict`: read it again, change it again)."""
        res = self._of(obj, kind)
        return resources.load(res, self._do(self._ops.update(res, obj, "", field_manager,
                                                             dry_run)))

    @overload
    def update_status(self, obj: R, *, kind: KindRef | None = None,
                      field_manager: str = "") -> R: ...
    @overload
    def update_status(self, obj: Obj, *, kind: KindRef | None = None,
                      field_manager: str = "") -> Any: ...

    def update_status(self, obj: Resource | Obj, *, kind: KindRef | None = None,
                      field_manager: str = "") -> Any:
        """Replace the object's status (the ``/status`` subresource)."""
        res = self._of(obj, kind)
        return resources.load(res, self._do(self._ops.update(res, obj, "status",
                                                             field_manager, False)))

    @overload
    def patch(self, kind: type[R], name: str, patch: Any, namespace: str | None = None, *,
              type: str = "merge", subresource: str = "", field_manager: str = "",
              dry_run: bool = False) -> R: ...
    @overload
    def patch(self, kind: ResourceType | ApiResource, name: str, patch: Any,
              namespace: str | None = None, *, type: str = "merge", subresource: str = "",
              field_manager: str = "", dry_run: bool = False) -> Any: ...

    def patch(self, kind: KindRef, name: str, patch: Any, namespace: str | None = None, *,
              type: str = "merge", subresource: str = "", field_manager: str = "",
              dry_run: bool = False) -> Any:
        """Patch: ``type`` is ``merge`` (RFC 7386), ``json`` (RFC 6902, a list of
        operations) or ``strategic`` (built-in kinds only; custom resources answer 415)."""
        res = resources.resolve(kind)
        return resources.load(res, self._do(self._ops.patch(
            res, name, namespace, patch, type, subresource, field_manager, dry_run)))

    @overload
    def apply(self, obj: R, *, field_manager: str = "", force: bool = False,
              kind: KindRef | None = None, subresource: str = "", dry_run: bool = False) -> R: ...
    @overload
    def apply(self, obj: Obj, *, field_manager: str = "", force: bool = False,
              kind: KindRef | None = None, subresource: str = "",
              dry_run: bool = False) -> Any: ...

    def apply(self, obj: Resource | Obj, *, field_manager: str = "", force: bool = False,
              kind: KindRef | None = None, subresource: str = "", dry_run: bool = False) -> Any:
        """Server-side apply: ``field_manager`` owns the fields ``obj`` sets (a model's
        fields that were set, not its defaults). Fields another manager owns with another
        value raise :class:`Conflict` unless ``force``."""
        res = self._of(obj, kind)
        return resources.load(res, self._do(self._ops.apply(res, obj, field_manager, force,
                                                            subresource, dry_run)))

    def modify(self, kind: type[R], name: str, change: Callable[[R], None],
               namespace: str | None = None, *, attempts: int = 5) -> R:
        """Read, ``change`` in place, update — again on :class:`Conflict` (a controller
        wrote meanwhile), at most ``attempts`` times (client-go's RetryOnConflict)."""
        for attempt in range(attempts):
            obj = self.get(kind, name, namespace)
            change(obj)
            try:
                return self.update(obj)
            except Conflict:
                if attempt == attempts - 1:
                    raise
        raise ValueError("attempts must be at least 1")

    def delete(self, kind: KindRef, name: str, namespace: str | None = None, *,
               propagation: str | None = None, wait: bool = False, timeout: float = 60.0,
               dry_run: bool = False) -> None:
        """Delete (``propagation``: Background, Foreground or Orphan). With ``wait``, return
        once the object is gone — after its finalizers ran — or raise :class:`WaitTimeout`."""
        res = resources.resolve(kind)
        ns = self._ops.namespace(res, namespace)
        self._do(Call("DELETE", res.path(ns, name), _deleting(propagation, dry_run)))
        if wait and not dry_run:
            self.wait_for(res, name, lambda obj: obj is None, ns, timeout=timeout,
                          what="deleted")

    def create_subresource(self, kind: KindRef, name: str, subresource: str, body: Obj,
                           namespace: str | None = None) -> Obj:
        """POST to an action subresource (a Cluster's ``kubeconfig``, a ServiceAccount's
        ``token``): the answered object, as a dict."""
        res = resources.resolve(kind)
        answered: Obj = self._do(Call("POST", res.path(self._ops.namespace(res, namespace),
                                                      name, subresource), body=body))
        return answered

    # -- waiting ---------------------------------------------------------------------------------
    def wait_for(self, kind: KindRef, name: str, predicate: Callable[[Any], bool],
                 namespace: str | None = None, *, timeout: float = 60.0,
                 what: str = "as expected") -> Any:
        """Follow the object by watch until ``predicate(obj)`` holds (``obj`` is None while
        it does not exist) and return it, or raise :class:`WaitTimeout` with the last one."""
        res = resources.resolve(kind)
        ns = self._ops.namespace(res, namespace)
        deadline, selector = self._ops.deadline(timeout), f"metadata.name={name}"
        last: Any = None
        while True:
            listing = self.list(res, ns, field_selector=selector)
            last = listing.items[0] if listing.items else None
            if predicate(last):
                return last
            try:
                for event in self.watch(res, ns, resource_version=listing.resource_version,
                                        field_selector=selector,
                                        timeout=deadline - time.monotonic()):
                    if event.type != "BOOKMARK":
                        last = None if event.type == "DELETED" else event.object
                        if predicate(last):
                            return last
            except Gone:
                continue  # compacted meanwhile: read it again
            raise self._ops.timed_out(res, ns, name, timeout, what, last)

    @overload
    def wait_ready(self, obj: R, timeout: float = 60.0, *, kind: KindRef | None = None) -> R: ...
    @overload
    def wait_ready(self, obj: Obj, timeout: float = 60.0, *,
                   kind: KindRef | None = None) -> Any: ...

    def wait_ready(self, obj: Resource | Obj, timeout: float = 60.0, *,
                   kind: KindRef | None = None) -> Any:
        """Wait until the object's Ready condition is True for its current generation;
        :class:`WaitTimeout` names the last Ready reason and message."""
        res = self._of(obj, kind)
        ns, name = self._ops.where(res, obj, None)
        return self.wait_for(res, name, resources.is_ready, ns, timeout=timeout, what="Ready")


class AsyncClient:
    """The asynchronous twin of :class:`Client` (same methods, awaited; ``watch`` is an
    async iterator). Close it with ``await client.aclose()`` or ``async with``."""

    def __init__(self, config: Config | None = None, *, kubeconfig: str | Path | None = None,
                 context: str = "") -> None:
        self.config = config or load_kubeconfig(kubeconfig, context)
        self._ops = _Ops(self.config)
        self._http = httpx.AsyncClient(**http_options(self.config))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- sending ---------------------------------------------------------------------------------
    async def _send(self, call: Call) -> httpx.Response:
        for attempt in count():
            try:
                response = await self._http.request(call.method, call.path,
                                                    **call.request_args())
            except httpx.TransportError as exc:
                raise transport_error(exc, self.config) from None
            wait = retry_wait(call, response, attempt, self.config)
            if wait is None:
                return response
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _do(self, call: Call) -> Any:
        return answer(await self._send(call))

    async def _of(self, obj: Resource | Obj, kind: KindRef | None) -> ApiResource:
        found = self._ops.known(obj, kind)
        if found is None:
            if not isinstance(obj, dict):
                raise ConfigError(f"cannot tell the resource of {obj!r}")
            found = await self.discover(str(obj.get("apiVersion")), str(obj.get("kind")))
        return found.as_dicts() if isinstance(obj, dict) else found

    # -- reading ---------------------------------------------------------------------------------
    async def discover(self, api_version: str, kind: str) -> ApiResource:
        """A served resource (a CRD's, say) by apiVersion and kind or plural, from discovery."""
        return self._ops.discovered(api_version, kind,
                                    await self._do(self._ops.discovery_call(api_version)))

    @overload
    async def get(self, kind: type[R], name: str, namespace: str | None = None) -> R: ...
    @overload
    async def get(self, kind: ResourceType | ApiResource, name: str,
                  namespace: str | None = None) -> Any: ...

    async def get(self, kind: KindRef, name: str, namespace: str | None = None) -> Any:
        """The object ``name``; :class:`NotFound` if there is none."""
        res = resources.resolve(kind)
        return resources.load(res, await self._do(Call("GET", res.path(
            self._ops.namespace(res, namespace), name))))

    @overload
    async def find(self, kind: type[R], name: str, namespace: str | None = None
                   ) -> R | None: ...
    @overload
    async def find(self, kind: ResourceType | ApiResource, name: str,
                   namespace: str | None = None) -> Any: ...

    async def find(self, kind: KindRef, name: str, namespace: str | None = None) -> Any:
        """Like :meth:`get`, but None when the object does not exist."""
        try:
            return await self.get(kind, name, namespace)  # type: ignore[arg-type]
        except NotFound:
            return None

    @overload
    async def list(self, kind: type[R], namespace: str | None = None, *,
                   label_selector: str = "", field_selector: str = "",
                   page_size: int = PAGE_SIZE) -> ObjectList[R]: ...
    @overload
    async def list(self, kind: ResourceType | ApiResource, namespace: str | None = None, *,
                   label_selector: str = "", field_selector: str = "",
                   page_size: int = PAGE_SIZE) -> ObjectList[Any]: ...

    async def list(self, kind: KindRef, namespace: str | None = None, *,
                   label_selector: str = "", field_selector: str = "",
                   page_size: int = PAGE_SIZE) -> ObjectList[Any]:
        """Every matching object (all pages, one snapshot) and the list's resourceVersion."""
        listing: ObjectList[Any] = ObjectList()
        async for page in self._pages(resources.resolve(kind), namespace, label_selector,
                                      field_selector, page_size):
            listing.items += page.items
            listing.resource_version = page.resource_version
        return listing

    async def iterate(self, kind: KindRef, namespace: str | None = None, *,
                      label_selector: str = "", field_selector: str = "",
                      page_size: int = PAGE_SIZE) -> AsyncIterator[Any]:
        """The matching objects page by page, fetching the next page when needed."""
        async for page in self._pages(resources.resolve(kind), namespace, label_selector,
                                      field_selector, page_size):
            for item in page.items:
                yield item

    async def _pages(self, res: ApiResource, namespace: str | None, label_selector: str,
                     field_selector: str, page_size: int) -> AsyncIterator[ObjectList[Any]]:
        path, token = res.path(self._ops.namespace(res, namespace)), ""
        while True:
            page, token = self._ops.page(res, await self._do(Call(
                "GET", path, self._ops.list_params(label_selector, field_selector, page_size,
                                                   token))))
            yield page
            if not token:
                return

    async def watch(self, kind: KindRef, namespace: str | None = None, *,
                    resource_version: str = "", label_selector: str = "",
                    field_selector: str = "", timeout: float | None = None,
                    bookmarks: bool = True) -> AsyncIterator[WatchEvent]:
        """See :meth:`Client.watch`."""
        res = resources.resolve(kind)
        ns = self._ops.namespace(res, namespace)
        deadline = self._ops.deadline(timeout)
        cursor = WatchCursor(resource_version, label_selector, field_selector, bookmarks)
        if not resource_version:
            listing = await self.list(res, ns, label_selector=label_selector,
                                      field_selector=field_selector)
            cursor.resource_version = listing.resource_version
            for item in listing.items:
                yield WatchEvent("ADDED", item, item if isinstance(item, dict) else
                                 item.model_dump(mode="json"))
        while seconds := self._ops.chunk(deadline):
            async for event in self._stream(res, ns, cursor, seconds):
                yield event

    async def _stream(self, res: ApiResource, namespace: str, cursor: WatchCursor,
                      seconds: int) -> AsyncIterator[WatchEvent]:
        call = Call("GET", res.path(namespace), cursor.params(seconds))
        timeout = httpx.Timeout(self.config.timeout, read=seconds + self.config.timeout)
        for attempt in count():
            try:
                async with self._http.stream("GET", call.path, params=call.params,
                                             timeout=timeout) as response:
                    if response.status_code < 400:
                        async for line in response.aiter_lines():
                            event = _typed_events(res, cursor, line)
                            if event is not None:
                                yield event
                        return
                    await response.aread()
            except httpx.TransportError as exc:
                raise transport_error(exc, self.config) from None
            wait = retry_wait(call, response, attempt, self.config)
            if wait is None:
                raise error_of(response)
            await asyncio.sleep(wait)

    # -- writing ---------------------------------------------------------------------------------
    @overload
    async def create(self, obj: R, *, kind: KindRef | None = None,
                     namespace: str | None = None, field_manager: str = "",
                     dry_run: bool = False) -> R: ...
    @overload
    async def create(self, obj: Obj, *, kind: KindRef | None = None,
                     namespace: str | None = None, field_manager: str = "",
                     dry_run: bool = False) -> Any: ...

    async def create(self, obj: Resource | Obj, *, kind: KindRef | None = None,
                     namespace: str | None = None, field_manager: str = "",
                     dry_run: bool = False) -> Any:
        """Create ``obj`` (a model instance or a dict); :class:`AlreadyExists` if taken."""
        res = await self._of(obj, kind)
        return resources.load(res, await self._do(self._ops.create(res, obj, namespace,
                                                                   field_manager, dry_run)))

    @overload
    async def update(self, obj: R, *, kind: KindRef | None = None, field_manager: str = "",
                     dry_run: bool = False) -> R: ...
    @overload
    async def update(self, obj: Obj, *, kind: KindRef | None = None, field_manager: str = "",
                     dry_run: bool = False) -> Any: ...

    async def update(self, obj: Resource | Obj, *, kind: KindRef | None = None,
                     field_manager: str = "", dry_run: bool = False) -> Any:
        """See :meth:`Client.update`."""
        res = await self._of(obj, kind)
        return resources.load(res, await self._do(self._ops.update(res, obj, "", field_manager,
                                                                   dry_run)))

    @overload
    async def update_status(self, obj: R, *, kind: KindRef | None = None,
                            field_manager: str = "") -> R: ...
    @overload
    async def update_status(self, obj: Obj, *, kind: KindRef | None = None,
                            field_manager: str = "") -> Any: ...

    async def update_status(self, obj: Resource | Obj, *, kind: KindRef | None = None,
                            field_manager: str = "") -> Any:
        """Replace the object's status (the ``/status`` subresource)."""
        res = await self._of(obj, kind)
        return resources.load(res, await self._do(self._ops.update(res, obj, "status",
                                                                   field_manager, False)))

    @overload
    async def patch(self, kind: type[R], name: str, patch: Any, namespace: str | None = None,
                    *, type: str = "merge", subresource: str = "", field_manager: str = "",
                    dry_run: bool = False) -> R: ...
    @overload
    async def patch(self, kind: ResourceType | ApiResource, name: str, patch: Any,
                    namespace: str | None = None, *, type: str = "merge",
                    subresource: str = "", field_manager: str = "",
                    dry_run: bool = False) -> Any: ...

    async def patch(self, kind: KindRef, name: str, patch: Any, namespace: str | None = None,
                    *, type: str = "merge", subresource: str = "", field_manager: str = "",
                    dry_run: bool = False) -> Any:
        """See :meth:`Client.patch`."""
        res = resources.resolve(kind)
        return resources.load(res, await self._do(self._ops.patch(
            res, name, namespace, patch, type, subresource, field_manager, dry_run)))

    @overload
    async def apply(self, obj: R, *, field_manager: str = "", force: bool = False,
                    kind: KindRef | None = None, subresource: str = "",
                    dry_run: bool = False) -> R: ...
    @overload
    async def apply(self, obj: Obj, *, field_manager: str = "", force: bool = False,
                    kind: KindRef | None = None, subresource: str = "",
                    dry_run: bool = False) -> Any: ...

    async def apply(self, obj: Resource | Obj, *, field_manager: str = "", force: bool = False,
                    kind: KindRef | None = None, subresource: str = "",
                    dry_run: bool = False) -> Any:
        """See :meth:`Client.apply`."""
        res = await self._of(obj, kind)
        return resources.load(res, await self._do(self._ops.apply(
            res, obj, field_manager, force, subresource, dry_run)))

    async def modify(self, kind: type[R], name: str, change: Callable[[R], None],
                     namespace: str | None = None, *, attempts: int = 5) -> R:
        """See :meth:`Client.modify`."""
        for attempt in range(attempts):
            obj = await self.get(kind, name, namespace)
            change(obj)
            try:
                return await self.update(obj)
            except Conflict:
                if attempt == attempts - 1:
                    raise
        raise ValueError("attempts must be at least 1")

    async def delete(self, kind: KindRef, name: str, namespace: str | None = None, *,
                     propagation: str | None = None, wait: bool = False,
                     timeout: float = 60.0, dry_run: bool = False) -> None:
        """See :meth:`Client.delete`."""
        res = resources.resolve(kind)
        ns = self._ops.namespace(res, namespace)
        await self._do(Call("DELETE", res.path(ns, name), _deleting(propagation, dry_run)))
        if wait and not dry_run:
            await self.wait_for(res, name, lambda obj: obj is None, ns, timeout=timeout,
                                what="deleted")

    async def create_subresource(self, kind: KindRef, name: str, subresource: str, body: Obj,
                                 namespace: str | None = None) -> Obj:
        """See :meth:`Client.create_subresource`."""
        res = resources.resolve(kind)
        answered: Obj = await self._do(Call("POST", res.path(
            self._ops.namespace(res, namespace), name, subresource), body=body))
        return answered

    # -- waiting ---------------------------------------------------------------------------------
    async def wait_for(self, kind: KindRef, name: str, predicate: Callable[[Any], bool],
                       namespace: str | None = None, *, timeout: float = 60.0,
                       what: str = "as expected") -> Any:
        """See :meth:`Client.wait_for`."""
        res = resources.resolve(kind)
        ns = self._ops.namespace(res, namespace)
        deadline, selector = self._ops.deadline(timeout), f"metadata.name={name}"
        last: Any = None
        while True:
            listing = await self.list(res, ns, field_selector=selector)
            last = listing.items[0] if listing.items else None
            if predicate(last):
                return last
            try:
                async for event in self.watch(res, ns, resource_version=listing.resource_version,
                                              field_selector=selector,
                                              timeout=deadline - time.monotonic()):
                    if event.type != "BOOKMARK":
                        last = None if event.type == "DELETED" else event.object
                        if predicate(last):
                            return last
            except Gone:
                continue
            raise self._ops.timed_out(res, ns, name, timeout, what, last)

    @overload
    async def wait_ready(self, obj: R, timeout: float = 60.0, *,
                         kind: KindRef | None = None) -> R: ...
    @overload
    async def wait_ready(self, obj: Obj, timeout: float = 60.0, *,
                         kind: KindRef | None = None) -> Any: ...

    async def wait_ready(self, obj: Resource | Obj, timeout: float = 60.0, *,
                         kind: KindRef | None = None) -> Any:
        """See :meth:`Client.wait_ready`."""
        res = await self._of(obj, kind)
        ns, name = self._ops.where(res, obj, None)
        return await self.wait_for(res, name, resources.is_ready, ns, timeout=timeout,
                                   what="Ready")


