"""Kubernetes-style API errors.

Every failure a client can see is an :class:`ApiError` that renders as a ``meta.k8s.io/v1 Status``
object, because kubectl and the client libraries print ``message``, ``reason`` and the field
``causes`` of such a body well and branch on ``reason`` (e.g. ``AlreadyExists``, ``Conflict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One field-level problem, e.g. ``spec.replicas: Invalid value``."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class ApiError(Exception):
    """An error answered to the client as a ``Status`` body with ``code``."""

    code: int
    reason: str
    message: str
    causes: list[Cause] = field(default_factory=list)
    group: str = ""
    kind: str = ""
    name: str = ""
    retry_after: int | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found', group=group,
                    kind=resource, name=name)


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(409, "AlreadyExists", f'{qualified} "{name}" already exists', group=group,
                    kind=resource, name=name)


def conflict(resource: str, name: str, detail: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified} "{name}": '
                    f"{detail}", group=group, kind=resource, name=name)


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> ApiError:
    qualified = f"{kind}.{group}" if group else kind
    summary = ", ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', causes=causes,
                    group=group, kind=kind, name=name)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)
