"""Errors of the status-page API in the reference server's format.

The reference server (SovereignCloudStack/status-page-api, Go with echo and oapi-codegen)
answers every error as echo's ``{"message": "..."}`` with the HTTP status, e.g. 404
``{"message": "Not Found"}`` and 400 ``{"message": "Invalid format for parameter
componentId: ..."}``. Front ends read the status code and show the message, so this API keeps
that shape, with a message that says what was wrong where the reference says only "Bad Request".
"""

from __future__ import annotations

from http import HTTPStatus

import orjson
from starlette.responses import Response

from ...machinery.errors import ApiError


class StatusPageError(Exception):
    """An error answered as ``{"message": ...}`` with ``code``."""

    def __init__(self, code: int, message: str = "", retry_after: int | None = None) -> None:
        super().__init__(message or HTTPStatus(code).phrase)
        self.code = code
        self.message = message or HTTPStatus(code).phrase
        self.retry_after = retry_after

    def response(self, headers: dict[str, str] | None = None) -> Response:
        extra = dict(headers or {})
        if self.retry_after:
            extra["Retry-After"] = str(self.retry_after)
        return Response(orjson.dumps({"message": self.message}), self.code, headers=extra,
                        media_type="application/json")


def bad_request(message: str) -> StatusPageError:
    return StatusPageError(400, message)


def not_found(what: str = "") -> StatusPageError:
    return StatusPageError(404, f"{what} not found" if what else "")


def invalid_parameter(name: str, detail: str) -> StatusPageError:
    """The wording of the reference server's generated parameter binding."""
    return StatusPageError(400, f"Invalid format for parameter {name}: {detail}")


def from_api_error(exc: ApiError) -> StatusPageError:
    """A registry or access error (401, 403, 409, 413, 422, 429...) in this API's format: its
    status code and its message, which names the field or permission at fault. A 422 of the
    KRM API (a field the kind's schema refuses) is a 400 here, as the reference answers."""
    code = 400 if exc.code == 422 else exc.code
    return StatusPageError(code, exc.message, exc.retry_after)
