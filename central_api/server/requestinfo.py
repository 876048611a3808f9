"""What a request asks to do, read from its path alone (Kubernetes' RequestInfoFactory).

Authorization happens before routing, so it must not depend on which kinds are served: a
caller who may not list a resource learns nothing about whether it exists (403, not 404).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..auth.authz import Attributes
from ..machinery.user import User
from .routing import split_group_version

NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get", "DELETE": "delete"}


@dataclass(frozen=True)
class RequestInfo:
    is_resource: bool
    verb: str
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    def attributes(self, user: User) -> Attributes:
        if not self.is_resource:
            return Attributes(user, self.verb, path=self.path)
        return Attributes(user, self.verb, self.api_group, self.resource, self.subresource,
                          self.namespace, self.name)


def request_info(method: str, path: str, watch: bool) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    prefix = split_group_version(parts)
    method_verb = VERBS.get(method, method.lower())
    if prefix is None:
        return RequestInfo(False, method_verb, path=path)
    group, version, rest = prefix
    if not rest:
        return RequestInfo(False, method_verb, path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 2:
        namespace = rest[1]
        if len(rest) == 2 or rest[2] in NAMESPACE_SUBRESOURCES:
            rest = ["namespaces", rest[1], *rest[2:3]]  # the Namespace object itself
        else:
            rest = rest[2:]
    resource, name, sub = (rest + ["", "", ""])[:3]
    verb = _resource_verb(method_verb, bool(name), watch)
    return RequestInfo(True, verb, api_group=group, api_version=version, namespace=namespace,
                       resource=resource, subresource=sub, name=name)


def _resource_verb(verb: str, named: bool, watch: bool) -> str:
    if verb == "get" and not named:
        return "watch" if watch else "list"
    if verb == "get" and watch:
        return "watch"
    if verb == "delete" and not named:
        return "deletecollection"
    return verb
