"""The audit log: one JSON object per line for every request — who did what to which object,
with which result.

It records metadata only, like kube's ``Metadata`` audit level: never request or response
bodies (Secrets!), and of the query string only the *names* of known-harmless parameters, so a
token pasted into a URL never reaches the log. User-controlled strings are stripped of control
characters and truncated, so a crafted user agent cannot forge log lines or colour a terminal.

Events are serialised on the caller's thread (microseconds) and written by a background
thread: a slow disk never stalls the event loop. The queue is bounded; when it is full, events
are dropped and counted (``AuditLog.dropped``) rather than blocking.

Why the queue is a plain ``deque`` and the writer works in batches: with ``queue.Queue`` and
one ``StreamHandler.emit`` per line, every request paid a ``threading.Condition`` notify and
woke the writer thread (a GIL hand-over) for one ``write`` + ``flush`` — a quarter of the
read path's CPU in the profiles (docs/performance.md). ``deque.append`` is atomic without a
lock and wakes nobody; the writer thread takes what gathered every ``BATCH_SECONDS`` and writes
it with one ``write`` + ``flush`` per sink.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Any, Protocol, TextIO
from urllib.parse import parse_qsl

import orjson

MAX_USER_AGENT = 256
MAX_TEXT = 512
MAX_GROUPS = 64
QUEUE_SIZE = 10000
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_BACKUPS = 5
BATCH_SECONDS = 0.02
"""How often the writer thread writes what has been queued: bounds how late a line reaches
the log; the thread wakes 50 times a second whether or not there is anything to write."""

SAFE_QUERY_PARAMS = frozenset({
    "allowWatchBookmarks", "continue", "dryRun", "fieldManager", "fieldSelector",
    "fieldValidation", "force", "gracePeriodSeconds", "labelSelector", "limit", "orphanDependents",
    "pretty", "propagationPolicy", "resourceVersion", "resourceVersionMatch",
    "sendInitialEvents", "timeout", "timeoutSeconds", "watch", "includeObject",
})
"""Parameter *names* that may be logged; everything else (``token``, ``access_token``, typos,
attacker-chosen names) is left out. Values are never logged."""

VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete",
                   "deletecollection"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0/C1 controls (newline, ESC of ANSI sequences), Unicode line separators and bidi overrides
(which can make a log line read differently from what it contains)."""


def clean(text: object, limit: int = MAX_TEXT) -> str:
    """A user-controlled value made safe for a log line: no control characters, bounded."""
    value = str(text)
    if not value.isprintable():  # every character _CONTROL matches is non-printable
        value = _CONTROL.sub("", value)
    return value if len(value) <= limit else value[:limit] + "..."


def safe_query_keys(query_string: str) -> tuple[str, ...]:
    """The sorted names of the harmless parameters of a raw query string (values dropped)."""
    names = {key for key, _ in parse_qsl(query_string, keep_blank_values=True)}
    return tuple(sorted(names & SAFE_QUERY_PARAMS))


def kube_verb(method: str, has_name: bool, watch: bool = False) -> str:
    """The Kubernetes verb of a resource request, as RBAC and kube's audit log name it."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "watch" if watch else "get" if has_name else "list"
    if method == "DELETE":
        return "delete" if has_name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


_second: tuple[int, str] = (0, "")
"""The last whole second formatted, and its text: formatting a datetime per request was 2 %
of a GET's CPU in the read profile."""


def _now_rfc3339() -> str:
    """Now in UTC as RFC 3339 with milliseconds (``2026-12-03T22:34:07.123Z``)."""
    global _second
    now = time.time()
    whole = int(now)
    second, text = _second
    if second != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)  # one assignment: threads see the old or the new pair
    return f"{text}.{min(int((now - whole) * 1000), 999):03d}Z"


