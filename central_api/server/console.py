"""The web console's static files and its public configuration (``console/`` in the repo).

The console is a browser client of the same KRM API (discovery, OpenAPI, watch), so the
server only hands out files: ``/`` redirects to ``/console/``, hashed assets under
``/console/assets/`` are cached forever, every other ``/console/...`` path is a client-side
route answered with ``index.html``, and ``/console/config.json`` tells the page which OpenID
issuers it may log in with (public facts only: issuer URLs and public client ids).

``/console/t/<tenant>/`` is a tenant's login entry: the same page, with that tenant's own
trusted IdPs (federation, as the authenticator resolves them) added to its config
(``/console/t/<tenant>/config.json``) and to its CSP, and ``/console/t/<tenant>/callback``
as their redirect URI, so the code exchange runs under that CSP too. An unknown tenant or one
without IdPs gets the ordinary page and config, byte for byte: the entry tells nobody more
than the login buttons do.

Every answer carries a strict Content-Security-Policy (no inline script, no eval, API calls
only to this origin and the configured issuers, no framing), because the page holds bearer
tokens: a single injected script would be a stolen session.

The built files are read into memory once (a few hundred kB, gzipped once too) so a
request never touches the disk or the thread pool. When the console was never built
(``npm`` missing at set-up) the server still starts and ``/console/`` says how to build it.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import html
import logging
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..config import ConsoleConfig

if TYPE_CHECKING:
    from .app import CentralApi

log = logging.getLogger(__name__)

PREFIX = "/console"
CONFIG_PATH = f"{PREFIX}/config.json"
DEFAULT_DIST = Path(__file__).resolve().parents[2] / "console" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
MAX_FILES = 2000
MAX_TOTAL_BYTES = 64 * 1024 * 1024
"""A dist directory bigger than this is a mistake (a wrong distDir), not a console."""
TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8",
         ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png",
         ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8",
         ".map": "application/json"}
COMPRESSIBLE = (".js", ".mjs", ".css", ".html", ".json", ".svg", ".txt", ".map")

TENANT_PREFIX = f"{PREFIX}/t/"
TENANT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""A Tenant's name is a DNS label; anything else is refused before any lookup."""
TENANT_PAGES = ("", "callback")

Issuers = Callable[[], list[tuple[str, str]]]
"""The operator's OIDC issuers as (issuer URL, audience), read at request time."""
TenantIssuers = Callable[[str], list[tuple[str, str]]]
"""A tenant's trusted IdPs as (issuer URL, client id): a lookup in the federation
authenticator's in-memory index (rebuilt from the informers only after a change)."""


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str


