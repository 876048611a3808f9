"""The SDK's exceptions: every refusal carries the server's ``Status``.

A caller branches on the class (``except Conflict``), shows ``message``, and for ``Invalid``
reads the field paths at fault from ``causes`` — the same information kubectl prints. The
classes derive from :class:`central_api.machinery.errors.ApiError`, so code written against
the server's own error type (``exc.code == 409``) keeps working with the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..machinery import errors as machinery


class ClientError(Exception):
    """A failure on the client's side of the wire: nothing the server answered."""


class ConfigError(ClientError):
    """A kubeconfig (or explicit configuration) that cannot be used; the message says why."""


class TransportError(ClientError):
    """The server could not be reached, or its answer could not be read."""


class TLSVerifyError(TransportError):
    """The server's certificate is not signed by the CA the configuration trusts."""


class WaitTimeout(ClientError, TimeoutError):
    """A wait ran out; ``last`` is the object as last seen (None: it did not exist)."""

    def __init__(self, message: str, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


@dataclass
class ApiError(machinery.ApiError):
    """The server refused the request; ``server_status`` is its ``Status`` body as
    answered (``status()`` renders the fields as a Status, as the server's own errors do)."""

    server_status: dict[str, Any] = field(default_factory=dict)

    @property
    def fields(self) -> list[str]:
        """The field paths at fault (``spec.flavor``), in the server's order."""
        return [c.field for c in self.causes if c.field]

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"


class BadRequest(ApiError):
    """400: the request itself is malformed (unknown field with Strict validation, ...)."""


class Unauthorized(ApiError):
    """401: no valid credential (an expired token, a wrong kubeconfig)."""


class Forbidden(ApiError):
    """403: the identity may not do this (RBAC, the tenant boundary, a quota)."""


class NotFound(ApiError):
    """404: no such object (or resource)."""


class AlreadyExists(ApiError):
    """409 AlreadyExists: create of a name that is taken."""


class Conflict(ApiError):
    """409 Conflict: a stale resourceVersion, or server-side apply fields owned by another
    manager (apply again with ``force=True`` to take them over)."""


class Gone(ApiError):
    """410: a watch or continue token older than the server keeps: list again."""


class Invalid(ApiError):
    """422: the object breaks its kind's schema or rules; ``causes`` name the fields."""


class TooManyRequests(ApiError):
    """429: rate-limited; ``retry_after`` seconds is when the server will answer again."""


class ServerError(ApiError):
    """5xx: the server failed or is unavailable."""


BY_CODE: dict[int, type[ApiError]] = {400: BadRequest, 401: Unauthorized, 403: Forbidden,
                                      404: NotFound, 410: Gone, 422: Invalid,
                                      429: TooManyRequests}


def from_status(code: int, status: dict[str, Any], retry_after: int | None = None
                ) -> ApiError:
    """The exception for an answered ``Status`` (``code`` is the HTTP status)."""
    found = status.get("details")
    details: dict[str, Any] = found if isinstance(found, dict) else {}
    causes = [machinery.Cause(str(c.get("field") or ""), str(c.get("message") or ""),
                              str(c.get("reason") or ""))
              for c in details.get("causes") or [] if isinstance(c, dict)]
    reason = str(status.get("reason") or "Unknown")
    if retry_after is None and isinstance(details.get("retryAfterSeconds"), int):
        retry_after = details["retryAfterSeconds"]
    return _class(code, reason)(
        code, reason, str(status.get("message") or f"HTTP {code}"), causes=causes,
        group=str(details.get("group") or ""), kind=str(details.get("kind") or ""),
        name=str(details.get("name") or ""), retry_after=retry_after, server_status=status)


def _class(code: int, reason: str) -> type[ApiError]:
    if code == 409:
        return AlreadyExists if reason == "AlreadyExists" else Conflict
    if code >= 500:
        return ServerError
    return BY_CODE.get(code, ApiError)
