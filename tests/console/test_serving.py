"""How ``scs serve`` serves the console (central_api/server/console.py), over real HTTPS:
the files with their types and caching, client routes, the public issuer list, the security
headers, the page shown while the console is not built, and the API paths unchanged."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.server import ScsServer

ISSUER = "http://127.0.0.1:9"  # never contacted: no token of it is ever presented


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScsServer, Path]]:
    work = tmp_path_factory.mktemp("console-serving")
    dist = work / "dist"
    oidc = work / "oidc.yaml"
    oidc.write_text(yaml.safe_dump({"issuers": [{"issuer": ISSUER, "audience": "scs-cli"}]}))
    (work / "data").mkdir()
    server = ScsServer(data_dir=work / "data", extra_args=["--oidc-config", str(oidc)],
                       config={"console": {"distDir": str(dist),
                                           "clients": {ISSUER: "scs-console"}}})
    try:
        yield server.start(), dist
    finally:
        server.cleanup()


def client(server: ScsServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10,
                        verify=ssl.create_default_context(cafile=str(server.ca_file)))


def build(dist: Path) -> None:
    (dist / "assets").mkdir(parents=True, exist_ok=True)
    (dist / "index.html").write_text('<!doctype html><script type="module" '
                                     'src="/console/assets/index-abc123.js"></script>')
    (dist / "assets" / "index-abc123.js").write_text("console.log('hello');" * 50)


def test_unbuilt_console_says_how_to_build_it_and_the_api_still_works(
        served: tuple[ScsServer, Path]) -> None:
    server, dist = served
    if (dist / "index.html").exists():
        pytest.skip("ordering: the console was already built by another test")
    with client(server) as http:
        page = http.get("/console/")
        assert page.status_code == 503
        assert "npm ci &amp;&amp; npm run build" in page.text and "scripts/setup" in page.text
        assert http.get("/version").status_code == 200


def test_root_redirects_to_the_console(served: tuple[ScsServer, Path]) -> None:
    with client(served[0]) as http:
        response = http.get("/")
        assert response.status_code == 302
        assert response.headers["location"] == "/console/"
        assert http.post("/").status_code == 405


def test_files_types_caching_and_client_routes(served: tuple[ScsServer, Path]) -> None:
    server, dist = served
    build(dist)
    with client(server) as http:
        index = http.get("/console/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert index.headers["cache-control"] == "no-cache"
        asset = http.get("/console/assets/index-abc123.js", headers={"accept-encoding": "gzip"})
        assert asset.headers["content-type"].startswith("text/javascript")
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["content-encoding"] == "gzip"
        assert asset.text.startswith("console.log")
        again = http.get("/console/assets/index-abc123.js",
                         headers={"if-none-match": asset.headers["etag"]})
        assert again.status_code == 304
        route = http.get("/console/r/iaas.scs.community/v1alpha1/servers/web-1")
        assert route.status_code == 200 and route.text == index.text
        assert http.get("/console/assets/missing.js").status_code == 404
        # only the built files are ever served: a path out of the directory is a route
        assert http.get("/console/%2e%2e/%2e%2e/data/admin.kubeconfig").text == index.text


def test_security_headers(served: tuple[ScsServer, Path]) -> None:
    server, dist = served
    build(dist)
    with client(server) as http:
        headers = http.get("/console/").headers
    csp = {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split("; ")}
    assert csp["script-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'", ISSUER]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'none'"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_public_config_names_issuers_and_client_ids_only(served: tuple[ScsServer, Path]
                                                         ) -> None:
    with client(served[0]) as http:
        config = http.get("/console/config.json").json()
    assert config == {"issuers": [{"issuer": ISSUER, "clientId": "scs-console",
                                   "name": "127.0.0.1", "scopes": "openid email groups"}],
                      "tokenLogin": True}


def test_api_paths_are_unchanged(served: tuple[ScsServer, Path]) -> None:
    server, _ = served
    with client(server) as http:
        assert http.get("/healthz").text == "ok"
        assert http.get("/apis").status_code == 401
        auth = {"Authorization": f"Bearer {server.token}"}
        assert http.get("/api", headers=auth).json()["kind"] == "APIVersions"
        assert http.get("/openapi/v3", headers=auth).status_code == 200
