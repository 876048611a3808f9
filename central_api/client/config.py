"""Where the API is and who the client is: from a kubeconfig, or given explicitly.

A kubeconfig is read the way kubectl reads it — the current (or named) context, its cluster's
server and CA (``certificate-authority``/``-data``, ``insecure-skip-tls-verify``), its user's
credential: ``token``, ``tokenFile``, an OIDC ``auth-provider``'s ``id-token``, a client
certificate (``client-certificate``/``-data`` with the key), or an ``exec`` credential plugin
such as ``scs token``. Exec plugins run when the first request needs a token and again when
the credential they gave expires or the server answers 401, like client-go.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess  # nosec B404 - runs the kubeconfig's exec credential plugin, as kubectl
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from .errors import ConfigError

DEFAULT_TIMEOUT = 30.0
EXEC_TIMEOUT = 300.0
"""An exec plugin may wait for a human to sign in (``scs login``'s device flow)."""
EXPIRY_MARGIN = 10.0
"""Seconds before an exec credential's expiry at which the plugin runs again."""


@dataclass
class Config:
    """Everything a client needs to reach the API as one identity."""

    server: str
    verify: ssl.SSLContext | bool = True
    auth: httpx.Auth | None = None
    namespace: str = "default"
    """The context's namespace: what namespaced calls use when given none."""
    timeout: float = DEFAULT_TIMEOUT
    user_agent: str = "scs-sdk"
    field_manager: str = "scs-sdk"
    """The field manager of writes that name none (server-side apply ownership)."""
    max_retries: int = 3
    """Retries of a request answered 429 or (idempotent requests) 503."""
    max_retry_wait: float = 30.0
    """The longest single wait a Retry-After may ask for before the client gives up."""
    ca_source: str = field(default="system trust store", repr=False)
    """Where the trusted CA came from, for a TLS error's message."""

    @classmethod
    def from_token(cls, server: str, token: str, *, ca_file: str | Path | None = None,
                   ca_data: str | None = None, namespace: str = "default") -> Config:
        """An explicit server and bearer token (a ServiceAccount token or an OIDC ID token)."""
        verify, source = tls_context(ca_file=str(ca_file) if ca_file else None, ca_data=ca_data)
        return cls(server.rstrip("/"), verify, BearerToken(token), namespace, ca_source=source)


def default_kubeconfig() -> Path:
    """The kubeconfig kubectl would read: the first of ``$KUBECONFIG``, else ~/.kube/config."""
    configured = os.environ.get("KUBECONFIG", "")
    first = configured.split(os.pathsep)[0] if configured else ""
    return Path(first) if first else Path.home() / ".kube" / "config"


def load_kubeconfig(path: str | Path | None = None, context: str = "") -> Config:
    """The :class:`Config` of a kubeconfig's ``context`` (default: its current context)."""
    path = Path(path) if path else default_kubeconfig()
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"kubeconfig {path} is not a kubeconfig document")
    return from_kubeconfig_dict(document, context, base=path.parent)


def from_kubeconfig_dict(document: dict[str, Any], context: str = "",
                         base: Path | None = None) -> Config:
    """A parsed kubeconfig's context as a :class:`Config`; relative file names are read
    relative to ``base`` (the kubeconfig's directory), as kubectl does."""
    name = context or str(document.get("current-context") or "")
    ctx = _named(document, "contexts", name, "context")
    cluster = _named(document, "clusters", str(ctx.get("cluster") or ""), "cluster")
    user = _named(document, "users", str(ctx.get("user") or ""), "user") \
        if ctx.get("user") else {}
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError(f"kubeconfig cluster {ctx.get('cluster')!r} has no server")
    base = base or Path.cwd()
    verify, source = _cluster_tls(cluster, user, base)
    return Config(server.rstrip("/"), verify, _user_auth(user, base),
                  str(ctx.get("namespace") or "default"), ca_source=source)


def _named(document: dict[str, Any], section: str, name: str, key: str) -> dict[str, Any]:
    for entry in document.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            found = entry.get(key)
            return dict(found) if isinstance(found, dict) else {}
    raise ConfigError(f"kubeconfig has no {section[:-1]} named {name!r}")


def _file(base: Path, name: str) -> str:
    return str(base / os.path.expanduser(name))


def _cluster_tls(cluster: dict[str, Any], user: dict[str, Any], base: Path
                 ) -> tuple[ssl.SSLContext | bool, str]:
    if cluster.get("insecure-skip-tls-verify"):
        return False, "nothing (insecure-skip-tls-verify)"
    ca_file = _file(base, cluster["certificate-authority"]) \
        if cluster.get("certificate-authority") else None
    ca_data = _b64(cluster["certificate-authority-data"], "certificate-authority-data") \
        if cluster.get("certificate-authority-data") else None
    context, source = tls_context(ca_file=ca_file, ca_data=ca_data)
    cert = _pem(user, "client-certificate", base)
    key = _pem(user, "client-key", base)
    if cert and key:
        _load_client_pair(context, cert, key)
    elif cert or key:
        raise ConfigError("kubeconfig user has a client certificate without its key "
                          "(or a key without its certificate)")
    return context, source


