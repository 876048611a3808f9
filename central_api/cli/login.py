"""``scs login`` and ``scs token``: OpenID Connect for kubectl, the kubelogin way.

``scs login`` signs the user in at the IdP once (device authorization grant, RFC 8628, which
works over SSH and in containers; or, when the IdP has no device endpoint, authorization code
+ PKCE with a loopback redirect, RFC 8252) and writes a kubeconfig user that runs
``scs token`` as a client-go exec credential plugin. kubectl then asks ``scs token`` for a
token before each request; it answers from a private cache, refreshing the ID token with the
refresh token when it is about to expire. Nothing secret goes into the kubeconfig, which is
often shared or committed: tokens live only in ``~/.cache/scs/oidc`` (0600 files in a 0700
directory).

All human-readable output goes to stderr, because kubectl reads the exec plugin's stdout as
the ExecCredential document.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import http.server
import json
import os
import secrets
import ssl
import sys
import threading
import time
import webbrowser
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import typer
import yaml
from rich.console import Console

from ..server.kubeconfigs import EXEC_API_VERSION, oidc_user

err = Console(stderr=True, soft_wrap=True)  # never break a command or URL over lines

REFRESH_MARGIN = 30
"""Refresh an ID token that expires within this many seconds (the server allows 30 s skew)."""
DEFAULT_SCOPES = ("openid", "email", "groups", "profile", "offline_access")
HTTP_TIMEOUT = 10.0
LOGIN_TIMEOUT = 300.0


class LoginError(Exception):
    """A login or refresh step failed; the message is for the user."""


# ---------------------------------------------------------------------------------------------
# token cache


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scs" / "oidc"


def cache_path(issuer: str, client_id: str) -> Path:
    """One file per (issuer, client): a hash, so issuer URLs need no escaping."""
    digest = hashlib.sha256(f"{issuer}\n{client_id}".encode()).hexdigest()[:32]
    return cache_dir() / f"{digest}.json"


def _ensure_cache_dir() -> Path:
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    return directory


def read_cache(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_cache(path: Path, data: dict[str, Any]) -> None:
    """Write atomically with mode 0600 from the start (never briefly world-readable)."""
    _ensure_cache_dir()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """Serialise refreshes: kubectl may run several ``scs token`` at once, and with refresh
    token rotation a second refresh with the same (now used) refresh token would fail or even
    make the IdP revoke the whole grant."""
    _ensure_cache_dir()
    fd = os.open(path.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def token_expiry(id_token: str) -> int:
    """The ``exp`` of an ID token we received from the token endpoint over TLS.

    Not signature-checked on purpose: the client only uses it to decide when to refresh; the
    server verifies every token it is shown."""
    claims = jwt.decode(id_token, options={"verify_signature": False})
    return int(claims["exp"])


# ---------------------------------------------------------------------------------------------
# IdP protocol


def _verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file else True


def discover(client: httpx.Client, issuer: str) -> dict[str, Any]:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach the identity provider at {url}: {exc}") from None
    if response.status_code != 200:
        raise LoginError(f"{url} answered HTTP {response.status_code}; is the issuer URL "
                         f"right?")
    document = response.json()
    if document.get("issuer") != issuer:
        raise LoginError(f"the provider at {issuer} calls itself {document.get('issuer')!r}; "
                         f"use exactly that issuer URL")
    return dict(document)


def _scopes(discovery: dict[str, Any], requested: str | None) -> str:
    if requested:
        return requested
    supported = discovery.get("scopes_supported")
    if not isinstance(supported, list):
        return "openid email"
    return " ".join(s for s in DEFAULT_SCOPES if s == "openid" or s in supported)


def _token_request(client: httpx.Client, endpoint: str, data: dict[str, str]
                   ) -> tuple[int, dict[str, Any]]:
    try:
        response = client.post(endpoint, data=data, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach the token endpoint {endpoint}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = {"error": f"HTTP {response.status_code}, not JSON"}
    return response.status_code, body if isinstance(body, dict) else {}


def _oauth_error(body: dict[str, Any]) -> str:
    error = body.get("error", "unknown_error")
    description = body.get("error_description")
    return f"{error}: {description}" if description else str(error)


def device_flow(client: httpx.Client, discovery: dict[str, Any], client_id: str,
                scope: str, *, sleep: Any = time.sleep) -> dict[str, Any]:
    """RFC 8628: show a code, poll the token endpoint until the user approved it."""
    status, start = _token_request(client, discovery["device_authorization_endpoint"],
                                   {"client_id": client_id, "scope": scope})
    if status != 200 or "device_code" not in start:
        raise LoginError(f"device authorization failed: {_oauth_error(start)}")
    interval = float(start.get("interval") or 5)
    deadline = time.monotonic() + float(start.get("expires_in") or 600)
    complete = start.get("verification_uri_complete")
    err.print(f"\nTo sign in, open [bold]{start['verification_uri']}[/bold]\n"
              f"and enter the code [bold cyan]{start['user_code']}[/bold cyan]")
    if complete:
        err.print(f"(or open {complete})")
    err.print("Waiting for you to approve the sign-in...\n")
    while True:
        if time.monotonic() > deadline:
            raise LoginError("the code expired before the sign-in was approved; run "
                             "scs login again")
        sleep(interval)
        status, body = _token_request(client, discovery["token_endpoint"], {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": start["device_code"], "client_id": client_id})
        if status == 200:
            return body
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":  # RFC 8628 3.5: add 5 s to the interval for good
            interval += 5
            continue
        if error == "expired_token":
            raise LoginError("the code expired before the sign-in was approved; run "
                             "scs login again")
        if error == "access_denied":
            raise LoginError("the sign-in was denied")
        raise LoginError(f"sign-in failed: {_oauth_error(body)}")


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    """Receives the one redirect to ``/callback`` and hands its query to the waiting login."""

    server: _CallbackServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self.send_error(404)
            return
        self.server.result = {k: v[0] for k, v in parse_qs(parts.query).items()}
        ok = "code" in self.server.result
        body = ("<html><body><h1>Signed in</h1><p>You can close this window and return to "
                "the terminal.</p></body></html>" if ok else
                "<html><body><h1>Sign-in failed</h1><p>See the terminal.</p></body></html>")
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body.encode())
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # keep the terminal clean; the query holds the code


class _CallbackServer(http.server.HTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CallbackHandler)
        self.result: dict[str, str] = {}
        self.done = threading.Event()


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def auth_code_flow(client: httpx.Client, discovery: dict[str, Any], client_id: str,
                   scope: str, *, open_browser: bool = True,
                   timeout: float = LOGIN_TIMEOUT) -> dict[str, Any]:
    """RFC 8252 native-app flow: authorization code + PKCE (S256) with a loopback redirect on
    a random port, checking ``state`` (CSRF), the ``iss`` response parameter (RFC 9207, mix-up
    attacks) and the ID token's ``nonce`` (replay)."""
    server = _CallbackServer()
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    verifier, challenge = _pkce_pair()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    url = discovery["authorization_endpoint"] + "?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": scope, "state": state, "nonce": nonce, "code_challenge": challenge,
        "code_challenge_method": "S256", "prompt": "consent"})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        err.print(f"\nTo sign in, open this address in a browser on this machine:\n\n{url}\n",
                  highlight=False)
        if open_browser:
            with contextlib.suppress(webbrowser.Error):
                webbrowser.open(url)
        if not server.done.wait(timeout):
            raise LoginError("no sign-in arrived at the loopback address in time")
    finally:
        server.shutdown()
        server.server_close()
    result = server.result
    if not secrets.compare_digest(result.get("state", ""), state):
        raise LoginError("the sign-in response does not belong to this login (state mismatch)")
    if "iss" in result and result["iss"] != discovery["issuer"]:
        raise LoginError("the sign-in response came from another issuer")
    if "code" not in result:
        raise LoginError(f"sign-in failed: {_oauth_error(result)}")
    status, body = _token_request(client, discovery["token_endpoint"], {
        "grant_type": "authorization_code", "code": result["code"],
        "redirect_uri": redirect_uri, "client_id": client_id, "code_verifier": verifier})
    if status != 200:
        raise LoginError(f"code exchange failed: {_oauth_error(body)}")
    id_token = body.get("id_token")
    if isinstance(id_token, str):
        claims = jwt.decode(id_token, options={"verify_signature": False})
        if claims.get("nonce") != nonce:
            raise LoginError("the ID token does not carry this login's nonce")
    return body


