"""The audit log: one JSON object per line for every request — who did what to which object,
with which result.

It records metadata only, like kube's ``Metadata`` audit level: never request or response
bodies (Secrets!), and of the query string only the *names* of known-harmless parameters, so a
token pasted into a URL never reaches the log. User-controlled strings are stripped of control
characters and truncated, so a crafted user agent cannot forge log lines or colour a terminal.

Events are serialised on the caller's thread (microseconds) and written by a background
thread (``QueueListener``): a slow disk never stalls the event loop. The queue is bounded; when
it is full, events are dropped and counted (``AuditLog.dropped``) rather than blocking.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler
from pathlib import Path
from typing import IO, Any, TextIO
from urllib.parse import parse_qsl

MAX_USER_AGENT = 256
MAX_TEXT = 512
MAX_GROUPS = 64
QUEUE_SIZE = 10000
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_BACKUPS = 5

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
    value = _CONTROL.sub("", str(text))
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


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: str = field(default_factory=_now_rfc3339)

    def __post_init__(self) -> None:
        # enforced here too, so a caller passing raw keys cannot leak unsafe parameter names
        self.query_keys = tuple(sorted(set(self.query_keys) & SAFE_QUERY_PARAMS))
        self.path = self.path.split("?", 1)[0].split("#", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: camelCase keys like kube's audit events; every string cleaned."""
        return {
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

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=True)


class _PrivateRotatingFileHandler(RotatingFileHandler):
    """Rotating file whose every generation is created with mode 0600 (audit logs name users
    and resources; other local users have no business reading them)."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


class _DroppingQueueHandler(QueueHandler):
    """Never blocks: a full queue drops the event and counts it."""

    def __init__(self, sink: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(sink)
        self.dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record  # already a plain line; skip the default copy and re-format

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class AuditLog:
    """Writes :class:`AuditEvent` lines to stderr and/or a size-rotated file, off the loop.

    Call :meth:`close` at shutdown to flush what is queued.
    """

    def __init__(self, path: Path | None = None, *, stderr: bool = True,
                 stream: TextIO | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                 backup_count: int = DEFAULT_BACKUPS, queue_size: int = QUEUE_SIZE) -> None:
        self._handlers = _sinks(path, stderr, stream, max_bytes, backup_count)
        self._queue: queue.Queue[logging.LogRecord] = queue.Queue(queue_size)
        self._enqueue = _DroppingQueueHandler(self._queue)
        self._listener: QueueListener | None = QueueListener(self._queue, *self._handlers)
        self._listener.start()

    @property
    def dropped(self) -> int:
        """Events lost because the writer fell behind (or arrived after close)."""
        return self._enqueue.dropped

    def record(self, event: AuditEvent) -> None:
        """Queue ``event`` for writing; returns at once."""
        if self._listener is None:
            self._enqueue.dropped += 1
            return
        line = logging.makeLogRecord({"msg": event.to_json(), "levelno": logging.INFO,
                                      "levelname": "INFO", "name": "central_api.audit"})
        self._enqueue.handle(line)

    def close(self) -> None:
        """Write what is queued, then close the sinks. Idempotent."""
        if self._listener is None:
            return
        self._listener.stop()
        self._listener = None
        for handler in self._handlers:
            handler.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _sinks(path: Path | None, stderr: bool, stream: IO[str] | None, max_bytes: int,
           backup_count: int) -> list[logging.Handler]:
    formatter = logging.Formatter("%(message)s")
    handlers: list[logging.Handler] = []
    if stderr or stream is not None:
        handlers.append(logging.StreamHandler(stream or sys.stderr))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(_PrivateRotatingFileHandler(path, maxBytes=max_bytes,
                                                    backupCount=backup_count,
                                                    encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
    return handlers
