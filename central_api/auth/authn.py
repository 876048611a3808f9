"""Authentication: turn a bearer token into a :class:`User`, or refuse.

Each kind of token (bootstrap, OIDC, service account) has an :class:`Authenticator`; the
chain asks them in order. An authenticator returns None for a token that is not its kind and
raises :class:`InvalidToken` for one that is its kind but fails verification, so a forged
OIDC token is never retried against another authenticator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..machinery.user import User

MAX_AUTH_HEADER = 8192


class InvalidToken(Exception):
    """The token is of this authenticator's kind but not valid (expired, forged, ...)."""


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> User | None: ...


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    if not authorization or len(authorization) > MAX_AUTH_HEADER:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class AuthenticatorChain:
    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        self.authenticators = list(authenticators)

    async def authenticate(self, authorization: str | None) -> User | None:
        token = bearer_token(authorization)
        if token is None:
            return None
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate(token)
            except InvalidToken:
                return None
            if user is not None:
                return user.with_authenticated()
        return None
