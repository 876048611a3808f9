"""Fixtures for the security suites.

``oidc_provider`` is the real OpenID provider (node oidc-provider) of the authentication
suites, re-exported so the tenant-admin story logs real users in.
"""

from __future__ import annotations

from tests.auth.conftest import oidc_provider

__all__ = ["oidc_provider"]
