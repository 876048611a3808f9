"""A real OpenID provider (panva's certified ``oidc-provider`` on Node.js) for the OIDC tests,
and a scripted "browser" that logs a test user in through the provider's own HTML forms.

``OidcProvider(...).start()`` runs ``tests/oidc-provider/server.mjs`` on a free 127.0.0.1 port
(running ``npm ci`` first if ``node_modules`` is missing) and waits for discovery.
``device_login(provider, "alice")`` performs a complete device authorization grant without a
browser and returns the token response.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from central_api.datadir import DataDir, ensure_ca, ensure_server_cert
from tests.server import free_port

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc-provider"
CLIENT_ID = "scs-cli"
ES256_CLIENT_ID = "scs-cli-es256"
CONSOLE_CLIENT_ID = "scs-console"
USERS = {
    "alice": {"email": "alice@acme.example", "groups": ["acme-admins", "acme-devs"]},
    "bob": {"email": "bob@acme.example", "groups": ["acme-devs"]},
    "mallory": {"email": "mallory@acme.example", "groups": ["system:masters", "acme-devs"]},
}
_npm_lock = threading.Lock()


class ToolMissing(RuntimeError):
    """node or npm is not installed (the fixture turns this into a failure, never a skip)."""


def ensure_node_modules() -> None:
    """``npm ci`` from the committed lock file, once (the registry is the only network)."""
    with _npm_lock:
        if (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            return
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise ToolMissing("node and npm are required for the OIDC tests "
                              "(apt-get install -y nodejs npm)")
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                cwd=PROVIDER_DIR, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"npm ci failed in {PROVIDER_DIR}:\n{result.stdout}\n"
                               f"{result.stderr}")


class OidcProvider:
    """``node server.mjs`` on 127.0.0.1. ``restart()`` keeps the port and issuer but generates
    new signing keys: a key rotation as an IdP does it."""

    def __init__(self, *, id_token_ttl: int = 300, device_flow: bool = True,
                 issuer: str | None = None, users: dict[str, Any] | None = None,
                 port: int | None = None, tls: bool = False,
                 console_redirect_uris: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.console_redirect_uris = console_redirect_uris or []
        """Registers the web console's public client ``scs-console`` with these URIs."""
        self.dir = Path(tempfile.mkdtemp(prefix="scs-oidc-"))
        self.tls: DataDir | None = None
        self.verify: str | bool = True
        if tls:  # its own CA and a certificate for 127.0.0.1, like a customer's https IdP
            self.tls = DataDir(self.dir / "tls")
            self.tls.root.mkdir()
            ensure_ca(self.tls)
            ensure_server_cert(self.tls, ["127.0.0.1"])
            self.verify = str(self.tls.ca_cert)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.issuer = issuer or self.url
        self.id_token_ttl = id_token_ttl
        self.device_flow = device_flow
        self.users = USERS if users is None else users
        self.log_path = self.dir / "provider.log"
        self.proc: subprocess.Popen[bytes] | None = None
        # A key the provider publishes in its JWKS (alg PS256, which no client signs with, so
        # the provider never uses it) but whose private half the tests hold: tokens they craft
        # with it have a valid signature, so a refusal is about the claim under test.
        self.test_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.test_kid = "test-held-ps256"

    def test_key_jwk(self) -> dict[str, Any]:
        jwk = dict(jwt.algorithms.RSAAlgorithm.to_jwk(self.test_key, as_dict=True))
        return {**jwk, "kid": self.test_kid, "alg": "PS256", "use": "sig"}

    def sign(self, claims: dict[str, Any], *, alg: str = "PS256",
             kid: str | None = None) -> str:
        """A token signed with the provider-published test key."""
        return jwt.encode(claims, self.test_key, algorithm=alg,
                          headers={"kid": kid or self.test_kid})

    def start(self, timeout: float = 90, attempts: int = 4) -> OidcProvider:
        """Start and wait for discovery. Node.js 20 sometimes deadlocks while loading the
        provider's modules (main thread parked on a futex, no CPU, about one start in
        twenty here); a start that is not serving within ``timeout / attempts`` seconds —
        normally it takes half a second — is killed and tried again."""
        node = shutil.which("node")
        if node is None:
            raise ToolMissing("node is required for the OIDC tests (apt-get install -y nodejs)")
        ensure_node_modules()
        config = self.dir / "config.json"
        config.write_text(json.dumps({
            "port": self.port, "issuer": self.issuer, "idTokenTtl": self.id_token_ttl,
            "deviceFlow": self.device_flow, "users": self.users, "interval": 1,
            "extraKeys": [self.test_key_jwk()],
            "consoleRedirectUris": self.console_redirect_uris,
            **({"tls": {"cert": str(self.tls.server_cert), "key": str(self.tls.server_key)}}
               if self.tls else {}),
        }))
        for _ in range(attempts):
            if self._launch(node, config, timeout / attempts):
                return self
            self.stop()
        raise RuntimeError(f"oidc-provider not ready after {attempts} starts of "
                           f"{timeout / attempts:g}s each:\n{self.log_tail()}")

    def _launch(self, node: str, config: Path, timeout: float) -> bool:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([node, "server.mjs", str(config)], cwd=PROVIDER_DIR,
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited early:\n{self.log_tail()}")
            try:
                response = httpx.get(f"{self.url}/.well-known/openid-configuration", timeout=1,
                                     verify=self.verify)
                if response.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def restart(self) -> OidcProvider:
        """Stop and start again on the same port: new signing keys, sessions forgotten."""
        self.stop()
        return self.start()

    def discovery(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/.well-known/openid-configuration", timeout=5,
                             verify=self.verify)
        response.raise_for_status()
        return dict(response.json())

    def jwks(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/jwks", timeout=5, verify=self.verify)
        response.raise_for_status()
        return dict(response.json())

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class _Forms(HTMLParser):
    """The forms of a page: action, and the named inputs with their values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def browser_login(start_url: str, username: str, *, user_code: str | None = None,
                  password: str = "correct horse", max_steps: int = 10,
                  verify: str | bool = True) -> httpx.Response:
    """Do what a person does in a browser: open ``start_url``, enter the device code if asked,
    confirm it, sign in as ``username``, consent. Returns the last response: the device
    flow's success page, or whatever the redirect URI (e.g. the CLI's loopback) answered."""
    with httpx.Client(follow_redirects=True, timeout=10, verify=verify) as browser:
        response = browser.get(start_url)
        for _ in range(max_steps):
            page = _Forms()
            page.feed(response.text)
            if response.status_code != 200 or "Success" in page.title or not page.forms:
                return response
            form = page.forms[0]
            data = dict(form["fields"])
            if "user_code" in data and not data["user_code"]:
                if user_code is None:
                    raise AssertionError("the provider asks for a user code")
                data["user_code"] = user_code
            if "login" in data or data.get("prompt") == "login":
                data["login"] = username
                data["password"] = password
            response = browser.post(urljoin(str(response.url), form["action"]), data=data)
        raise AssertionError(f"login did not finish after {max_steps} forms: "
                             f"{response.url} {response.text[:500]}")


def device_login(provider: OidcProvider, username: str, *, client_id: str = CLIENT_ID,
                 scope: str = "openid email groups offline_access") -> dict[str, Any]:
    """A complete device authorization grant (RFC 8628) for ``username``; the token response
    (``id_token``, ``access_token``, ``refresh_token``, ...)."""
    discovery = provider.discovery()
    with httpx.Client(timeout=10, verify=provider.verify) as client:
        start = client.post(discovery["device_authorization_endpoint"],
                            data={"client_id": client_id, "scope": scope})
        start.raise_for_status()
        device = start.json()
        page = browser_login(device["verification_uri"], username,
                             user_code=device["user_code"], verify=provider.verify)
        assert "Sign-in Success" in page.text, page.text[:500]
        for _ in range(20):
            response = client.post(discovery["token_endpoint"], data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": device["device_code"], "client_id": client_id})
            body = response.json()
            if response.status_code == 200:
                return dict(body)
            if body.get("error") not in ("authorization_pending", "slow_down"):
                raise AssertionError(f"device token request failed: {body}")
            time.sleep(device.get("interval", 1))
    raise AssertionError("device grant never completed")
