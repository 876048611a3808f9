"""The tenant login entry ``/console/t/<tenant>/`` (central_api/server/console.py), over real
HTTPS against a real ``scs serve``: its CSP adds exactly the tenant's trusted IdP origins, its
config lists the issuers federation trusts for that tenant (never a squatted or superseded
registration, never an operator issuer taken over), an unknown tenant or one without IdPs
gets the ordinary page byte for byte, malformed names are refused without a lookup, and
``console.tenantLogin: false`` turns the entry off.

The IdP URLs are never contacted: the entry only lists registrations (a login would fetch
discovery; the browser test does that with a real provider).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.console.test_serving import build, client
from tests.security.support import TENANTS, create_namespace, created, tenant
from tests.server import TENANTS_AS_PLAIN_OBJECTS, ScsServer

pytestmark = pytest.mark.slow

OPERATOR = "https://127.0.0.1:9100"
ACME_IDP = "https://127.0.0.1:9101/acme"
GLOBEX_IDP = "https://127.0.0.1:9102"
LATE_IDP = "https://127.0.0.1:9103"
IDPS = "/apis/iam.scs.community/v1alpha1/namespaces/{}/identityproviders"


def federation(issuer: str, client_id: str) -> dict[str, Any]:
    return {"issuerURL": issuer, "clientID": client_id}


def identity_provider(name: str, issuer: str, client_id: str) -> dict[str, Any]:
    return {"apiVersion": "iam.scs.community/v1alpha1", "kind": "IdentityProvider",
            "metadata": {"name": name}, "spec": federation(issuer, client_id)}


def start(work: Path, console: dict[str, Any]) -> ScsServer:
    """A server with one operator issuer, tenants as plain objects, the lab federation."""
    dist = work / "dist"
    build(dist)
    oidc = work / "oidc.yaml"
    oidc.write_text(yaml.safe_dump({"issuers": [{"issuer": OPERATOR, "audience": "scs"}]}))
    (work / "data").mkdir()
    server = ScsServer(data_dir=work / "data", extra_args=["--oidc-config", str(oidc)],
                       config={**TENANTS_AS_PLAIN_OBJECTS,
                               "federation": {"allowPrivateIssuers": True},
                               "console": {"distDir": str(dist), **console}})
    return server.start()


def register(server: ScsServer) -> None:
    """acme: the operator assigns ACME_IDP (Tenant.spec.federation). globex: its admin
    registers GLOBEX_IDP (an IdentityProvider). initech: registers ACME_IDP (superseded by
    the operator's assignment), the operator's own issuer (never taken over) and GLOBEX_IDP
    after globex (squatting: the first registration wins), so it has no trusted IdP."""
    with client(server) as http:
        http.headers["Authorization"] = f"Bearer {server.token}"
        acme = tenant("acme")
        acme["spec"]["federation"] = federation(ACME_IDP, "acme-console")
        created(http.post(TENANTS, json=acme), "tenant acme")
        for name in ("globex", "initech"):
            created(http.post(TENANTS, json=tenant(name)), f"tenant {name}")
            create_namespace(http, name, name)
        created(http.post(IDPS.format("globex"),
                          json=identity_provider("corp", GLOBEX_IDP, "globex-console")),
                "globex's IdP")
        time.sleep(1.1)  # creation times have whole seconds: initech's come later
        for name, issuer in (("acme", ACME_IDP), ("ops", OPERATOR), ("globex", GLOBEX_IDP)):
            created(http.post(IDPS.format("initech"),
                              json=identity_provider(name, issuer, "initech")),
                    f"initech's claim on {issuer}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScsServer]:
    server = start(tmp_path_factory.mktemp("tenant-login"), {})
    try:
        register(server)
        yield server
    finally:
        server.cleanup()


def connect_src(response: httpx.Response) -> list[str]:
    csp = {d.split()[0]: d.split()[1:]
           for d in response.headers["content-security-policy"].split("; ")}
    return csp["connect-src"]


def wait_config(http: httpx.Client, tenant_name: str, issuers: int) -> dict[str, Any]:
    """The tenant's config once the informers delivered its registrations."""
    deadline = time.monotonic() + 10
    while True:
        config: dict[str, Any] = http.get(f"/console/t/{tenant_name}/config.json").json()
        if len(config["issuers"]) == issuers or time.monotonic() > deadline:
            return config
        time.sleep(0.1)


def test_tenant_entry_adds_exactly_the_tenants_idp(served: ScsServer) -> None:
    with client(served) as http:
        config = wait_config(http, "acme", 2)
        assert config == {"tenant": "acme", "tokenLogin": True, "issuers": [
            {"issuer": OPERATOR, "clientId": "scs", "name": "127.0.0.1",
             "scopes": "openid email groups"},
            {"issuer": ACME_IDP, "clientId": "acme-console", "name": "127.0.0.1:9101",
             "scopes": "openid email groups", "tenant": "acme"}]}
        for page in ("/console/t/acme/", "/console/t/acme/callback"):
            response = http.get(page)
            assert response.status_code == 200
            assert response.text == http.get("/console/").text, "the same index.html"
            assert connect_src(response) == ["'self'", OPERATOR, "https://127.0.0.1:9101"]
        assert connect_src(http.get("/console/t/acme/config.json")) == \
            ["'self'", OPERATOR, "https://127.0.0.1:9101"]


def test_an_identity_provider_object_is_offered_to_its_tenant_only(served: ScsServer) -> None:
    with client(served) as http:
        config = wait_config(http, "globex", 2)
        assert [(i["issuer"], i["clientId"], i.get("tenant")) for i in config["issuers"]] == \
            [(OPERATOR, "scs", None), (GLOBEX_IDP, "globex-console", "globex")]
        assert connect_src(http.get("/console/t/globex/")) == \
            ["'self'", OPERATOR, GLOBEX_IDP]


def test_squatted_superseded_or_unknown_gets_the_ordinary_page(served: ScsServer) -> None:
    """initech registered three issuers that federation does not trust for it: its entry is
    the ordinary one, exactly like a tenant that does not exist."""
    with client(served) as http:
        wait_config(http, "globex", 2)
        ordinary, page = http.get("/console/config.json"), http.get("/console/")
        for name in ("initech", "no-such-tenant"):
            assert http.get(f"/console/t/{name}/config.json").json() == ordinary.json()
            entry = http.get(f"/console/t/{name}/")
            assert entry.status_code == 200 and entry.text == page.text
            assert entry.headers["content-security-policy"] == \
                page.headers["content-security-policy"]
            assert connect_src(entry) == ["'self'", OPERATOR]


@pytest.mark.parametrize("path", [
    "/console/t/ACME/", "/console/t/a_b/", "/console/t/-acme/", "/console/t/acme-/",
    f"/console/t/{'a' * 64}/", "/console/t/%2e%2e/", "/console/t/acme/other",
    "/console/t/acme/callback/x", "/console/t/acme%2Fglobex/", "/console/t//",
    "/console/t/acme/config.json/"])
def test_malformed_entries_are_not_found(served: ScsServer, path: str) -> None:
    with client(served) as http:
        response = http.get(path)
    assert response.status_code == 404, path
    assert connect_src(response) == ["'self'", OPERATOR]


def test_entry_without_slash_redirects_and_only_get_is_served(served: ScsServer) -> None:
    with client(served) as http:
        response = http.get("/console/t/acme")
        assert response.status_code == 302
        assert response.headers["location"] == "/console/t/acme/"
        assert http.post("/console/t/acme/config.json").status_code == 405
        assert http.get(f"/console/t/{'a' * 63}/").status_code == 200


def test_tenant_login_off(tmp_path: Path) -> None:
    server = start(tmp_path, {"tenantLogin": False})
    try:
        register(server)
        with client(server) as http:
            time.sleep(0.5)  # the registrations are delivered (nothing may appear anyway)
            assert http.get("/console/t/acme/config.json").json() == \
                http.get("/console/config.json").json()
            assert connect_src(http.get("/console/t/acme/")) == ["'self'", OPERATOR]
    finally:
        server.cleanup()
