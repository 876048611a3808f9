"""Harness for the console's browser tests: a real ``scs serve`` serving the built console,
the real OpenID provider with the console's public client, and Playwright (``playwright-core``
from npm) driving Debian's ``/usr/bin/chromium`` headless.

The browser side is ``scenarios.mjs`` (also ``tasks.mjs``, ``tenant_login.mjs``; their
common part is ``harness.mjs``): one scenario per run, a JSON result on stdout. pytest starts
the services, runs a scenario with :func:`run_scenario` (:func:`run_node`) and asserts its
result. Screenshots go to ``test-artifacts/console/<scenario>/``; every page a scenario visits is
scanned with axe-core, and the page's Content-Security-Policy reports are collected.

To add a scenario: write ``async function NAME(page)`` in scenarios.mjs (helpers there and
in harness.mjs: ``login``, ``visit``, ``capture``, ``step``...), register it in
``SCENARIOS``, and call ``run_scenario("NAME", console_env)`` from a test.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.oidc import CONSOLE_CLIENT_ID, OidcProvider, ToolMissing
from tests.polling import poll
from tests.server import REPO, ScsServer

HERE = Path(__file__).resolve().parent
CONSOLE = REPO / "console"
ARTIFACTS = REPO / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
TENANCY = "/apis/tenancy.scs.community/v1alpha1"
USERS = {
    "alice": {"email": "alice@acme.example", "groups": ["acme-admins"]},
    "carol": {"email": "carol@globex.example", "groups": ["globex-admins"]},
    "bob": {"email": "bob@acme.example", "groups": []},
}
"""Tenant admins of two tenants (acme, globex), named by email as the Tenants list them,
and bob, whom a test makes a viewer in acme."""
_npm_lock = threading.Lock()


def _npm(args: list[str], cwd: Path, timeout: float = 600) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are required for the console tests "
                    "(apt-get install -y nodejs npm)")
    result = subprocess.run([npm, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"npm {' '.join(args)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Across processes: another test run in the same tree (or vite itself) may be
    building the console; a second build at once fails (vite's own lock) or serves a
    half-written dist/."""
    with open(Path(tempfile.gettempdir()) / "scs-console-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_built() -> None:
    """The console as scripts/setup builds it (npm ci + npm run build), once; a built
    console is rebuilt only when a source file is newer than its index.html."""
    with _npm_lock, _build_lock():
        if not (CONSOLE / "node_modules" / ".package-lock.json").exists():
            _npm(["ci", "--no-audit", "--no-fund", "--loglevel=error"], CONSOLE)
        index = CONSOLE / "dist" / "index.html"
        sources = [p for p in (CONSOLE / "src").rglob("*") if p.is_file()]
        newest = max(p.stat().st_mtime for p in [*sources, CONSOLE / "index.html"])
        if not index.exists() or index.stat().st_mtime < newest:
            _npm(["run", "build"], CONSOLE)
        if not (HERE / "node_modules" / "playwright-core").exists():
            _npm(["ci", "--no-audit", "--no-fund", "--loglevel=error"], HERE)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install -y chromium; scripts/test does)")


@dataclass
class ConsoleEnv:
    server: ScsServer
    provider: OidcProvider

    @property
    def url(self) -> str:
        return self.server.url

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url,
                            verify=ssl.create_default_context(cafile=str(self.server.ca_file)),
                            headers={"Authorization": f"Bearer {self.server.token}"},
                            timeout=10)


def _oidc_config(path: Path, provider: OidcProvider) -> Path:
    path.write_text(yaml.safe_dump({"issuers": [{
        "issuer": provider.issuer, "audience": CONSOLE_CLIENT_ID, "usernameClaim": "email",
        "groupsClaim": "groups"}]}))
    return path


def _onboard(env: ConsoleEnv, name: str, admin: str) -> None:
    with env.admin() as client:
        response = client.post(f"{TENANCY}/tenants", json={
            "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {"displayName": name.title(), "contact": f"ops@{name}.example",
                     "admins": [admin], "quotas": {"namespaces": 5, "instances": 5,
                                                   "cores": 16, "ramMiB": 32768}}})
        assert response.status_code == 201, response.text

        def ready() -> bool:
            tenant = client.get(f"{TENANCY}/tenants/{name}").json()
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in tenant.get("status", {}).get("conditions", []))
        poll(ready, 60, 0.3, f"tenant {name} Ready")


@contextlib.contextmanager
def started_env(work: Path, *, id_token_ttl: int = 300) -> Iterator[ConsoleEnv]:
    """A server and a provider whose ``scs-console`` client redirects to it, with tenants
    acme (admin alice) and globex (admin carol) onboarded. Sandbox backends at speed 5
    (Servers turn Ready within seconds)."""
    ensure_built()
    dist = work / "console-dist"  # a private copy: a rebuild meanwhile cannot change it
    with _build_lock():
        shutil.copytree(CONSOLE / "dist", dist)
    (work / "data").mkdir()
    server = ScsServer(data_dir=work / "data", config={
        "providers": {"iaas": {"type": "sandbox", "speed": 5},
                      "kaas": {"type": "sandbox", "speed": 5}},
        "console": {"distDir": str(dist)}})
    provider = OidcProvider(users=USERS, id_token_ttl=id_token_ttl,
                            console_redirect_uris=[f"{server.url}/console/callback"])
    try:
        provider.start()
    except ToolMissing as exc:
        provider.cleanup()
        pytest.fail(str(exc))
    server.extra_args += ["--oidc-config", str(_oidc_config(work / "oidc.yaml", provider))]
    env = ConsoleEnv(server, provider)
    try:
        server.start()
        _onboard(env, "acme", "alice@acme.example")
        _onboard(env, "globex", "carol@globex.example")
        yield env
    finally:
        server.cleanup()
        provider.cleanup()


@pytest.fixture(scope="session")
def console_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleEnv]:
    """One server and one provider for most of the console suite (:func:`started_env`)."""
    with started_env(tmp_path_factory.mktemp("console")) as env:
        yield env


def run_node(script: str, name: str, out: Path, params: dict[str, Any],
             timeout: float = 240) -> dict[str, Any]:
    """Run scenario ``name`` of a browser script here (scenarios.mjs, tasks.mjs,
    tenant_login.mjs; harness.mjs is their common part) with screenshots into a fresh
    ``out``; its JSON result (``ok``, ``steps``, ``a11y``, ``csp``, ``pages``, ``error``).
    Fails with the scenario's own account of what went wrong."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    params = {"chromium": CHROMIUM, "artifacts": str(out), **params}
    result = subprocess.run(["node", str(HERE / script), name, json.dumps(params)],
                            cwd=HERE, capture_output=True, text=True, timeout=timeout)
    (out / "stderr.log").write_text(result.stderr)
    try:
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        pytest.fail(f"scenario {name} printed no result (exit {result.returncode}):\n"
                    f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    (out / "result.json").write_text(json.dumps(report, indent=2))
    return report


def run_scenario(name: str, env: ConsoleEnv, **extra: Any) -> dict[str, Any]:
    """Run one scenario of scenarios.mjs against the suite's server and OpenID provider."""
    return run_node("scenarios.mjs", name, ARTIFACTS / name, {
        "baseUrl": env.url, "issuer": env.provider.url, "adminToken": env.server.token,
        **extra})
