"""The bootstrap admin token.

Only a SHA-256 hash of the token is kept on disk and in memory, and the comparison is done on
the hashes with ``hmac.compare_digest`` so its timing says nothing about the token.
"""

from __future__ import annotations

import hashlib
import hmac

from ..machinery.user import User


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenAuthenticator:
    """Static tokens whose SHA-256 hash it knows (the bootstrap admin token)."""

    def __init__(self, token_hashes: dict[str, User]) -> None:
        self._hashes = {bytes.fromhex(h): user for h, user in token_hashes.items()}

    async def authenticate(self, token: str) -> User | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for known, user in self._hashes.items():  # compare against all: no early exit
            if hmac.compare_digest(known, digest):
                found = user
        return found