def refresh(client: httpx.Client, cache: dict[str, Any]) -> dict[str, Any]:
    status, body = _token_request(client, cache["token_endpoint"], {
        "grant_type": "refresh_token", "refresh_token": cache["refresh_token"],
        "client_id": cache["client_id"]})
    if status != 200:
        raise LoginError(f"refreshing the token failed: {_oauth_error(body)}")
    if not isinstance(body.get("id_token"), str):
        raise LoginError("the provider's refresh answer carries no ID token")
    return body


def _cache_entry(issuer: str, client_id: str, token_endpoint: str,
                 tokens: dict[str, Any], previous_refresh: str | None = None) -> dict[str, Any]:
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise LoginError("the provider returned no ID token; is 'openid' among the scopes?")
    return {
        "issuer": issuer, "client_id": client_id, "token_endpoint": token_endpoint,
        "id_token": id_token, "expiry": token_expiry(id_token),
        # A provider that does not rotate refresh tokens omits it: keep the old one.
        "refresh_token": tokens.get("refresh_token") or previous_refresh,
    }


# ---------------------------------------------------------------------------------------------
# kubeconfig


def default_kubeconfig() -> Path:
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path.home() / ".kube" / "config"


def _upsert(items: list[dict[str, Any]], name: str, key: str, value: dict[str, Any]) -> None:
    for item in items:
        if item.get("name") == name:
            item[key] = value
            return
    items.append({"name": name, key: value})


