"""Parsing requests safely: size limits, JSON or YAML bodies, no YAML alias bombs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from .errors import ApiError, bad_request

MAX_BODY_BYTES = 3 * 1024 * 1024
"""Same limit as kube-apiserver: larger objects belong elsewhere."""
MAX_HEADER_BYTES = 32 * 1024
"""Request line plus headers. Bearer tokens with many groups need a few KiB; nothing
legitimate needs more, and every header is kept in memory for the whole request."""


class _NoAliasLoader(yaml.SafeLoader):
    """Refuse anchors/aliases: they let a tiny document expand to gigabytes in memory."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not allowed",
                                              event.start_mark)
        return super().compose_node(parent, index)


def too_large() -> ApiError:
    return ApiError(413, "RequestEntityTooLarge",
                    f"the request body is too large (limit {MAX_BODY_BYTES} bytes)")


def check_header_size(scope: Mapping[str, Any]) -> None:
    """Refuse a header block over :data:`MAX_HEADER_BYTES` with 431 before anything reads
    it. (h11's own cap only applies while a request is still incomplete, so a large block
    arriving in one piece passes it.)"""
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + sum(
        len(name) + len(value) + 4 for name, value in scope.get("headers") or [])
    if size > MAX_HEADER_BYTES:
        raise ApiError(431, "RequestHeaderFieldsTooLarge",
                       f"the request headers are too large (limit {MAX_HEADER_BYTES} bytes)")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body of the request is not valid JSON: {exc}") from None
    return _require_object(value)


def parse_yaml_object(raw: bytes) -> dict[str, Any]:
    try:
        value = yaml.load(raw, Loader=_NoAliasLoader)  # noqa: S506  # nosec B506
    except yaml.YAMLError as exc:
        raise bad_request(f"the body of the request is not valid YAML: {exc}") from None
    return _require_object(value)


def parse_object(raw: bytes, content_type: str) -> dict[str, Any]:
    """Create/update bodies: JSON, or YAML when the client says so."""
    if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
        return parse_yaml_object(raw)
    if content_type == "application/vnd.kubernetes.protobuf":
        from .protobuf import decode

        return decode(raw)
    if content_type not in ("", "application/json", "*/*"):
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format ({content_type}) - "
                       "accepted media types include: application/json, application/yaml")
    return parse_json_object(raw)


def _require_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request("the body of the request must be a JSON or YAML object")
    return value
