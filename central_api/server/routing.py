"""Map a REST path onto (resource type, namespace, name, subresource) like kube-apiserver.

``/api/v1/namespaces/foo`` is the Namespace "foo", while ``/api/v1/namespaces/foo/secrets`` is
the secrets in namespace "foo": the second segment after ``namespaces`` decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..kinds.catalog import Catalog
from ..kinds.kind import ResourceType
from ..machinery.errors import ApiError, not_found


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None
    """None: all namespaces (or a cluster-scoped kind)."""
    name: str = ""
    subresource: str = ""


def split_group_version(parts: list[str]) -> tuple[str, str, list[str]] | None:
    """``api/v1/...`` → ("", "v1", rest); ``apis/g/v/...`` → (g, v, rest)."""
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def resolve(catalog: Catalog, group: str, version: str, rest: list[str]) -> Target:
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = catalog.lookup(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise _no_route()
    rt = catalog.lookup(group, version, rest[0])
    if rt is None:
        raise _no_route()
    if rt.namespaced and namespace is None and len(rest) > 1:
        raise _no_route()  # a namespaced object needs its namespace in the path
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rt.subresources():
        raise _no_route()
    for segment in (name, namespace or ""):
        if segment in (".", "..") or "/" in segment or "%" in segment:
            raise ApiError(400, "BadRequest", f"invalid name or namespace: {segment!r}")
    return Target(rt, namespace if rt.namespaced else None, name, sub)


def _no_route() -> ApiError:
    error = not_found("", "")
    error.message = "the server could not find the requested resource"
    error.name = ""
    return error
