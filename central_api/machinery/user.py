"""The authenticated caller, as every authenticator reports it and every authorizer sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
"""Members bypass authorization, as in Kubernetes: only the bootstrap admin token has it."""


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)

    def with_authenticated(self) -> User:
        if AUTHENTICATED in self.groups:
            return self
        return User(self.name, (*self.groups, AUTHENTICATED), self.uid, self.extra)


BOOTSTRAP_ADMIN = User("scs:bootstrap-admin", (MASTERS, AUTHENTICATED))
