"""Parsing request bodies safely: size limits, JSON or YAML, no YAML alias bombs."""

from __future__ import annotations

import json
from typing import Any

import yaml

from .errors import ApiError, bad_request

MAX_BODY_BYTES = 3 * 1024 * 1024
"""Same limit as kube-apiserver: larger objects belong elsewhere."""


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
