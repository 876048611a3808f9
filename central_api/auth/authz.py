"""Authorization: may this user perform this request? (Kubernetes' authorizer attributes.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..machinery.user import MASTERS, User


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do. ``path`` is set (and ``resource`` empty) for non-resource
    requests such as ``/openapi/v3``; ``namespace`` is empty for cluster-wide requests."""

    user: User
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return not self.path


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> Decision: ...


class MastersAuthorizer:
    """``system:masters`` may do anything (the bootstrap admin); everyone else is passed on."""

    def __init__(self, next_authorizer: Authorizer) -> None:
        self.next = next_authorizer

    def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS in attrs.user.groups:
            return Decision(True, "member of system:masters")
        return self.next.authorize(attrs)


class UnionAuthorizer:
    """Allowed if any member allows (Kubernetes' authorizer chain without explicit deny)."""

    def __init__(self, *members: Authorizer) -> None:
        self.members = members

    def authorize(self, attrs: Attributes) -> Decision:
        for member in self.members:
            decision = member.authorize(attrs)
            if decision.allowed:
                return decision
        return Decision(False)