def tls_context(ca_file: str | None = None, ca_data: str | None = None
                ) -> tuple[ssl.SSLContext, str]:
    """A verifying TLS context trusting the given CA (else the system's), and its source."""
    try:
        if ca_data:
            return ssl.create_default_context(cadata=ca_data), "certificate-authority-data"
        if ca_file:
            return ssl.create_default_context(cafile=ca_file), ca_file
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA certificate {ca_file or '(inline data)'}: "
                          f"{exc}") from None
    return ssl.create_default_context(), "system trust store"


def _b64(value: str, what: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"kubeconfig {what} is not base64-encoded PEM") from None


def _pem(user: dict[str, Any], key: str, base: Path) -> bytes | None:
    if user.get(f"{key}-data"):
        return _b64(user[f"{key}-data"], f"{key}-data").encode()
    if user.get(key):
        try:
            return Path(_file(base, user[key])).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {key} {user[key]}: {exc}") from None
    return None


def _load_client_pair(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Load a client certificate into the TLS context. The ssl module reads only files: they
    exist (0600, in a private directory) just while it reads them."""
    with tempfile.TemporaryDirectory(prefix="scs-sdk-") as directory:
        cert_path, key_path = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        for path, data in ((cert_path, cert), (key_path, key)):
            path.touch(mode=0o600)
            path.write_bytes(data)
        try:
            context.load_cert_chain(str(cert_path), str(key_path))
        except ssl.SSLError as exc:
            raise ConfigError(f"kubeconfig client certificate or key is unusable: {exc}") \
                from None


def _user_auth(user: dict[str, Any], base: Path) -> httpx.Auth | None:
    if user.get("token"):
        return BearerToken(str(user["token"]))
    if user.get("tokenFile"):
        try:
            return BearerToken(Path(_file(base, user["tokenFile"])).read_text().strip())
        except OSError as exc:
            raise ConfigError(f"cannot read tokenFile {user['tokenFile']}: {exc}") from None
    provider = user.get("auth-provider") or {}
    if provider.get("name") == "oidc" and (provider.get("config") or {}).get("id-token"):
        return BearerToken(str(provider["config"]["id-token"]))
    if isinstance(user.get("exec"), dict):
        return ExecAuth(user["exec"])
    return None


class BearerToken(httpx.Auth):
    """A fixed bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


@dataclass
class _Credential:
    token: str
    expires: float | None


class ExecAuth(httpx.Auth):
    """A kubeconfig ``exec`` credential plugin (client.authentication.k8s.io ExecCredential).

    The token is kept until shortly before its ``expirationTimestamp``; a 401 runs the plugin
    once more and repeats the request (the token may have been revoked). The command comes
    from the user's own kubeconfig, which is as trusted as the user."""

    def __init__(self, spec: dict[str, Any]) -> None:
        if not spec.get("command"):
            raise ConfigError("kubeconfig exec plugin has no command")
        self.spec = spec
        self._credential: _Credential | None = None
        self._lock = threading.Lock()

    def sync_auth_flow(self, request: httpx.Request
                       ) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token(renew=False)}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self._token(renew=True)}"
            yield request

    async def async_auth_flow(self, request: httpx.Request
                              ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The plugin runs in a worker thread: it may take seconds (a login)."""
        token = await asyncio.to_thread(self._token, False)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            token = await asyncio.to_thread(self._token, True)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def _token(self, renew: bool) -> str:
        with self._lock:
            current = self._credential
            if renew or current is None or (
                    current.expires is not None
                    and current.expires - time.time() < EXPIRY_MARGIN):
                current = self._credential = self._run()
            return current.token

    def _run(self) -> _Credential:
        env = {**os.environ, **{str(e["name"]): str(e["value"])
                                for e in self.spec.get("env") or []}}
        env["KUBERNETES_EXEC_INFO"] = json.dumps({
            "apiVersion": self.spec.get("apiVersion") or
            "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "spec": {"interactive": False}})
        command = [str(self.spec["command"]), *(str(a) for a in self.spec.get("args") or [])]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True,  # noqa: S603  # nosec B603
                                  timeout=EXEC_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"exec credential plugin {command[0]} failed: {exc}") from None
        if done.returncode != 0:
            raise ConfigError(f"exec credential plugin {command[0]} exited "
                              f"{done.returncode}: {done.stderr.strip()[-500:]}")
        return _parse_credential(command[0], done.stdout)


def _parse_credential(command: str, output: str) -> _Credential:
    try:
        status = json.loads(output)["status"]
        token = str(status["token"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"exec credential plugin {command} printed no ExecCredential "
                          "with status.token") from None
    expiry = status.get("expirationTimestamp")
    expires = datetime.fromisoformat(expiry.replace("Z", "+00:00")).timestamp() \
        if isinstance(expiry, str) and expiry else None
    return _Credential(token, expires)
