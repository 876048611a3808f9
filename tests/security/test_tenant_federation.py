"""A customer's own IdP, trusted for Central API login at run time — and no further.

Two real OpenID providers serve HTTPS on 127.0.0.1 with their own CAs, like customer IdPs.
The operator registers one as ``Tenant.spec.federation`` of ``acme``; alice (an admin of
acme at that IdP) then logs in with the device flow and works in acme's namespaces as
``acme:alice@acme.example`` — and nowhere else, whatever names and groups the IdP asserts.
Also: an IdentityProvider object (the tenant admin's way) registers an issuer the same way;
an issuer a second tenant claims stays with the first, unless the operator assigns it to a
tenant; removing the registration logs the users out; an issuer the operator configured is
never taken over; and without the lab setting ``allowPrivateIssuers`` an IdP on a private
address is never contacted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.auth.conftest import start_provider
from tests.oidc import CLIENT_ID, USERS, OidcProvider, device_login
from tests.security.support import (
    NO_RATE_LIMIT,
    TENANTS,
    assert_forbidden,
    client,
    create_namespace,
    created,
    start_server,
    tenant,
    unique,
    wait_for,
)
from tests.server import TENANTS_AS_PLAIN_OBJECTS, ScsServer

pytestmark = pytest.mark.slow

ALICE = str(USERS["alice"]["email"])
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
IDPS = "/apis/iam.scs.community/v1alpha1/namespaces/{}/identityproviders"


def federation(provider: OidcProvider) -> dict[str, Any]:
    return {"issuerURL": provider.issuer, "clientID": CLIENT_ID,
            "claimMappings": {"username": "email", "groups": "groups"}}


def federated_tenant(name: str, provider: OidcProvider, admins: list[str]) -> dict[str, Any]:
    body = tenant(name, admins)
    body["spec"]["federation"] = federation(provider)
    return body


def whoami(server: ScsServer, token: str) -> httpx.Response:
    with client(server, token) as http:
        return http.post(WHOAMI, json={"apiVersion": "authentication.k8s.io/v1",
                                       "kind": "SelfSubjectReview"})


def user_info(server: ScsServer, token: str) -> dict[str, Any]:
    response = whoami(server, token)
    assert response.status_code == 201, f"{response.status_code}: {response.text[:300]}"
    return dict(response.json()["status"]["userInfo"])


def remove_tenant(admin: httpx.Client, name: str) -> None:
    """Delete a tenant and wait until it is gone (its issuer is free again)."""
    admin.delete(f"{TENANTS}/{name}")
    wait_for(lambda: admin.get(f"{TENANTS}/{name}").status_code == 404 or None, timeout=20,
             what=f"tenant {name} deleted")


@pytest.fixture(scope="module")
def idps() -> Iterator[tuple[OidcProvider, OidcProvider]]:
    first, second = start_provider(tls=True), start_provider(tls=True)
    try:
        yield first, second
    finally:
        first.cleanup()
        second.cleanup()


def serve(tmp: Path, federation_config: dict[str, Any],
          operator_idp: OidcProvider | None = None) -> ScsServer:
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump({"federation": federation_config,
                                      **TENANTS_AS_PLAIN_OBJECTS}))
    args = [*NO_RATE_LIMIT, "--config", str(config)]
    if operator_idp is not None:
        oidc = tmp / "oidc.yaml"
        oidc.write_text(yaml.safe_dump({"issuers": [{
            "issuer": operator_idp.issuer, "audience": CLIENT_ID, "usernameClaim": "email",
            "caFile": operator_idp.verify}]}))
        args += ["--oidc-config", str(oidc)]
    return start_server(args)


@pytest.fixture(scope="module")
def lab(idps: tuple[OidcProvider, OidcProvider],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScsServer]:
    """A server that trusts tenant IdPs on loopback (the lab setting) and the first IdP's
    test CA."""
    server = serve(tmp_path_factory.mktemp("lab"),
                   {"allowPrivateIssuers": True, "caFile": str(idps[0].verify)})
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def admin(lab: ScsServer) -> Iterator[httpx.Client]:
    with client(lab, lab.token) as http:
        yield http


def test_tenant_idp_login_is_confined_to_the_tenant(
        lab: ScsServer, admin: httpx.Client, idps: tuple[OidcProvider, OidcProvider]) -> None:
    idp = idps[0]
    acme, other = unique("acme"), unique("globex")
    token = device_login(idp, "alice")["id_token"]
    assert whoami(lab, token).status_code == 401, "an unregistered issuer must not log in"

    created(admin.post(TENANTS, json=federated_tenant(acme, idp, [ALICE])), "tenant acme")
    created(admin.post(TENANTS, json=tenant(other, ["alice@acme.example"])), "tenant globex")
    create_namespace(admin, f"{acme}-dev", acme)
    create_namespace(admin, f"{other}-a", other)

    try:
        info = user_info(lab, token)
        assert info["username"] == f"{acme}:{ALICE}"
        assert f"{acme}:acme-admins" in info["groups"] and "acme-admins" not in info["groups"]
        with client(lab, token) as alice:
            # tenant-admin in acme's namespaces through the tenant-access controller
            wait_for(lambda: alice.get(f"/api/v1/namespaces/{acme}-dev/secrets").status_code
                     == 200 or None, timeout=20, what="alice is tenant-admin in her tenant")
            # globex lists "alice@acme.example" as its admin, but that is the operator-IdP
            # identity: acme's IdP can never produce it
            assert_forbidden(alice.get(f"/api/v1/namespaces/{other}-a/secrets"),
                             "a tenant IdP's user in another tenant")
            assert_forbidden(alice.get("/api/v1/namespaces"), "listing all namespaces")
    finally:
        remove_tenant(admin, acme)
    assert whoami(lab, token).status_code == 401, "offboarded: the IdP's tokens are refused"


def test_reserved_and_foreign_names_stay_inside_the_tenant_prefix(
        lab: ScsServer, admin: httpx.Client, idps: tuple[OidcProvider, OidcProvider]) -> None:
    idp = idps[0]
    acme = unique("acme")
    created(admin.post(TENANTS, json=federated_tenant(acme, idp, [])), "tenant")
    try:
        # mallory's IdP account claims the group system:masters
        token = device_login(idp, "mallory")["id_token"]
        info = user_info(lab, token)
        assert info["username"] == f"{acme}:mallory@acme.example"
        assert "system:masters" not in info["groups"]
        assert f"{acme}:system:masters" in info["groups"]
        with client(lab, token) as mallory:
            assert_forbidden(mallory.get("/api/v1/secrets"), "system:masters from a tenant IdP")
    finally:
        remove_tenant(admin, acme)


def test_identity_provider_object_registers_and_unregisters_its_issuer(
        lab: ScsServer, admin: httpx.Client, idps: tuple[OidcProvider, OidcProvider]) -> None:
    idp = idps[0]
    first, second = unique("initech"), unique("hooli")
    for name in (first, second):
        created(admin.post(TENANTS, json=tenant(name, [])), f"tenant {name}")
        create_namespace(admin, name, name)
    body = {"apiVersion": "iam.scs.community/v1alpha1", "kind": "IdentityProvider",
            "metadata": {"name": "corp"}, "spec": federation(idp)}
    created(admin.post(IDPS.format(first), json=body), "IdentityProvider of the first tenant")
    time.sleep(1.1)  # creationTimestamp has whole seconds; a tie would be broken by name
    created(admin.post(IDPS.format(second), json=body), "the same issuer for another tenant")

    token = device_login(idp, "alice")["id_token"]
    assert user_info(lab, token)["username"] == f"{first}:{ALICE}", \
        "the issuer belongs to the tenant that registered it first"

    assert admin.delete(f"{IDPS.format(first)}/corp").status_code in (200, 202)
    wait_for(lambda: admin.get(f"{IDPS.format(first)}/corp").status_code == 404 or None,
             timeout=20, what="the first registration is gone")
    assert user_info(lab, token)["username"] == f"{second}:{ALICE}"

    # the operator assigns the issuer to a tenant: that beats the tenant-made registration
    operator_assigned = unique("umbrella")
    created(admin.post(TENANTS, json=federated_tenant(operator_assigned, idp, [])),
            "tenant the operator federates with the same issuer")
    assert user_info(lab, token)["username"] == f"{operator_assigned}:{ALICE}"
    remove_tenant(admin, operator_assigned)

    assert admin.delete(f"{IDPS.format(second)}/corp").status_code in (200, 202)
    wait_for(lambda: whoami(lab, token).status_code == 401 or None, timeout=20,
             what="no registration left: the IdP's tokens are refused")


def test_operator_issuer_is_not_taken_over_and_private_idps_are_not_contacted(
        idps: tuple[OidcProvider, OidcProvider], tmp_path: Path) -> None:
    tenant_idp, operator_idp = idps
    server = serve(tmp_path, {"caFile": str(tenant_idp.verify)}, operator_idp=operator_idp)
    try:
        with client(server, server.token) as admin:
            acme, initech = unique("acme"), unique("initech")
            created(admin.post(TENANTS, json=federated_tenant(acme, operator_idp, [])),
                    "tenant naming the operator's issuer")
            created(admin.post(TENANTS, json=federated_tenant(initech, tenant_idp, [])),
                    "tenant naming an IdP on a loopback address")
        operator_token = device_login(operator_idp, "alice")["id_token"]
        assert user_info(server, operator_token)["username"] == ALICE
        tenant_token = device_login(tenant_idp, "alice")["id_token"]
        assert whoami(server, tenant_token).status_code == 401
        assert "which is not a public address" in server.log_tail(50), server.log_tail(50)
    finally:
        server.cleanup()
