"""Connection limits uvicorn lacks: a header-read deadline and a cap on open connections.

Why: uvicorn never closes a connection whose request headers stop arriving, and accepts
connections until the process runs out of file descriptors. About a thousand clients each
sending half a request header locked everyone out (``Too many open files``) and kept the
store from opening its files. Here every connection must deliver a complete request header
within ``header_timeout`` of opening (or of its previous response), and connections beyond
``max_connections`` are closed as soon as they are accepted, leaving descriptors for the
store, TLS and the server's own clients. Limits per client address are the job of the load
balancer in front (behind one, every client has its address).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import time
import weakref
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("central_api.connections")

RESERVED_DESCRIPTORS = 128
"""Descriptors kept free of client connections: the store, log files, the controllers'
connections to backends, TLS key files."""
BACKLOG = 128
"""The listen backlog, which is also how many connections asyncio accepts in one go before
the protocol factory can refuse any: at most this many beyond the cap are ever open."""


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


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the two limits; configure with :meth:`configure`."""

    header_timeout: float = 30.0
    max_connections: int = 1024
    _last_collection = 0.0
    _open: weakref.WeakSet[GuardedH11Protocol] = weakref.WeakSet()
    """Every connection from accept on: TLS connections only reach ``connection_made``
    after their handshake, and a half-done handshake holds a descriptor too."""

    @classmethod
    def configure(cls, header_timeout: float, max_connections: int) -> type[GuardedH11Protocol]:
        """A subclass with these limits (uvicorn takes a protocol class, not an instance)."""
        return type("GuardedH11Protocol", (cls,), {
            "header_timeout": header_timeout, "max_connections": max_connections,
            "_open": weakref.WeakSet(), "_last_collection": 0.0})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(self._open) >= self.max_connections:
            self._collect_abandoned()
        if len(self._open) >= self.max_connections:
            # Raising from the protocol factory makes asyncio drop the accepted socket
            # before any TLS work is done for it: the cheapest refusal there is.
            raise ConnectionRefusedError("connection limit reached")
        super().__init__(*args, **kwargs)
        self._open.add(self)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._awaited_cycle: object = None

    @classmethod
    def _collect_abandoned(cls) -> None:
        """Drop connections that died in their TLS handshake. asyncio tells the protocol
        nothing then, and its TLS objects form reference cycles, so they leave the set only
        when the cyclic collector runs, which an idle server may not do for a long time
        (every new connection was refused for as long as the flood's dead handshakes were
        kept). At most once a second, so a flood cannot make the server collect
        continuously."""
        now = time.monotonic()
        if now - cls._last_collection >= 1.0:
            cls._last_collection = now
            gc.collect()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        self._open.discard(self)
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._awaited_cycle:  # a complete request header arrived
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._between_requests() and not self.transport.is_closing():
            self._arm_header_deadline()  # the next request on this connection

    def _between_requests(self) -> bool:
        """No request is being answered (a pipelined one may have started already)."""
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._awaited_cycle = self.cycle
        self._header_deadline = self.loop.call_later(self.header_timeout,
                                                     self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if self.cycle is self._awaited_cycle and self._between_requests() \
                and not self.transport.is_closing():
            log.debug("closing %s: no complete request header within %.0f s", self.client,
                      self.header_timeout)
            self.transport.close()
