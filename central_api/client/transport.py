"""The core both clients share: requests as data, retries, answers and errors.

:class:`Client` and :class:`AsyncClient` differ only in how they wait (httpx's ``Client``
or ``AsyncClient``, ``time.sleep`` or ``asyncio.sleep``); what to send, when to retry and
what an answer means is decided here once, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import Any

import httpx

from .config import Config
from .errors import ApiError, Gone, TLSVerifyError, TransportError, from_status

JSON = "application/json"
PATCH_TYPES = {"merge": "application/merge-patch+json",
               "json": "application/json-patch+json",
               "strategic": "application/strategic-merge-patch+json",
               "apply": "application/apply-patch+yaml"}
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
FIRST_BACKOFF = 0.5


@dataclass
class Call:
    """One request to the API, before it is sent."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    content_type: str = JSON

    @property
    def idempotent(self) -> bool:
        """Repeating it cannot do more than doing it once (apply and merge patches set
        values; a JSON patch may add to a list, a POST create twice)."""
        return self.method in IDEMPOTENT or self.content_type in (
            PATCH_TYPES["apply"], PATCH_TYPES["merge"])

    def request_args(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx`` ``request``/``stream``."""
        args: dict[str, Any] = {"params": self.params}
        if self.body is not None:
            args["content"] = json.dumps(self.body).encode()
            args["headers"] = {"Content-Type": self.content_type}
        return args


def http_options(config: Config) -> dict[str, Any]:
    """What both httpx clients are built with."""
    return {"base_url": config.server, "verify": config.verify, "auth": config.auth,
            "headers": {"User-Agent": config.user_agent, "Accept": JSON},
            "timeout": httpx.Timeout(config.timeout)}


def retry_wait(call: Call, response: httpx.Response, attempt: int, config: Config
               ) -> float | None:
    """Seconds to wait before sending ``call`` again, or None to give the answer up.

    429 means the server did nothing, so any request is repeated; 503 only idempotent ones.
    The server's Retry-After is honoured; a wait longer than the configured bound, or more
    than ``max_retries`` attempts, gives the answer to the caller (as TooManyRequests)."""
    if attempt >= config.max_retries or response.status_code not in (429, 503):
        return None
    if response.status_code == 503 and not call.idempotent:
        return None
    wait = _retry_after(response)
    if wait is None:
        wait = FIRST_BACKOFF * 2 ** attempt
    return wait if wait <= config.max_retry_wait else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: servers of this API send seconds


def answer(response: httpx.Response) -> Any:
    """The decoded JSON of a successful answer; a refusal raises its exception."""
    if response.status_code >= 400:
        raise error_of(response)
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise TransportError(f"{response.request.method} {response.request.url.path}: "
                             f"the answer is not JSON") from None


def error_of(response: httpx.Response) -> ApiError:
    """The exception for a refusal, from its Status body (or its bare HTTP status)."""
    retry = _retry_after(response)
    try:
        status = response.json()
    except ValueError:
        status = None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                  "code": response.status_code, "reason": response.reason_phrase,
                  "message": f"{response.request.method} {response.request.url.path}: HTTP "
                             f"{response.status_code} {response.text[:200]}".strip()}
    return from_status(response.status_code, status, None if retry is None else int(retry))


def transport_error(exc: httpx.TransportError, config: Config) -> TransportError:
    """A clear message for what went wrong on the wire; an untrusted certificate says which
    CA the configuration trusts."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return TLSVerifyError(
                f"TLS verification of {config.server} failed: certificate verify failed, "
                f"{cause.verify_message} (the "
                f"client trusts {config.ca_source}; is it the server's CA?)")
        cause = cause.__cause__ or cause.__context__
    return TransportError(f"cannot reach {config.server}: {exc or type(exc).__name__}")


# -- watch ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WatchEvent:
    """``type`` is ADDED, MODIFIED, DELETED or BOOKMARK; ``object`` is typed for built-in
    kinds (a BOOKMARK's only carries its resourceVersion), ``raw`` as the server sent it."""

    type: str
    object: Any
    raw: dict[str, Any]

    @property
    def resource_version(self) -> str:
        return str((self.raw.get("metadata") or {}).get("resourceVersion") or "")


@dataclass
class WatchCursor:
    """Where a watch stands: the resourceVersion to resume from after the server ends a
    stream (``timeoutSeconds``), advanced by every event including bookmarks."""

    resource_version: str
    label_selector: str = ""
    field_selector: str = ""
    bookmarks: bool = True

    def params(self, seconds: int) -> dict[str, str]:
        params = {"watch": "true", "timeoutSeconds": str(max(1, seconds))}
        if self.resource_version:
            params["resourceVersion"] = self.resource_version
        if self.bookmarks:
            params["allowWatchBookmarks"] = "true"
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        if self.field_selector:
            params["fieldSelector"] = self.field_selector
        return params

    def event(self, line: str) -> tuple[str, dict[str, Any]] | None:
        """A stream line as (type, object), moving the cursor; None for blank lines. An
        ERROR event raises its Status (410: :class:`Gone`, the history is compacted)."""
        if not line.strip():
            return None
        try:
            decoded = json.loads(line)
            kind, obj = str(decoded["type"]), decoded["object"]
        except (ValueError, KeyError, TypeError):
            raise TransportError(f"unreadable watch event: {line[:200]}") from None
        if kind == "ERROR":
            error = from_status(int(obj.get("code") or 500), obj)
            if isinstance(error, Gone):
                error.message = (f"{error.message}: resourceVersion {self.resource_version} "
                                 "is older than the server keeps; list again and watch from "
                                 "the list's resourceVersion")
            raise error
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = str(rv)
        return kind, obj
