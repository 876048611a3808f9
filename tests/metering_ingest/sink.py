"""A billing system for the export tests: a real HTTP server on 127.0.0.1 (stdlib) that
fails on purpose — 503s, a 503 with ``Retry-After``, 500s, connections dropped without an
answer, or holding a request until the test lets it go — and records every request."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    key: str
    body: dict[str, Any]
    authorization: str
    answered: int
    """The status answered (0: the connection was dropped; -1: held until the exporter
    was killed)."""

    @property
    def seqs(self) -> list[int]:
        return [int(r["seq"]) for r in self.body["rows"]]


@dataclass
class FailingSink:
    """``plan``: what to do with the 1st, 2nd, ... request ("503", "503-retry-0", "500",
    "drop", "hold"); later requests are accepted (200)."""

    plan: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        port = self.server.server_address[1] if self.server else 0
        return f"http://127.0.0.1:{port}/usage"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.answered == 200]

    def start(self) -> FailingSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with sink.lock:
                    action = sink.plan[len(sink.received)] \
                        if len(sink.received) < len(sink.plan) else "200"
                    entry = Received(self.headers.get("Idempotency-Key", ""), body,
                                     self.headers.get("Authorization", ""), 0)
                    sink.received.append(entry)
                if action == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if action == "hold":  # the test kills the exporter meanwhile
                    sink.holding.set()
                    sink.release.wait(120)
                    self._answer(entry, 200)
                    entry.answered = -1  # to a client that is gone
                    return
                status = int(action.split("-")[0])
                self._answer(entry, status, {"Retry-After": "0"} if "retry" in action else {})

            def _answer(self, entry: Received, status: int,
                        headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    entry.answered = status
                except OSError:
                    entry.answered = 0

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
