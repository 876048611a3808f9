"""Which responses are gzipped, and how their headers change (the server's own tests show
it end to end: tests/integration/test_documents.py)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.responses import Response, StreamingResponse

from central_api.server.compression import THRESHOLD, accepts_gzip, add_vary, compress_large

LARGE = b'{"items":[' + b'{"name":"x"},' * (THRESHOLD // 10) + b'{}]}'


def scope(accept_encoding: str = "gzip", method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method,
            "headers": [(b"accept-encoding", accept_encoding.encode())]}


def run(response: Response, request: dict[str, Any]) -> Response:
    return asyncio.run(compress_large(request, response))


@pytest.mark.parametrize(("header", "accepted"), [
    ("gzip", True), ("gzip, deflate, br", True), ("deflate, gzip;q=0.5", True),
    ("*", True), ("x-gzip", True), ("GZIP", True), ("gzip;q=0", False),
    ("identity", False), ("", False), ("br", False), ("gzip;q=zero", False),
])
def test_accept_encoding_is_read_with_its_quality(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_vary_is_extended_once_and_keeps_what_was_there() -> None:
    response = Response(b"", headers={"Vary": "Accept"})
    add_vary(response.headers, "Accept-Encoding")
    add_vary(response.headers, "accept-encoding")
    assert response.headers["vary"] == "Accept, Accept-Encoding"


def test_a_large_body_is_gzipped_with_its_length_and_a_weak_etag() -> None:
    response = run(Response(LARGE, headers={"ETag": '"abc"'}), scope())
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(response.body) == LARGE
    assert response.headers["content-length"] == str(len(response.body))
    assert response.headers["etag"] == 'W/"abc"'
    assert response.headers["vary"] == "Accept-Encoding"


@pytest.mark.parametrize("request_scope", [scope("identity"), scope(method="HEAD")])
def test_a_large_body_for_who_does_not_take_gzip_is_unchanged_but_varies(
        request_scope: dict[str, Any]) -> None:
    response = run(Response(LARGE), request_scope)
    assert response.body == LARGE
    assert "content-encoding" not in response.headers
    if request_scope["method"] == "GET":
        assert response.headers["vary"] == "Accept-Encoding"


def test_a_small_body_is_unchanged() -> None:
    response = run(Response(b"{}"), scope())
    assert response.body == b"{}"
    assert "content-encoding" not in response.headers and "vary" not in response.headers


def test_an_encoded_body_is_not_encoded_again() -> None:
    body = gzip.compress(LARGE)
    response = run(Response(body, headers={"Content-Encoding": "gzip"}), scope())
    assert response.body == body


def test_a_stream_is_never_compressed() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield LARGE

    stream = StreamingResponse(chunks())
    assert run(stream, scope()) is stream
    assert "content-encoding" not in stream.headers
