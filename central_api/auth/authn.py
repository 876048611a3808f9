"""Authentication: turn a bearer token into a :class:`User`, or refuse.

Each kind of token (bootstrap, OIDC, service account) has an :class:`Authenticator`; the
chain asks them in order. An authenticator returns None for a token that is not its kind and
raises :class:`InvalidToken` for one that is its kind but fails verification, so a forged
OIDC token is never retried against another authenticator.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from ..machinery.user import User

MAX_AUTH_HEADER = 8192
TOKEN_CACHE_SECONDS = 10.0
TOKEN_CACHE_SIZE = 4096
T = TypeVar("T")


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


class TokenCache(Generic[T]):
    """What verifying a token found, kept for a few seconds (bounded, least recently used
    out first): a signature check costs more than the rest of a request.

    Entries are keyed by the SHA-256 of the token, so neither the keys nor anything logged
    hold a token, and a lookup's timing says nothing about one. An entry lasts
    :data:`TOKEN_CACHE_SECONDS` and never past the moment the token itself stops being
    valid; what can revoke a token sooner (a deleted ServiceAccount, a removed key or
    issuer) is checked by the authenticator on every hit.
    """

    def __init__(self, clock: Callable[[], float] = time.time,
                 seconds: float = TOKEN_CACHE_SECONDS, size: int = TOKEN_CACHE_SIZE) -> None:
        self.clock = clock
        self.seconds = seconds
        self.size = size
        self._entries: OrderedDict[bytes, tuple[float, T]] = OrderedDict()

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() >= entry[0]:
            self._entries.pop(key, None)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: bytes, value: T, valid_until: float) -> None:
        """Keep ``value`` until ``valid_until`` (the token's own end, same clock) at most."""
        self._entries[key] = (min(self.clock() + self.seconds, valid_until), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
