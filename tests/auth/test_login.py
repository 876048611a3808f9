"""``scs login`` / ``scs token`` end to end: a real OpenID provider, a real ``scs serve`` with
``--oidc-config``, and the real ``kubectl`` using the kubeconfig ``scs login`` wrote (its exec
plugin runs ``scs token``). The person approving the sign-in is scripted in a thread."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from tests.auth.conftest import start_provider
from tests.oidc import CLIENT_ID, OidcProvider, browser_login
from tests.server import ScsServer

KUBECTL = Path(os.environ.get("SCS_KUBECTL_DIR", "/usr/lib/google-cloud-sdk/bin")) \
    / "kubectl.1.33"
BIN = Path(sys.executable).parent
ID_TOKEN_TTL = 40  # > the 30 s refresh margin, so a fresh token is served from the cache

slow = pytest.mark.slow


@pytest.fixture(scope="module")
def device_idp() -> Iterator[OidcProvider]:
    provider = start_provider(id_token_ttl=ID_TOKEN_TTL)
    try:
        yield provider
    finally:
        provider.cleanup()


@pytest.fixture(scope="module")
def browser_idp() -> Iterator[OidcProvider]:
    """A provider without a device endpoint: scs login must use the loopback redirect."""
    provider = start_provider(device_flow=False)
    try:
        yield provider
    finally:
        provider.cleanup()


@pytest.fixture(scope="module")
def server(device_idp: OidcProvider, browser_idp: OidcProvider,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScsServer]:
    config = tmp_path_factory.mktemp("oidc-config") / "oidc.yaml"
    config.write_text(yaml.safe_dump({"issuers": [
        {"issuer": idp.issuer, "audience": CLIENT_ID, "usernameClaim": "email",
         "usernamePrefix": "oidc:", "groupsPrefix": "oidc:"}
        for idp in (device_idp, browser_idp)]}))
    server = ScsServer(extra_args=["--oidc-config", str(config)])
    try:
        yield server.start()
    finally:
        server.cleanup()


class Home:
    """An isolated user: HOME, XDG cache and kubeconfig in a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.kubeconfig = root / "kubeconfig"
        assert (BIN / "scs").exists(), f"scs is not installed next to {sys.executable}"
        self.env = {**os.environ, "HOME": str(root), "XDG_CACHE_HOME": str(root / "cache"),
                    "KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(root / "kube"),
                    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "COLUMNS": "80"}

    def scs(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "scs"), *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KUBECTL), *args], capture_output=True, text=True,
                              env=self.env, timeout=60)

    def whoami(self, *args: str) -> dict[str, Any]:
        result = self.kubectl("auth", "whoami", "-o", "json", *args)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout)["status"]["userInfo"])

    def token(self, idp: OidcProvider) -> dict[str, Any]:
        result = self.scs("token", "--issuer", idp.issuer, "--client-id", CLIENT_ID)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    def login(self, idp: OidcProvider, username: str, *args: str,
              device: bool = True) -> tuple[int, str]:
        """Run ``scs login``; when it shows what to open, approve as ``username`` in a thread,
        the way the person at the keyboard would in a browser."""
        proc = subprocess.Popen(
            [str(BIN / "scs"), "login", "--issuer", idp.issuer, "--client-id", CLIENT_ID,
             "--kubeconfig", str(self.kubeconfig), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        seen = ""
        approval: threading.Thread | None = None
        errors: list[BaseException] = []

        def approve(url: str, user_code: str | None) -> None:
            try:
                browser_login(url, username, user_code=user_code)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        deadline = time.monotonic() + 60
        try:
            while True:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                if line is None:
                    break
                seen += line
                if approval is not None:
                    continue
                if device:
                    user_code = re.search(r"enter the code (\S+)", seen)
                    uri = re.search(r"open (http://\S+)", seen)
                    target = (uri.group(1), user_code.group(1)) if user_code and uri else None
                else:
                    url = re.search(rf"{re.escape(idp.url)}/auth\?\S+", seen)
                    target = (url.group(0), None) if url else None
                if target:
                    approval = threading.Thread(target=approve, args=target)
                    approval.start()
        except queue.Empty:
            proc.kill()
            raise AssertionError(f"scs login hung; output so far:\n{seen}") from None
        returncode = proc.wait(30)
        if approval is not None:
            approval.join(30)
        assert not errors, errors
        assert approval is not None, seen
        return returncode, seen


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


def test_token_without_login_fails_clearly(home: Home) -> None:
    result = home.scs("token", "--issuer", "https://login.acme.example", "--client-id", "x")
    assert result.returncode == 1
    assert result.stdout == ""  # kubectl must not mistake anything for a credential
    assert "Not signed in to https://login.acme.example" in result.stderr
    assert "scs login --issuer https://login.acme.example --client-id x" in result.stderr


@slow
def test_device_login_then_kubectl_whoami_with_refresh(home: Home, device_idp: OidcProvider,
                                                       server: ScsServer) -> None:
    assert KUBECTL.exists(), f"{KUBECTL} is missing"
    code, output = home.login(device_idp, "alice", "--server", server.url,
                              "--certificate-authority", str(server.ca_file),
                              "--context", "acme")
    assert code == 0, output
    assert "Signed in as alice@acme.example" in output

    # The kubeconfig holds the exec plugin call, not a token.
    config = yaml.safe_load(home.kubeconfig.read_text())
    assert config["current-context"] == "acme"
    (user,) = config["users"]
    assert user["user"]["exec"]["apiVersion"] == "client.authentication.k8s.io/v1"
    assert user["user"]["exec"]["command"] == "scs"
    assert user["user"]["exec"]["args"] == ["token", "--issuer", device_idp.issuer,
                                            "--client-id", CLIENT_ID]
    assert user["user"]["exec"]["interactiveMode"] == "IfAvailable"
    assert "token" not in user["user"]
    assert stat.S_IMODE(home.kubeconfig.stat().st_mode) == 0o600

    # Tokens are cached privately.
    cache_dir = home.root / "cache" / "scs" / "oidc"
    (cache_file,) = cache_dir.glob("*.json")
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600

    # The real kubectl, through `scs token`, is alice at the Central API.
    info = home.whoami()
    assert info["username"] == "oidc:alice@acme.example"
    assert set(info["groups"]) == {"oidc:acme-admins", "oidc:acme-devs",
                                   "system:authenticated"}

    # A fresh token comes from the cache...
    first = home.token(device_idp)
    assert first["kind"] == "ExecCredential"
    cached = json.loads(cache_file.read_text())
    assert first["status"]["token"] == cached["id_token"]
    exp = jwt.decode(cached["id_token"], options={"verify_signature": False})["exp"]
    assert first["status"]["expirationTimestamp"] == time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime(exp))
    # ...and one within 30 s of expiry is refreshed with the refresh token.
    time.sleep(max(0.0, exp - 30 - time.time() + 1))
    second = home.token(device_idp)
    assert second["status"]["token"] != first["status"]["token"]
    new_exp = jwt.decode(second["status"]["token"], options={"verify_signature": False})["exp"]
    assert new_exp > exp
    refreshed = json.loads(cache_file.read_text())
    assert refreshed["id_token"] == second["status"]["token"]
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    assert home.whoami()["username"] == "oidc:alice@acme.example"

    # A refresh token the provider no longer honours: a clear message, no credential.
    refreshed.update(expiry=0, refresh_token="revoked")
    cache_file.write_text(json.dumps(refreshed))
    result = home.scs("token", "--issuer", device_idp.issuer, "--client-id", CLIENT_ID)
    assert result.returncode == 1 and result.stdout == ""
    assert "refreshing the token failed: invalid_grant" in result.stderr
    assert f"scs login --issuer {device_idp.issuer}" in result.stderr
    result = home.kubectl("auth", "whoami")
    assert result.returncode != 0
    assert "scs login" in result.stderr


@slow
def test_loopback_login_without_device_endpoint(home: Home, browser_idp: OidcProvider,
                                                server: ScsServer) -> None:
    """The IdP has no device flow: authorization code + PKCE with a loopback redirect. The
    new context reuses the cluster of the kubeconfig's current context."""
    assert "device_authorization_endpoint" not in browser_idp.discovery()
    shutil.copy(server.kubeconfig, home.kubeconfig)
    admin = yaml.safe_load(home.kubeconfig.read_text())
    code, output = home.login(browser_idp, "bob", "--no-browser", "--context", "bob",
                              device=False)
    assert code == 0, output
    config = yaml.safe_load(home.kubeconfig.read_text())
    assert config["current-context"] == "bob"
    bob = next(c for c in config["contexts"] if c["name"] == "bob")
    assert bob["context"]["cluster"] == admin["contexts"][0]["context"]["cluster"]
    assert home.whoami()["username"] == "oidc:bob@acme.example"
    # The admin context is still there and still the admin.
    admin_name = admin["current-context"]
    assert home.whoami("--context", admin_name)["username"] == "scs:bootstrap-admin"
