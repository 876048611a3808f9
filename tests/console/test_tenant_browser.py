"""A tenant's own IdP in a real browser: the real OpenID provider of tests/oidc.py, serving
HTTPS with its own CA like a customer's IdP, is acme's ``Tenant.spec.federation``. Alice
opens ``/console/t/acme/``, signs in there (authorization code + PKCE, redirect URI
``/console/t/acme/callback``), is ``acme:alice@acme.example``, keeps her session across a
reload, sees acme and nothing of globex, and signs out. No CSP report, no serious or critical
axe finding on any console page (tenant_login.mjs; artifacts in
``test-artifacts/console/tenantIdpLogin/``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.console.conftest import (
    ARTIFACTS,
    CONSOLE,
    TENANCY,
    USERS,
    ConsoleEnv,
    _build_lock,
    _onboard,
    ensure_built,
    run_node,
)
from tests.console.test_browser import assert_clean
from tests.oidc import CONSOLE_CLIENT_ID, OidcProvider, ToolMissing
from tests.server import ScsServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tenant_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleEnv]:
    """A server without operator issuers that trusts tenant IdPs on loopback (the lab
    setting) and the IdP's CA; acme federated with the IdP, globex without."""
    ensure_built()
    work = tmp_path_factory.mktemp("console-tenant")
    dist = work / "console-dist"
    with _build_lock():
        shutil.copytree(CONSOLE / "dist", dist)
    (work / "data").mkdir()
    provider = OidcProvider(users=USERS, tls=True)  # its CA exists from here on
    server = ScsServer(data_dir=work / "data", config={
        "console": {"distDir": str(dist)},
        "federation": {"allowPrivateIssuers": True, "caFile": str(provider.verify)}})
    provider.console_redirect_uris = [f"{server.url}/console/t/acme/callback"]
    try:
        provider.start()
    except ToolMissing as exc:
        provider.cleanup()
        pytest.fail(str(exc))
    env = ConsoleEnv(server, provider)
    try:
        server.start()
        _onboard(env, "globex", "carol@globex.example")
        _onboard(env, "acme", "alice@acme.example")
        with env.admin() as admin:
            acme = admin.get(f"{TENANCY}/tenants/acme").json()
            acme["spec"]["federation"] = {"issuerURL": provider.issuer,
                                          "clientID": CONSOLE_CLIENT_ID}
            updated = admin.put(f"{TENANCY}/tenants/acme", json=acme)
            assert updated.status_code == 200, updated.text
        yield env
    finally:
        server.cleanup()
        provider.cleanup()


def test_tenant_user_logs_in_through_the_tenants_own_idp(tenant_env: ConsoleEnv) -> None:
    report = run_node("tenant_login.mjs", "tenantIdpLogin", ARTIFACTS / "tenantIdpLogin",
                      {"baseUrl": tenant_env.url, "idp": tenant_env.provider.url,
                       "tenant": "acme", "other": "globex"})
    assert_clean(report)
    steps = report["steps"]
    host = tenant_env.provider.url.removeprefix("https://")
    assert steps[0] == f"login buttons: Sign in with {host}", steps
    assert "logged in as acme:alice@acme.example" in steps, steps
    assert "address after login: /console/" in steps, steps
    assert "after a reload at the networks list: " \
           "/console/r/iaas.scs.community/v1alpha1/networks" in steps, steps
    assert "create offered: true" in steps, steps
    offered = next(s for s in steps if s.startswith("namespaces offered: "))
    assert "acme" in offered.split(": ")[1].split(",") and "globex" not in offered, offered
    assert "page mentions globex: false" in steps, steps
    foreign = next(s for s in steps if s.startswith("globex's servers: "))
    assert foreign.startswith("globex's servers: 0 row(s), alert: ") and "forbidden" in foreign
    assert steps[-1] == "after logout: 0 keys in sessionStorage", steps
    labels = [p["label"] for p in report["pages"]]
    assert labels[:3] == ["tenant-login", "idp-login", "tenant-home"], labels