def load_dist(root: Path) -> dict[str, StaticFile] | None:
    """Every file of the built console by URL path below ``/console/`` (None: not built).
    Only these paths are ever served, so no request path reaches the file system."""
    if not (root / "index.html").is_file():
        return None
    files: dict[str, StaticFile] = {}
    total = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        body = path.read_bytes()
        total += len(body)
        if len(files) >= MAX_FILES or total > MAX_TOTAL_BYTES:
            raise ValueError(f"console distDir {root} holds more than {MAX_FILES} files or "
                             f"{MAX_TOTAL_BYTES} bytes: is it the built console?")
        suffix = path.suffix.lower()
        kind = TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or \
            "application/octet-stream"
        packed = gzip.compress(body, 9, mtime=0) if suffix in COMPRESSIBLE else None
        files[path.relative_to(root).as_posix()] = StaticFile(
            body, packed if packed and len(packed) < len(body) else None, kind,
            '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return files


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def idp_name(url: str) -> str:
    """A tenant IdP's button label: its host (and port), which the user can recognise."""
    return urlsplit(url).netloc or url


def content_security_policy(connect: list[str]) -> str:
    """No inline script or eval; XHR/fetch only to us and the issuers (discovery, token
    endpoint); nobody may frame the console (clickjacking of delete buttons)."""
    sources = " ".join(["'self'", *sorted(set(connect))])
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"font-src 'self'; connect-src {sources}; manifest-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


class Console:
    """The mount serving ``/`` and ``/console/...`` (before the KRM API's authentication:
    the files and the issuer list are public, every API call the page makes is not)."""

    def __init__(self, config: ConsoleConfig, issuers: Issuers,
                 tenant_issuers: TenantIssuers | None = None) -> None:
        self.config = config
        self.issuers = issuers
        self.tenant_issuers = tenant_issuers if config.tenant_login else None
        self.root = Path(config.dist_dir) if config.dist_dir else DEFAULT_DIST
        self._files: dict[str, StaticFile] | None = None
        self._lock = asyncio.Lock()

    def public_config(self, tenant: str = "", idps: list[tuple[str, str]] | None = None
                      ) -> dict[str, object]:
        """What the page needs before login; the client id defaults to the issuer's
        audience, since the API verifies ID tokens against it. With a tenant's IdPs
        (whose client id is the one the tenant registered), those follow, marked with it."""
        issuers: list[dict[str, str]] = [
            {"issuer": url, "clientId": self.config.clients.get(url, audience),
             "name": urlsplit(url).hostname or url, "scopes": self.config.scopes}
            for url, audience in sorted(self.issuers())]
        issuers += [{"issuer": url, "clientId": client_id, "name": idp_name(url),
                     "scopes": self.config.scopes, "tenant": tenant}
                    for url, client_id in sorted(idps or [])]
        return {"issuers": issuers, "tokenLogin": self.config.token_login,
                **({"tenant": tenant} if idps else {})}

    def headers(self, idps: list[tuple[str, str]] | None = None) -> dict[str, str]:
        return {"Content-Security-Policy": content_security_policy(
                    [origin(url) for url, _ in [*self.issuers(), *(idps or [])]]),
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY", "Cross-Origin-Opener-Policy": "same-origin"}

    async def files(self) -> dict[str, StaticFile] | None:
        """The built files, read on first use (and looked for again while missing, so a
        console built after the server started appears without a restart)."""
        if self._files is None:
            async with self._lock:
                if self._files is None:
                    self._files = await asyncio.to_thread(load_dist, self.root)
        return self._files

    async def __call__(self, request: Request, api: CentralApi) -> Response:
        headers = self.headers()
        if request.method not in ("GET", "HEAD"):
            return JSONResponse({"message": "the console only serves GET"}, 405,
                                headers={**headers, "Allow": "GET, HEAD"})
        path = request.url.path
        if path in ("/", PREFIX):
            return RedirectResponse(f"{PREFIX}/", 302, headers=headers)
        if path == CONFIG_PATH:
            return JSONResponse(self.public_config(),
                                headers={**headers, "Cache-Control": "no-cache"})
        if path.startswith(TENANT_PREFIX):
            return await self.tenant_entry(request, path.removeprefix(TENANT_PREFIX))
        files = await self.files()
        if files is None:
            return self.not_built(headers)
        name = path.removeprefix(PREFIX + "/")
        found = files.get(name)
        if found is None and name.startswith("assets/"):
            return Response("not found\n", 404, headers=headers, media_type="text/plain")
        cache = IMMUTABLE if found is not None and name.startswith("assets/") else "no-cache"
        return self.file(request, found or files["index.html"], {**headers,
                                                                 "Cache-Control": cache})

    async def tenant_entry(self, request: Request, rest: str) -> Response:
        """``<tenant>/``, ``<tenant>/callback`` (the page) and ``<tenant>/config.json``.
        A malformed name or page is a 404 (nothing looked up); a well-formed one always
        answers, with the tenant's IdPs only if it has trusted ones."""
        tenant, slash, page = rest.partition("/")
        if not TENANT_NAME.fullmatch(tenant) or page not in (*TENANT_PAGES, "config.json"):
            return Response("not found\n", 404, headers=self.headers(),
                            media_type="text/plain")
        if not slash:
            return RedirectResponse(f"{TENANT_PREFIX}{tenant}/", 302, headers=self.headers())
        idps = self.tenant_issuers(tenant) if self.tenant_issuers is not None else []
        headers = self.headers(idps)
        if page == "config.json":
            return JSONResponse(self.public_config(tenant, idps),
                                headers={**headers, "Cache-Control": "no-cache"})
        files = await self.files()
        if files is None:
            return self.not_built(headers)
        return self.file(request, files["index.html"], {**headers, "Cache-Control": "no-cache"})

    @staticmethod
    def file(request: Request, found: StaticFile, headers: dict[str, str]) -> Response:
        headers = {**headers, "ETag": found.etag, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        body = found.body
        if found.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body, headers["Content-Encoding"] = found.gzipped, "gzip"
        return Response(b"" if request.method == "HEAD" else body, headers=headers,
                        media_type=found.content_type)

    def not_built(self, headers: dict[str, str]) -> Response:
        where = html.escape(str(self.root))
        page = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<title>SCS console not built</title></head><body>"
                "<h1>The web console is not built</h1>"
                f"<p>This server found no <code>index.html</code> in <code>{where}</code>. "
                "Build the console from the repository (needs Node.js and npm):</p>"
                "<pre>scripts/setup</pre><p>or</p>"
                "<pre>cd console &amp;&amp; npm ci &amp;&amp; npm run build</pre>"
                "<p>then reload this page. The API itself works without the console.</p>"
                "</body></html>")
        return Response(page, 503, headers={**headers, "Cache-Control": "no-cache"},
                        media_type="text/html; charset=utf-8")