def write_kubeconfig(path: Path, *, issuer: str, client_id: str, context: str,
                     server: str | None, certificate_authority: Path | None,
                     issuer_ca_file: Path | None) -> str:
    """Add or update the user, cluster (with ``--server``) and context; make it current.

    The user holds only the exec plugin call, never a token. Returns the user's name."""
    config: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text())
        if loaded is not None and not isinstance(loaded, dict):
            raise LoginError(f"{path} is not a kubeconfig")
        config = loaded or {}
    config.setdefault("apiVersion", "v1")
    config.setdefault("kind", "Config")
    clusters = config.setdefault("clusters", []) or []
    users = config.setdefault("users", []) or []
    contexts = config.setdefault("contexts", []) or []
    config.update(clusters=clusters, users=users, contexts=contexts)
    existing = next((c for c in contexts if c.get("name") == context), None)
    if server:
        cluster_name = context
        cluster: dict[str, Any] = {"server": server}
        if certificate_authority:
            cluster["certificate-authority-data"] = base64.b64encode(
                certificate_authority.read_bytes()).decode()
        _upsert(clusters, cluster_name, "cluster", cluster)
    elif existing and existing.get("context", {}).get("cluster"):
        cluster_name = existing["context"]["cluster"]
    else:
        current = next((c for c in contexts if c.get("name") == config.get("current-context")),
                       None)
        if not current or not current.get("context", {}).get("cluster"):
            raise LoginError(f"{path} has no cluster for context {context!r}: pass --server "
                             f"(and --certificate-authority)")
        cluster_name = current["context"]["cluster"]
    user_name = f"oidc-{urlsplit(issuer).netloc}-{client_id}"
    extra = ("--issuer-ca-file", str(issuer_ca_file.resolve())) if issuer_ca_file else ()
    _upsert(users, user_name, "user", oidc_user(issuer, client_id, extra))
    _upsert(contexts, context, "context", {"cluster": cluster_name, "user": user_name})
    config["current-context"] = context
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return user_name


# ---------------------------------------------------------------------------------------------
# commands


