"""A verified ServiceAccount token is remembered for seconds, never past its own expiry, and
what revokes it (the account deleted or re-created, its key removed) still does at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import central_api.auth.serviceaccounts as serviceaccounts
from central_api.auth.authn import TOKEN_CACHE_SECONDS, InvalidToken, TokenCache
from central_api.auth.serviceaccounts import (
    LEEWAY_SECONDS,
    ServiceAccountAuthenticator,
    SigningKeys,
    TokenIssuer,
)
from central_api.machinery.user import User

ISSUER = "https://central.example:6443"
UID = "0b6c8f5e-3f0c-4a0e-9d59-3c2f2b7f1a11"
ACCOUNT = ("team-a", "deployer")


class World:
    """One authenticator with a settable clock, a fake account store and a count of the
    signature checks it made."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_900_000_000.0
        self.keys = SigningKeys.load_or_create(tmp_path)
        self.accounts: dict[tuple[str, str], str] = {ACCOUNT: UID}
        self.auth = ServiceAccountAuthenticator(self.keys, ISSUER, [ISSUER], self._lookup,
                                                clock=lambda: self.now)
        self.signature_checks = 0
        real = serviceaccounts._decode_with_any

        def counted(*args: Any) -> dict[str, Any]:
            self.signature_checks += 1
            return real(*args)
        monkeypatch.setattr(serviceaccounts, "_decode_with_any", counted)

    def _lookup(self, namespace: str, name: str) -> str | None:
        return self.accounts.get((namespace, name))

    def token(self, seconds: int = 3600) -> str:
        token, _ = TokenIssuer(self.keys, ISSUER).issue(
            *ACCOUNT, UID, [ISSUER], seconds, datetime.fromtimestamp(self.now, UTC))
        return token

    def user(self, token: str) -> User | None:
        return asyncio.run(self.auth.authenticate(token))

    def refused(self, token: str) -> str:
        with pytest.raises(InvalidToken) as caught:
            self.user(token)
        return str(caught.value)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(tmp_path, monkeypatch)


def test_a_token_is_verified_once_per_period(world: World) -> None:
    token = world.token()
    first = world.user(token)
    assert first is not None and first.name == "system:serviceaccount:team-a:deployer"
    assert all(world.user(token) == first for _ in range(5))
    assert world.signature_checks == 1
    world.now += TOKEN_CACHE_SECONDS
    assert world.user(token) == first
    assert world.signature_checks == 2


def test_deleting_the_account_revokes_a_remembered_token_at_once(world: World) -> None:
    token = world.token()
    assert world.user(token) is not None
    del world.accounts[ACCOUNT]
    assert "no longer exists" in world.refused(token)


def test_recreating_the_account_revokes_a_remembered_token_at_once(world: World) -> None:
    token = world.token()
    assert world.user(token) is not None
    world.accounts[ACCOUNT] = "another-uid"
    assert "re-created" in world.refused(token)


def test_removing_its_key_revokes_a_remembered_token_at_once(world: World) -> None:
    token = world.token()
    assert world.user(token) is not None
    old = world.keys.signing_kid
    world.keys.rotate()
    world.keys.remove(old)
    assert "unknown key id" in world.refused(token)


def test_a_remembered_token_expires_with_the_token(world: World) -> None:
    token = world.token(seconds=600)
    assert world.user(token) is not None
    world.now += 600 + LEEWAY_SECONDS - 1
    assert world.user(token) is not None  # verified again just now: valid for 1 s more
    world.now += 2
    assert "expired" in world.refused(token)


def test_the_cache_holds_hashes_not_tokens(world: World) -> None:
    token = world.token()
    world.user(token)
    entries = world.auth._verified._entries
    assert list(entries) == [TokenCache.key(token)]
    assert token.encode() not in repr(entries).encode()


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache: TokenCache[int] = TokenCache(lambda: 0.0, seconds=10, size=2)
    keys = [TokenCache.key(f"t{i}") for i in range(3)]
    cache.put(keys[0], 0, 100)
    cache.put(keys[1], 1, 100)
    assert cache.get(keys[0]) == 0  # now the most recently used
    cache.put(keys[2], 2, 100)
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) == 0 and cache.get(keys[2]) == 2
