"""The HTTP layer of ``scs serve``: uvicorn on httptools and uvloop, with the limits uvicorn lacks.

Why httptools and uvloop: uvicorn's pure-Python h11 parser and asyncio's pure-Python TLS cost
more CPU per request than the rest of a GET (see docs/performance.md); llhttp and libuv with
uvloop's TLS in C are the fastest stack a Python server has. They come without limits, so
this module adds every limit ``scs serve`` keeps:

- **Header size.** Request line plus headers over :data:`MAX_HEADER_BYTES` are answered 431
  (a Kubernetes ``Status``) and the connection closed before the application sees anything.
  llhttp has no such limit, and httptools buffers a header until it is complete, so the
  bytes of an incomplete header are counted as they arrive as well.
- **Header-read deadline.** uvicorn never closes a connection whose request headers stop
  arriving. Here the TLS handshake must finish, and then a complete request header arrive,
  each within ``header_timeout`` (again after every response, however slowly the next
  header trickles in).
- **Connection cap.** uvicorn accepts connections until the process runs out of file
  descriptors: about a thousand clients each sending half a request header locked everyone
  out (``Too many open files``) and kept the store from opening its files. Connections beyond
  ``max_connections`` are closed as soon as they are accepted, before any TLS work, leaving
  descriptors for the store, TLS and the server's own clients. Limits per client address
  are the job of the load balancer in front (behind one, every client has its address).

Body sizes are limited where bodies are read (:mod:`central_api.server.handlers`).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import weakref
from typing import Any

import orjson
from uvicorn.config import SSL_PROTOCOL_VERSION, Config, create_ssl_context
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState
from uvloop.loop import SSLProtocol  # type: ignore[attr-defined]  # in C, not in its stub

from ..machinery.bodies import MAX_HEADER_BYTES, header_too_large

log = logging.getLogger("central_api.connections")

RESERVED_DESCRIPTORS = 128
"""Descriptors kept free of client connections: the store, log files, the controllers'
connections to backends, TLS key files."""
BACKLOG = 128
"""The listen backlog: connections the kernel holds until the server accepts them."""


def raise_open_file_limit() -> int:
    """Lift the soft limit on open files to the hard one (as most servers do at start) and
    return the result."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # a container may forbid it; keep the soft limit
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(configured: int, open_files: int) -> int:
    """``configured``, but never more than the descriptors left for clients (beside the
    reserve and one accepted backlog)."""
    room = max(open_files - RESERVED_DESCRIPTORS - BACKLOG, 16)
    return min(configured, room) if configured else room


