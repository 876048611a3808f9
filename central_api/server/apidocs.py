"""Discovery and OpenAPI documents as HTTP answers: encoded once per catalog generation.

kubectl reads discovery before nearly every command and the OpenAPI documents for apply,
explain and diff. With 500 CRDs served they were rebuilt on every request: the aggregated
discovery took 45 ms, ``/openapi/v2`` 1.5 s (2.3 s as protobuf) and the ``/openapi/v3``
index 2.5 s of CPU, all of it on the event loop, stalling every other request meanwhile.

Now each document is built once per :attr:`Catalog.generation`, in a worker thread, by
whichever request first needs it (later ones wait for the same build), and kept as encoded
bytes with an ETag (a hash of the bytes, so every replica serving the same kinds gives the
same one): an unchanged document costs a dictionary lookup, or a 304 to a client that sends
``If-None-Match`` (kubectl's HTTP cache does). Its gzip form, for a large document, is
compressed once too. The OpenAPI documents are assembled from parts encoded once per kind
(:class:`~central_api.server.openapi.OpenApiDocuments`), so a CRD change costs that CRD's
share and a join.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response

from ..kinds.catalog import Catalog
from . import compression, discovery, openapi_pb
from .openapi import OpenApiDocuments, dumps
from .routing import split_group_version

AGGREGATED = "apidiscovery.k8s.io"
JSON = "application/json"


@dataclass
class Encoded:
    """One document as sent: its bytes, media type, ETag and headers, and its gzip form
    once a client has asked for it."""

    body: bytes
    media_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    _gzipped: asyncio.Future[bytes] | None = None

    def __post_init__(self) -> None:
        self.etag = f'"{hashlib.blake2b(self.body, digest_size=16).hexdigest()}"'

    async def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = asyncio.ensure_future(compression.compress(self.body))
        return await asyncio.shield(self._gzipped)


Builder = Callable[[], "Encoded | None"]


class ApiDocuments:
    """The discovery and OpenAPI answers of one process, cached per catalog generation."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.openapi = OpenApiDocuments(catalog)
        self._generation = -1
        self._built: dict[Hashable, asyncio.Future[Encoded | None]] = {}

    async def answer(self, request: Request, path: str, parts: list[str]) -> Response | None:
        """The document at ``path`` (split into ``parts``); None: no such document."""
        found = self._route(request, path, parts)
        if found is None:
            return None
        doc = await self._get(*found)
        return None if doc is None else await _respond(doc, request)

    def _route(self, request: Request, path: str, parts: list[str]
               ) -> tuple[Hashable, Builder] | None:
        if parts and parts[0] == "openapi":
            return self._openapi(parts[1:], request.headers.get("accept", ""))
        if path in ("/api", "/apis"):
            return self._root(request, legacy=path == "/api")
        catalog = self.catalog
        if len(parts) == 2 and parts[0] == "apis":
            group = parts[1]
            if not discovery.serves(catalog, group):
                return None
            return ("group", group), lambda: _json(discovery.api_group(catalog, group))
        gv = split_group_version(parts)
        if gv is None or gv[2] or not discovery.serves(catalog, gv[0], gv[1]):
            return None  # only what is served is cached, so the cache stays bounded
        group, version = gv[0], gv[1]
        return (("resources", group, version),
                lambda: _json(discovery.resource_list(catalog, group, version)))

    def _root(self, request: Request, legacy: bool) -> tuple[Hashable, Builder]:
        """``/api`` or ``/apis``: aggregated when the client asks for it (kubectl 1.27 asks
        for v2beta1), else the legacy list. Both vary on Accept, as kube's do."""
        catalog, vary = self.catalog, {"Vary": "Accept"}
        version = _aggregated_version(request)
        if version in ("v2", "v2beta1"):
            kind = f"application/json;g={AGGREGATED};v={version};as=APIGroupDiscoveryList"
            return (("aggregated", legacy, version),
                    lambda: _json(discovery.aggregated(catalog, legacy, version), kind, vary))
        if legacy:
            return ("api",), lambda: _json(discovery.api_versions(), headers=vary)
        return ("apis",), lambda: _json(discovery.api_group_list(catalog), headers=vary)

    def _openapi(self, parts: list[str], accept: str) -> tuple[Hashable, Builder] | None:
        docs = self.openapi
        if parts == ["v2"]:
            if "protobuf" in accept and "application/json" not in accept:
                return ("v2", "protobuf"), lambda: Encoded(docs.v2_protobuf(),
                                                           openapi_pb.MEDIA_TYPE)
            return ("v2",), lambda: Encoded(docs.v2())
        if parts == ["v3"]:
            return ("v3",), lambda: Encoded(docs.index())
        gv = split_group_version(parts[1:]) if len(parts) >= 3 and parts[0] == "v3" else None
        if gv is None or gv[2] or not discovery.serves(self.catalog, gv[0], gv[1]):
            return None
        group, version = gv[0], gv[1]

        def build() -> Encoded | None:
            body = docs.group_version(group, version)
            return None if body is None else Encoded(body, headers={"Cache-Control": "no-cache"})
        return ("v3", group, version), build

    async def _get(self, key: Hashable, build: Builder) -> Encoded | None:
        """The document ``key`` of the current generation, built in a worker thread by the
        first request that needs it; requests meanwhile wait for that same build."""
        if self.catalog.generation != self._generation:
            self._generation, self._built = self.catalog.generation, {}
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = asyncio.ensure_future(asyncio.to_thread(build))
            built.add_done_callback(lambda done: self._forget_failed(key, done))
        return await asyncio.shield(built)

    def _forget_failed(self, key: Hashable, done: asyncio.Future[Encoded | None]) -> None:
        """A build that raised is tried again by the next request, not cached."""
        if not done.cancelled() and done.exception() is not None \
                and self._built.get(key) is done:
            del self._built[key]


def _json(doc: object, media_type: str = JSON,
          headers: dict[str, str] | None = None) -> Encoded | None:
    return None if doc is None else Encoded(dumps(doc), media_type, headers or {})


def _aggregated_version(request: Request) -> str | None:
    """The apidiscovery version the client accepts."""
    for part in request.headers.get("accept", "").split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("g") == AGGREGATED and params.get("as") == "APIGroupDiscoveryList":
            return params.get("v")
    return None


async def _respond(doc: Encoded, request: Request) -> Response:
    headers = MutableHeaders(headers={**doc.headers, "ETag": doc.etag})
    large = len(doc.body) >= compression.THRESHOLD
    if large:
        compression.add_vary(headers, "Accept-Encoding")
    gzip = large and compression.accepts_gzip(request.headers.get("accept-encoding", ""))
    if gzip:
        headers["ETag"] = compression.weak(doc.etag)
    if _matches(request.headers.get("if-none-match", ""), doc.etag):
        return Response(status_code=304, headers=dict(headers))
    if not gzip:
        return Response(doc.body, headers=dict(headers), media_type=doc.media_type)
    headers["Content-Encoding"] = "gzip"
    return Response(await doc.gzipped(), headers=dict(headers), media_type=doc.media_type)


def _matches(if_none_match: str, etag: str) -> bool:
    """``If-None-Match`` by weak comparison (RFC 9110 13.1.2): ``W/"x"`` matches ``"x"``."""
    if if_none_match.strip() == "*":
        return True
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag.removeprefix("W/") in tags
