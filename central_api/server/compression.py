"""gzip for large responses, as kube-apiserver does it.

kube-apiserver compresses a response larger than 128 KiB when the client sends
``Accept-Encoding: gzip`` (kubectl and client-go always do; browsers too). The console's Table
list of 10,000 rows is 5.5 MB of JSON, the OpenAPI v2 document with 500 CRDs 18 MB; gzip makes
them a tenth of that on the wire.

Why it is safe to offer:

- **Not on the event loop.** zlib releases the GIL while it deflates, so compression runs in
  a worker thread of its own small pool, beside the loop, and cannot starve the store's
  workers either.
- **Bounded work.** A response is compressed once, at level :data:`LEVEL` (the fastest
  levels cost about as much CPU per byte as sending the bytes over TLS), and only a
  response the server has already built whole: the work is proportional to a response
  size the caller could get anyway, whatever the request. Watch streams and other
  streaming responses are never compressed (their size is unknown and kube does not
  either); nor are responses below :data:`THRESHOLD`, where it saves too little to pay.
- **Caches stay right.** A response large enough to be compressed says ``Vary:
  Accept-Encoding`` whether it was or not, so a shared cache never hands gzip to a client
  that did not ask; its ETag becomes weak when compressed (the bytes differ from the
  uncompressed variant's), which ``If-None-Match`` still matches (weak comparison).
"""

from __future__ import annotations

import asyncio
import gzip
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.responses import Response

THRESHOLD = 128 * 1024
"""kube-apiserver's: smaller responses are sent as they are."""
LEVEL = 3
"""zlib level, measured on the OpenAPI v2 document of 500 CRDs (17.7 MB) and its protobuf
form (6.2 MB): levels 1-3 cost the same CPU (57 and 30 ms), 3 giving 8-15% smaller bodies
(1,075 kB against 1,258 kB); level 4 costs 1.6-1.8 times that CPU for 15-25% less again."""
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gzip")
"""Two: the machine's cores; further compressions wait their turn instead of piling up."""


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip``, ``x-gzip`` or ``*``, not q=0)."""
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        if coding.strip() not in ("gzip", "x-gzip", "*"):
            continue
        quality = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            return float(quality) > 0
        except ValueError:
            return False
    return False


def add_vary(headers: MutableHeaders, field: str) -> None:
    """Add ``field`` to ``Vary`` once, keeping what the response already varies on."""
    present = [v.strip() for v in headers.get("vary", "").split(",") if v.strip()]
    if field.lower() not in (v.lower() for v in present) and "*" not in present:
        headers["vary"] = ", ".join([*present, field])


def weak(etag: str) -> str:
    return etag if etag.startswith("W/") else f"W/{etag}"


async def compress(body: bytes) -> bytes:
    """``body`` gzipped at :data:`LEVEL` in the compression pool (no timestamp in the
    header, so the same body always gives the same bytes)."""
    return await asyncio.get_running_loop().run_in_executor(
        _POOL, lambda: gzip.compress(body, compresslevel=LEVEL, mtime=0))


async def compress_large(scope: Any, response: Response) -> Response:
    """``response``, gzipped if it is large and the client accepts gzip (the request's
    ``scope``); streaming responses (no ``body``) and encoded ones as they are."""
    body = getattr(response, "body", None)
    if not isinstance(body, bytes) or len(body) < THRESHOLD or scope.get("method") == "HEAD":
        return response
    headers = response.headers
    if "content-encoding" in headers:
        return response
    add_vary(headers, "Accept-Encoding")
    if not accepts_gzip(_header(scope, b"accept-encoding")):
        return response
    response.body = await compress(body)
    headers["content-length"] = str(len(response.body))
    headers["content-encoding"] = "gzip"
    if "etag" in headers:
        headers["etag"] = weak(headers["etag"])
    return response


def _header(scope: Any, name: bytes) -> str:
    return ",".join(value.decode("latin-1") for key, value in scope.get("headers", ())
                    if key == name)
