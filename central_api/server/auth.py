"""Authentication for the server core: the bootstrap admin token.

Only a SHA-256 hash of the token is kept on disk and in memory, and the comparison is done on
the hashes with ``hmac.compare_digest`` so its timing says nothing about the token. OIDC and
service-account tokens plug in here later as further authenticators.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

ANONYMOUS_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
MAX_AUTH_HEADER = 8192


@dataclass(frozen=True)
class User:
    name: str
    groups: list[str] = field(default_factory=list)
    uid: str = ""


BOOTSTRAP_ADMIN = User("scs:bootstrap-admin", ["system:masters", "system:authenticated"])


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenAuthenticator:
    """Accepts ``Authorization: Bearer <token>`` for tokens whose hash it knows."""

    def __init__(self, token_hashes: dict[str, User]) -> None:
        self._hashes = {bytes.fromhex(h): user for h, user in token_hashes.items()}

    def authenticate(self, authorization: str | None) -> User | None:
        if not authorization or len(authorization) > MAX_AUTH_HEADER:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = None
        for known, user in self._hashes.items():  # compare against all: no early exit
            if hmac.compare_digest(known, digest):
                found = user
        return found
