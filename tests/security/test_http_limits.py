"""The request-header limits of ``scs serve``'s HTTP layer (llhttp through httptools, which
has no limit of its own), seen from a raw TLS socket: 32 KiB of request line and headers
however they arrive, 431 with a ``Status`` before the application sees anything, a header
that never ends closed without waiting for the deadline, and pipelined and large requests
that stay within the limit still served."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.security.support import client, raw_request, tls, unique
from tests.server import ScsServer

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 3.0
KiB = 1024
SECRETS = "/api/v1/namespaces/default/secrets"


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    server = ScsServer(config={"limits": {"headerTimeoutSeconds": HEADER_TIMEOUT}})
    try:
        yield server.start()
    finally:
        server.cleanup()


def connect(server: ScsServer) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return tls(server).wrap_socket(raw, server_hostname="127.0.0.1")


def head(server: ScsServer, method: str, path: str, extra: str = "", body: bytes = b"",
         close: bool = True) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {server.token}\r\nAccept: application/json\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n").encode() + body


def read_all(sock: ssl.SSLSocket) -> bytes:
    answer = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:  # includes ssl.SSLError: a reset after the answer
            return answer
        if not chunk:
            return answer
        answer += chunk


def responses(answer: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in ``answer`` (bodies with Content-Length)."""
    found = []
    while answer.startswith(b"HTTP/"):
        top, _, rest = answer.partition(b"\r\n\r\n")
        lines = top.split(b"\r\n")
        fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
        size = int(fields.get(b"content-length", b"0"))
        found.append((int(lines[0].split(b" ")[1]), rest[:size]))
        answer = rest[size:]
    return found


def assert_431(status: int, body: bytes) -> None:
    assert status == 431, f"HTTP {status}: {body[:200]!r}"
    answer = json.loads(body)
    assert answer["kind"] == "Status" and answer["reason"] == "RequestHeaderFieldsTooLarge"
    assert answer["code"] == 431


def create_secret_request(server: ScsServer, name: str, extra: str = "") -> bytes:
    body = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                       "stringData": {"k": "v"}}).encode()
    return head(server, "POST", SECRETS, extra, body)


def secret_exists(server: ScsServer, name: str) -> bool:
    with client(server, server.token) as admin:
        return admin.get(f"{SECRETS}/{name}").status_code == 200


def test_many_small_headers_adding_up_beyond_32_KiB_get_431_and_nothing_is_done(
        server: ScsServer) -> None:
    name = unique("many-headers")
    padding = "".join(f"X-Pad-{i}: {'v' * 90}\r\n" for i in range(400))  # ~40 KiB
    [(status, body)] = responses(raw_request(server, create_secret_request(server, name,
                                                                           padding)))
    assert_431(status, body)
    assert not secret_exists(server, name), "the refused create was carried out"


def test_a_url_beyond_32_KiB_gets_431(server: ScsServer) -> None:
    path = f"{SECRETS}?labelSelector={'a' * 40 * KiB}"
    [(status, body)] = responses(raw_request(server, head(server, "GET", path)))
    assert_431(status, body)


def test_a_header_block_dribbled_in_small_segments_is_counted_whole(server: ScsServer) -> None:
    """Within the limit it is served; beyond, 431 however small the pieces."""
    for size, expected in ((24 * KiB, 200), (40 * KiB, 431)):
        request = head(server, "GET", SECRETS, f"X-Padding: {'p' * size}\r\n")
        with connect(server) as sock:
            for start in range(0, len(request), 512):
                try:
                    sock.sendall(request[start:start + 512])
                except OSError:  # refused before the rest was sent
                    break
            [(status, body)] = responses(read_all(sock))
        if expected == 431:
            assert_431(status, body)
        else:
            assert status == 200, body[:200]


def test_a_header_that_never_ends_is_refused_once_it_passes_the_limit(server: ScsServer) -> None:
    """A slowloris header growing without end is refused at 32 KiB, not held in memory
    until the header deadline."""
    with connect(server) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        started = time.monotonic()
        for _ in range(40):
            try:
                sock.sendall(b"e" * KiB)
            except OSError:
                break
        [(status, body)] = responses(read_all(sock))
        assert_431(status, body)
        assert time.monotonic() - started < HEADER_TIMEOUT, "refused by the deadline only"


def test_pipelined_requests_are_answered_in_order_and_an_oversized_one_refused(
        server: ScsServer) -> None:
    name = unique("pipelined")
    pipeline = (head(server, "GET", "/version", close=False)
                + create_secret_request(server, name).replace(b"Connection: close\r\n", b"")
                + head(server, "GET", SECRETS, f"X-Padding: {'p' * 40 * KiB}\r\n")
                + head(server, "GET", "/version"))
    with connect(server) as sock:
        sock.sendall(pipeline)
        answered = responses(read_all(sock))
    assert [status for status, _ in answered] == [200, 201, 431], answered
    assert json.loads(answered[1][1])["metadata"]["name"] == name
    assert_431(*answered[2])


def test_a_large_body_sent_with_its_header_is_not_mistaken_for_a_large_header(
        server: ScsServer) -> None:
    """Bytes after a complete header are the body's, even in the same segment; and the
    next request on the connection starts counting from zero."""
    name = unique("large-body")
    body = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                       "stringData": {"blob": "b" * 200 * KiB}}).encode()
    request = (head(server, "POST", SECRETS, body=body, close=False)
               + head(server, "GET", f"{SECRETS}/{name}"))
    with connect(server) as sock:
        sock.sendall(request)
        answered = responses(read_all(sock))
    assert [status for status, _ in answered] == [201, 200], answered