def login(
    issuer: Annotated[str, typer.Option(help="OIDC issuer URL, exactly as the IdP names "
                                             "itself.")],
    client_id: Annotated[str, typer.Option(help="Public client id registered at the IdP; the "
                                                "Central API's audience.")],
    kubeconfig: Annotated[Path | None, typer.Option(
        help="Kubeconfig to write (default: first of $KUBECONFIG, else ~/.kube/config).")]
    = None,
    server: Annotated[str | None, typer.Option(help="Central API URL for a new cluster "
                                                    "entry.")] = None,
    certificate_authority: Annotated[Path | None, typer.Option(
        help="CA certificate (PEM) of the Central API, embedded in the cluster entry.")]
    = None,
    context: Annotated[str, typer.Option(help="Context to create or update; becomes "
                                              "current.")] = "scs-oidc",
    scope: Annotated[str | None, typer.Option(
        help="Scopes to request (default: openid and those of email, groups, profile, "
             "offline_access the IdP supports).")] = None,
    issuer_ca_file: Annotated[Path | None, typer.Option(
        help="CA certificate (PEM) for the IdP's TLS, if not publicly trusted.")] = None,
    no_browser: Annotated[bool, typer.Option(
        "--no-browser", help="Do not try to open a browser (authorization code flow).")]
    = False,
) -> None:
    """Sign in at an OpenID Connect provider and set up kubectl to use the identity."""
    if certificate_authority and not server:
        err.print("[red]--certificate-authority needs --server[/red]")
        raise typer.Exit(2)
    path = kubeconfig or default_kubeconfig()
    try:
        with httpx.Client(verify=_verify(issuer_ca_file), timeout=HTTP_TIMEOUT) as client:
            discovery = discover(client, issuer)
            scopes = _scopes(discovery, scope)
            if discovery.get("device_authorization_endpoint"):
                tokens = device_flow(client, discovery, client_id, scopes)
            else:
                err.print("[dim]The provider offers no device flow; using the browser with a "
                          "loopback redirect.[/dim]")
                tokens = auth_code_flow(client, discovery, client_id, scopes,
                                        open_browser=not no_browser)
        entry = _cache_entry(issuer, client_id, discovery["token_endpoint"], tokens)
        cache = cache_path(issuer, client_id)
        with cache_lock(cache):
            write_cache(cache, entry)
        user = write_kubeconfig(path, issuer=issuer, client_id=client_id, context=context,
                                server=server, certificate_authority=certificate_authority,
                                issuer_ca_file=issuer_ca_file)
    except LoginError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    claims = jwt.decode(entry["id_token"], options={"verify_signature": False})
    who = claims.get("email") or claims.get("sub")
    err.print(f"[green]Signed in as {who}.[/green] Context [bold]{context}[/bold] (user "
              f"{user}) in {path} is now current; try: kubectl auth whoami")


def token(
    issuer: Annotated[str, typer.Option(help="OIDC issuer URL used with scs login.")],
    client_id: Annotated[str, typer.Option(help="Client id used with scs login.")],
    issuer_ca_file: Annotated[Path | None, typer.Option(
        help="CA certificate (PEM) for the IdP's TLS.")] = None,
) -> None:
    """Print an ExecCredential for kubectl (exec credential plugin), refreshing if needed."""
    relogin = f"run: scs login --issuer {issuer} --client-id {client_id}"
    path = cache_path(issuer, client_id)
    with cache_lock(path):
        cache = read_cache(path)
        if not cache or not isinstance(cache.get("id_token"), str):
            err.print(f"[red]Not signed in to {issuer}; {relogin}[/red]")
            raise typer.Exit(1)
        now = time.time()
        if cache.get("expiry", 0) - now < REFRESH_MARGIN:
            if not cache.get("refresh_token"):
                err.print(f"[red]The sign-in to {issuer} expired; {relogin}[/red]")
                raise typer.Exit(1)
            try:
                with httpx.Client(verify=_verify(issuer_ca_file), timeout=HTTP_TIMEOUT) as c:
                    tokens = refresh(c, cache)
                cache = _cache_entry(issuer, client_id, cache["token_endpoint"], tokens,
                                     cache.get("refresh_token"))
            except LoginError as exc:
                err.print(f"[red]{exc}; {relogin}[/red]")
                raise typer.Exit(1) from None
            write_cache(path, cache)
        if cache["expiry"] <= now:
            err.print(f"[red]The provider issued an already expired token; {relogin}[/red]")
            raise typer.Exit(1)
    expires = dt.datetime.fromtimestamp(cache["expiry"], dt.UTC)
    credential = {
        "apiVersion": EXEC_API_VERSION, "kind": "ExecCredential", "spec": {},
        "status": {"token": cache["id_token"],
                   "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    sys.stdout.write(json.dumps(credential) + "\n")
