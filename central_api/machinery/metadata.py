"""ObjectMeta rules: names, labels, annotations, and the fields only the server may set."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from .errors import Cause
from .selectors import validate_label_key, validate_label_value

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_ANNOTATIONS_BYTES = 256 * 1024
SYSTEM_NAMESPACE = "scs-system"
"""Holds the server's own objects (controller leases); exists from the first start."""
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp",
                 "deletionTimestamp", "deletionGracePeriodSeconds")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def name_problem(name: str, dns_label: bool, path_segment: bool = False) -> str | None:
    """Why ``name`` is not a valid object name, or None.

    ``path_segment`` is kube's ValidatePathSegmentName (RBAC objects): any name that stays one
    URL path segment, so ``system:basic-user`` is valid.
    """
    if path_segment:
        return path_segment_problem(name)
    if dns_label:
        if len(name) > 63 or not DNS_LABEL.match(name):
            return ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character "
                    "(at most 63 characters)")
        return None
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        return ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character "
                "(at most 253 characters)")
    return None


def path_segment_problem(name: str) -> str | None:
    """Kubernetes' IsValidPathSegmentName: not "." or "..", no "/" or "%"; and, unlike kube,
    no control characters (a NUL cannot be stored in PostgreSQL's text columns, and a
    newline in a name forges lines in logs and on the status page)."""
    if name in (".", ".."):
        return f"may not be '{name}'"
    bad = [f"may not contain '{c}'" for c in ("/", "%") if c in name]
    if not name.isprintable() and any(unicodedata.category(c) == "Cc" for c in name):
        bad.append("may not contain control characters")
    return ", ".join(bad) or None


def validate_metadata(meta: Any, dns_label: bool, path_segment: bool = False) -> list[Cause]:
    if not isinstance(meta, dict):
        return [Cause("metadata", "Invalid value: must be an object", "FieldValueTypeInvalid")]
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        causes.append(Cause("metadata.name", "Required value: name or generateName is required",
                            "FieldValueRequired"))
    elif problem := name_problem(name, dns_label, path_segment):
        causes.append(Cause("metadata.name", f'Invalid value: "{name}": {problem}'))
    for key, value in (meta.get("labels") or {}).items():
        if problem := validate_label_key(key):
            causes.append(Cause("metadata.labels", f'Invalid value: "{key}": {problem}'))
        if not isinstance(value, str) or (problem := validate_label_value(value)):
            causes.append(Cause(f"metadata.labels[{key}]", f"Invalid value: {problem}"))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        if problem := validate_label_key(key):
            causes.append(Cause("metadata.annotations", f'Invalid value: "{key}": {problem}'))
    size = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        causes.append(Cause("metadata.annotations", "Too long: must have at most 262144 bytes",
                            "FieldValueTooLong"))
    return causes


def spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Anything but metadata and status counts as desired state (bumps generation)."""
    ignored = ("metadata", "status", "apiVersion", "kind")
    return ({k: v for k, v in old.items() if k not in ignored}
            != {k: v for k, v in new.items() if k not in ignored})


def carry_server_fields(new: dict[str, Any], old: dict[str, Any]) -> None:
    """Fields only the server sets keep their stored value on update."""
    new_meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
    for field in SERVER_FIELDS:
        if field == "resourceVersion":
            continue
        if field in old_meta:
            new_meta[field] = old_meta[field]
        else:
            new_meta.pop(field, None)