@dataclass
class AuditEvent:
    """What one request did. Holds no bodies and no query values by construction."""

    user: str
    verb: str
    groups: tuple[str, ...] = ()
    source_ip: str = ""
    user_agent: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    query_keys: tuple[str, ...] = ()
    response_code: int = 0
    latency_ms: float = 0.0
    decision: str = ""
    reason: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    """What the handler adds about the outcome, as kube's audit annotations (e.g. which
    credential a kubeconfig request issued and until when); never a credential itself."""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: str = field(default_factory=_now_rfc3339)

    def __post_init__(self) -> None:
        # enforced here too, so a caller passing raw keys cannot leak unsafe parameter names
        self.query_keys = tuple(sorted(set(self.query_keys) & SAFE_QUERY_PARAMS))
        self.path = self.path.split("?", 1)[0].split("#", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: camelCase keys like kube's audit events; every string cleaned."""
        out = {
            "auditID": clean(self.request_id, 64), "timestamp": clean(self.timestamp, 40),
            "user": clean(self.user), "groups": [clean(g) for g in self.groups[:MAX_GROUPS]],
            "sourceIP": clean(self.source_ip, 64),
            "userAgent": clean(self.user_agent, MAX_USER_AGENT),
            "verb": clean(self.verb, 32), "apiGroup": clean(self.api_group),
            "resource": clean(self.resource), "subresource": clean(self.subresource),
            "namespace": clean(self.namespace), "name": clean(self.name),
            "path": clean(self.path, 1024), "queryKeys": list(self.query_keys),
            "code": int(self.response_code), "latencyMs": round(float(self.latency_ms), 3),
            "decision": clean(self.decision, 32), "reason": clean(self.reason),
        }
        if self.annotations:
            out["annotations"] = {clean(k, 128): clean(v) for k, v in
                                  list(self.annotations.items())[:MAX_GROUPS]}
        return out

    def to_json(self) -> str:
        """Compact JSON, ASCII only (non-ASCII characters escaped, as ``json`` does with
        ``ensure_ascii``). ``orjson`` writes the same compact form several times faster; a
        line with non-ASCII characters goes through ``json`` for the escapes."""
        data = self.to_dict()
        raw = orjson.dumps(data)
        if raw.isascii():
            return raw.decode()
        return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


class _PrivateRotatingFileHandler(RotatingFileHandler):
    """Rotating file whose every generation is created with mode 0600 (audit logs name users
    and resources; other local users have no business reading them)."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


class _Sink(Protocol):
    def write_lines(self, lines: list[str]) -> None: ...
    def close(self) -> None: ...


class _StreamSink:
    """A text stream (stderr): one ``write`` and one ``flush`` per run of whole lines of at
    most ``PIPE_BUF`` bytes. Why not per batch: worker processes (``scs serve --workers``)
    share one stderr, and only a pipe write of at most ``PIPE_BUF`` bytes is never
    interleaved with another process's; a larger one could splice two workers' lines."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write_lines(self, lines: list[str]) -> None:
        for chunk in _runs(lines, select.PIPE_BUF):
            self.stream.write(chunk)
            self.stream.flush()

    def close(self) -> None:
        with contextlib.suppress(ValueError):  # someone else closed it already
            self.stream.flush()


def _runs(lines: list[str], limit: int) -> Iterator[str]:
    """``lines`` joined into runs of at most ``limit`` characters (ASCII: bytes) each, every
    line whole; a longer line is a run of its own."""
    run: list[str] = []
    size = 0
    for line in lines:
        if run and size + len(line) + 1 > limit:
            yield "".join(run)
            run, size = [], 0
        run.append(line + "\n")
        size += len(line) + 1
    if run:
        yield "".join(run)


class _FileSink:
    """The size-rotated file: the rollover rule of ``RotatingFileHandler`` applied line by
    line (no line is split across files, no file grows past ``max_bytes`` unless a single
    line is larger), but one ``write`` + ``flush`` per run of lines that fit."""

    def __init__(self, path: Path, max_bytes: int, backup_count: int) -> None:
        self.handler = _PrivateRotatingFileHandler(path, maxBytes=max_bytes,
                                                   backupCount=backup_count, encoding="utf-8")
        self.size = self._position()

    def _stream(self) -> IO[str]:
        """The open file (the handler reopens lazily after a rollover or close)."""
        if self.handler.stream is None:
            self.handler.stream = self.handler._open()
        stream: IO[str] = self.handler.stream
        return stream

    def _position(self) -> int:
        stream = self._stream()
        stream.seek(0, 2)
        return int(stream.tell())

    def write_lines(self, lines: list[str]) -> None:
        handler = self.handler
        rotating = handler.maxBytes > 0 and os.path.isfile(handler.baseFilename)
        chunk: list[str] = []
        for line in lines:
            msg = line + "\n"  # lines are ASCII (ensure_ascii): characters == bytes
            if rotating and self.size + len(msg) >= handler.maxBytes:
                self._write(chunk)
                chunk = []
                handler.doRollover()
                self.size = self._position()
            chunk.append(msg)
            self.size += len(msg)
        self._write(chunk)

    def _write(self, chunk: list[str]) -> None:
        if chunk:
            stream = self._stream()
            stream.write("".join(chunk))
            stream.flush()

    def close(self) -> None:
        self.handler.close()


class _Writer:
    """The background thread: every ``BATCH_SECONDS`` it writes the pending lines, as one
    batch, into every sink. Requests only append to a deque: no lock, no wake-up."""

    def __init__(self, pending: deque[str], sinks: list[_Sink]) -> None:
        self._pending = pending
        self._sinks = sinks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread (lines queued later stay queued)."""
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(BATCH_SECONDS):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            batch = [pending.popleft() for _ in range(len(pending))]
            for sink in self._sinks:
                try:
                    sink.write_lines(batch)
                except Exception:  # noqa: BLE001 - like logging: report, keep the writer alive
                    sys.stderr.write("audit log: writing failed\n")


class AuditLog:
    """Writes :class:`AuditEvent` lines to stderr and/or a size-rotated file, off the loop.

    Call :meth:`close` at shutdown to flush what is queued.
    """

    def __init__(self, path: Path | None = None, *, stderr: bool = True,
                 stream: TextIO | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                 backup_count: int = DEFAULT_BACKUPS, queue_size: int = QUEUE_SIZE) -> None:
        self._sinks = _sinks(path, stderr, stream, max_bytes, backup_count)
        self._pending: deque[str] = deque()
        self._limit = queue_size
        self.dropped = 0
        """Events lost because the writer fell behind (or arrived after close)."""
        self._listener: _Writer | None = _Writer(self._pending, self._sinks)
        self._listener.start()

    def record(self, event: AuditEvent) -> None:
        """Queue ``event`` for writing; returns at once."""
        if self._listener is None or len(self._pending) >= self._limit:
            self.dropped += 1
            return
        self._pending.append(event.to_json())

    def close(self) -> None:
        """Write what is queued, then close the sinks. Idempotent."""
        if self._listener is None:
            return
        self._listener.stop()
        self._listener = None
        for sink in self._sinks:
            sink.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _sinks(path: Path | None, stderr: bool, stream: IO[str] | None, max_bytes: int,
           backup_count: int) -> list[_Sink]:
    sinks: list[_Sink] = []
    if stderr or stream is not None:
        sinks.append(_StreamSink(stream or sys.stderr))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        sinks.append(_FileSink(Path(path), max_bytes, backup_count))
    return sinks
