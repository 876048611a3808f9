"""Admission checks that need to know who writes: RBAC escalation prevention.

Runs on the final object of every write (after patches and defaults), so no patch flavour
can slip a privilege past it.
"""

from __future__ import annotations

from typing import Any

from ..kinds.kind import ResourceType
from ..kinds.rbac import GROUP as RBAC_GROUP
from ..machinery.errors import ApiError
from ..registry.resources import WriteOptions
from .authz import Authorizer
from .rbac import RuleSource, check_binding_write, check_role_write

ROLES = frozenset({"roles", "clusterroles"})
BINDINGS = frozenset({"rolebindings", "clusterrolebindings"})


class RbacEscalationAdmission:
    """Nobody creates or binds a role granting more than they hold (unless escalate/bind)."""

    def __init__(self, authorizer: Authorizer, source: RuleSource) -> None:
        self.authorizer = authorizer
        self.source = source

    def __call__(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                 opts: WriteOptions) -> None:
        if rt.group != RBAC_GROUP or opts.user is None:
            return
        namespace = obj["metadata"].get("namespace", "") if rt.namespaced else ""
        if rt.plural in ROLES:
            problem = check_role_write(self.authorizer, self.source, opts.user, rt.plural,
                                       namespace, obj, old)
        elif rt.plural in BINDINGS:
            problem = check_binding_write(self.authorizer, self.source, opts.user, namespace,
                                          obj, old)
        else:
            return
        if problem:
            name = obj["metadata"].get("name", "")
            raise ApiError(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: {problem}',
                           group=rt.group, kind=rt.plural, name=name)
