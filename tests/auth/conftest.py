"""Fixtures for the authentication suites: a real OpenID provider (Node.js oidc-provider)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oidc import OidcProvider, ToolMissing


def start_provider(**kwargs: object) -> OidcProvider:
    """Start an ``OidcProvider``; a missing Node.js FAILS the test (never skips): CI has
    Node.js, and a silently skipped OIDC suite would let authentication regressions through."""
    provider = OidcProvider(**kwargs)  # type: ignore[arg-type]
    try:
        return provider.start()
    except ToolMissing as exc:
        provider.cleanup()
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """One provider for the session: issuer http://127.0.0.1:PORT, device flow, users alice
    (groups acme-admins, acme-devs), bob (acme-devs) and mallory (claims system:masters)."""
    provider = start_provider()
    try:
        yield provider
    finally:
        provider.cleanup()