class ConnectionGuard:
    """What uvicorn is given as its ``http`` protocol: a factory of guarded connections.

    It also does TLS itself (uvicorn is given no certificate): uvloop calls the factory for
    every accepted socket, but a factory that raises makes libuv stop accepting altogether,
    and a protocol under the loop's own TLS hears of its socket only after the handshake.
    Wrapping TLS here lets a connection beyond the cap be dropped at once, and tells when a
    handshake ended without a connection. Plain values only, so a worker process can be
    handed one (it is pickled without its per-process state).
    """

    def __init__(self, header_timeout: float, max_connections: int,
                 certfile: str | None = None, keyfile: str | None = None) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.certfile, self.keyfile = certfile, keyfile
        self.open: weakref.WeakSet[GuardedHttpToolsProtocol] = weakref.WeakSet()
        """Every connection from accept on (a TLS handshake holds a descriptor too)."""
        self._tls: ssl.SSLContext | None = None

    def __getstate__(self) -> tuple[float, int, str | None, str | None]:
        return self.header_timeout, self.max_connections, self.certfile, self.keyfile

    def __setstate__(self, state: tuple[float, int, str | None, str | None]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def __call__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> asyncio.BaseProtocol:
        if len(self.open) >= self.max_connections:
            return _Refused()
        protocol = GuardedHttpToolsProtocol(config, server_state, app_state, _loop, guard=self)
        self.open.add(protocol)
        if self.certfile is None:
            return protocol
        return self._with_tls(protocol)

    def _with_tls(self, protocol: GuardedHttpToolsProtocol) -> asyncio.BaseProtocol:
        if self._tls is None:  # the same context uvicorn would build from the files
            self._tls = create_ssl_context(self.certfile or "", self.keyfile, None,
                                           SSL_PROTOCOL_VERSION, ssl.CERT_NONE, None, None)
        handshake = protocol.loop.create_future()
        handshake.add_done_callback(lambda done: self._handshake_over(protocol, done))
        return SSLProtocol(protocol.loop, protocol, self._tls, handshake,
                           server_side=True, ssl_handshake_timeout=self.header_timeout)

    def _handshake_over(self, protocol: GuardedHttpToolsProtocol,
                        handshake: asyncio.Future[None]) -> None:
        """A handshake that failed, timed out or was abandoned leaves no connection: its
        protocol never hears of it, so it stops counting here."""
        if not handshake.cancelled():
            handshake.exception()  # retrieved: a failed handshake is no error of the server
        if protocol.transport is None:
            self.open.discard(protocol)


class _Refused(asyncio.Protocol):
    """A connection beyond the cap: closed as soon as it is accepted."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()  # nothing was read or written: the socket is closed at once


COALESCED_BYTES = 64 * 1024
"""Writes are held until the end of the event loop's step up to this size (more is sent at
once, so that a response streamed without a pause is held only in the transport's own
buffer, which applies back-pressure)."""


class _CoalescedWrites:
    """A connection's transport whose writes in one step of the event loop go out as one.

    uvicorn writes a response's head and its body separately, and uvloop sends each at
    once: two TLS records and two system calls, each waking the client, per response.
    """

    __slots__ = ("_transport", "_loop", "_pending", "_size")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)
        self._size += len(data)
        if self._size >= COALESCED_BYTES:
            self._flush()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HeaderTooLarge(Exception):
    """Raised in a parser callback to stop llhttp; answered with 431."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the header limits; built by :class:`ConnectionGuard`."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *,
                 guard: ConnectionGuard) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        """Request line and headers of the current request, counted by the parser."""
        self._awaiting_header = True
        self._unparsed_header_bytes = 0
        """Bytes received while a header is incomplete: httptools holds them unreported."""
        self._refusing = False
        """A header was too large: 431 once the requests before it are answered."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescedWrites(transport, self.loop))  # type: ignore[arg-type]
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        self.guard.open.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusing:
            return  # nothing after an oversized header is read
        if self._awaiting_header:
            self._unparsed_header_bytes += len(data)
        super().data_received(data)
        if self._awaiting_header and self._unparsed_header_bytes > MAX_HEADER_BYTES:
            self._refuse_header()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count_header(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_header = False
        self._disarm_header_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_header = True
        self._unparsed_header_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._between_requests() or self.transport.is_closing():
            return
        if self._refusing:
            self._send_431()
        else:
            self._arm_header_deadline()  # the next request on this connection

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error, which is also how a callback stops llhttp."""
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse_header()
        else:
            super().send_400_response(msg)

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _HeaderTooLarge

    def _refuse_header(self) -> None:
        """Answer 431 and close, after the pipelined requests before this one (their answers
        come first); nothing of this request, or after it, is processed."""
        if self.transport.is_closing():
            return
        self._refusing = True
        if self._between_requests():
            self._send_431()

    def _send_431(self) -> None:
        body = orjson.dumps(header_too_large().status())
        head = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\n"
                    b"connection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _between_requests(self) -> bool:
        """No request is being answered (a pipelined one may have started already)."""
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.guard.header_timeout,
                                                     self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.debug("closing %s: no complete request header within %.0f s", self.client,
                      self.guard.header_timeout)
            self.transport.close()


def uvicorn_settings(guard: ConnectionGuard) -> dict[str, Any]:
    """The arguments of ``uvicorn.Config`` beside the app, the address and the backlog,
    for ``scs serve`` and for each of its worker processes: the guard is the protocol and
    does TLS (so no ``ssl_*``). No access log (the audit log records every request), no
    ``Server`` header, and no proxy headers: a client on 127.0.0.1 could otherwise set its
    own address with ``X-Forwarded-For``."""
    return {"http": guard, "loop": "uvloop", "access_log": False,
            "server_header": False, "proxy_headers": False, "timeout_graceful_shutdown": 5}
