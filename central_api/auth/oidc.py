"""OpenID Connect ID tokens as bearer tokens, verified the way kube-apiserver does it.

Clients log in at the customer's identity provider (``scs login``) and send the *ID token*
(audience = the CLI's client id) on every request; the server never talks to the IdP on the
request path except to fetch its signing keys. Several issuers can be trusted at once: the
unverified ``iss`` claim only *selects* which issuer's configuration and keys to verify
against, so a token naming an issuer we do not trust is "not ours" (None, the next
authenticator may know it) while a token naming a trusted issuer that fails any check is
refused outright (:class:`InvalidToken`) and never retried elsewhere.

Security choices, and why:

* Only asymmetric algorithms from a fixed allow-list are accepted, and the algorithm must
  match the key type. ``none`` and HMAC are refused before any key is looked at, which rules
  out the classic "alg confusion" (an HS256 token "signed" with the public RSA key).
* The discovery document must name exactly the configured issuer (OIDC Discovery 4.3), so a
  misconfigured or hijacked URL cannot feed us another issuer's keys.
* Keys are cached; an unknown ``kid`` triggers a refresh (that is how IdPs rotate keys), but
  at most once per ``jwks_min_refresh_interval`` so a flood of tokens with made-up key ids
  cannot turn the server into a request amplifier against the IdP.
* Usernames and groups starting with ``system:`` or ``scs:`` are reserved for identities the
  server itself asserts (``system:masters``, ``system:authenticated``, the bootstrap admin):
  such usernames refuse the token and such groups are dropped, so an IdP administrator (or a
  user who can edit their own groups at the IdP) cannot become a cluster admin by naming a
  group ``system:masters``. Configure a prefix to keep the namespaces apart entirely.
* Failure reasons are logged at debug level; the token itself is never logged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import yaml

from ..machinery.user import User
from ..net import non_public_address
from .authn import InvalidToken, TokenCache

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"})
"""Asymmetric JWS algorithms accepted for ID tokens (never ``none`` or ``HS*``)."""

KEY_TYPES = {"RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA",
             "ES256": "EC", "ES384": "EC"}
LEEWAY = 30
"""Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""
RESERVED_PREFIXES = ("system:", "scs:")
MAX_DOCUMENT_BYTES = 512 * 1024
JWKS_MAX_AGE = 3600.0
"""Keys are refetched at least this often even if no unknown ``kid`` shows up, so a key the
IdP withdrew (compromised) stops being accepted within the hour."""


class OidcConfigError(ValueError):
    """The OIDC configuration file is unusable; the message says where and why."""


@dataclass
class OidcIssuer:
    """One trusted identity provider.

    ``username_prefix`` defaults to no prefix. Kubernetes instead defaults to
    ``"<issuer>#"`` unless the username claim is ``email``, so that identities of different
    IdPs can never collide; set ``usernamePrefix`` (e.g. ``"acme:"``) when you trust more than
    one issuer or when IdP usernames could clash with local names.
    """

    issuer_url: str
    audience: str
    username_claim: str = "sub"
    username_prefix: str = ""
    groups_claim: str = "groups"
    groups_prefix: str = ""
    ca_file: Path | None = None
    required_claims: dict[str, str] = field(default_factory=dict)
    public_only: bool = False
    """Fetch discovery and keys only from globally routable addresses. Set for issuers a
    tenant registered: the server must not become a tool for probing the provider's own
    network (blind SSRF through the issuer or ``jwks_uri`` URL)."""

    def validate(self) -> None:
        """Raise :class:`OidcConfigError` for a configuration that could never work safely."""
        parts = urlsplit(self.issuer_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise OidcConfigError(f"issuer {self.issuer_url!r} must be an https:// URL")
        if parts.query or parts.fragment:
            raise OidcConfigError(f"issuer {self.issuer_url!r} must not have a query or "
                                  f"fragment")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise OidcConfigError(f"issuer {self.issuer_url!r}: plain http is only allowed on "
                                  f"a loopback address (tests, local development)")
        if not self.audience:
            raise OidcConfigError(f"issuer {self.issuer_url!r}: audience (the client id) is "
                                  f"required")
        if not self.username_claim:
            raise OidcConfigError(f"issuer {self.issuer_url!r}: usernameClaim is empty")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise OidcConfigError(f"issuer {self.issuer_url!r}: caFile {self.ca_file} does "
                                  f"not exist")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_CONFIG_KEYS = {
    "issuer": "issuer_url", "audience": "audience", "clientID": "audience",
    "usernameClaim": "username_claim", "usernamePrefix": "username_prefix",
    "groupsClaim": "groups_claim", "groupsPrefix": "groups_prefix", "caFile": "ca_file",
    "requiredClaims": "required_claims",
}


def load_oidc_config(path: Path | str) -> list[OidcIssuer]:
    """Read the ``--oidc-config`` YAML file: a list of issuers (or ``{issuers: [...]}``)::

        issuers:
        - issuer: https://login.acme.example/realms/acme
          audience: scs-cli          # the client id the ID tokens are issued to
          usernameClaim: email       # default: sub
          usernamePrefix: "acme:"    # default: none
          groupsClaim: groups        # default: groups
          groupsPrefix: "acme:"      # default: none
          caFile: acme-ca.pem        # relative to this file; default: system CAs
          requiredClaims: {hd: acme.example}

    Errors name the file and the entry, because this runs at server start and the operator
    has to find the mistake from the message alone.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise OidcConfigError(f"cannot read OIDC config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise OidcConfigError(f"OIDC config {path} is not valid YAML: {exc}") from None
    if isinstance(raw, dict) and set(raw) == {"issuers"}:
        raw = raw["issuers"]
    if not isinstance(raw, list) or not raw:
        raise OidcConfigError(f"OIDC config {path}: expected a non-empty list of issuers "
                              f"(or a mapping with the key 'issuers')")
    issuers: list[OidcIssuer] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        where = f"OIDC config {path}, issuer #{index + 1}"
        if not isinstance(entry, dict):
            raise OidcConfigError(f"{where}: expected a mapping")
        unknown = sorted(set(entry) - set(_CONFIG_KEYS))
        if unknown:
            raise OidcConfigError(f"{where}: unknown keys {unknown}; known: "
                                  f"{sorted(_CONFIG_KEYS)}")
        kwargs: dict[str, Any] = {}
        for key, value in entry.items():
            name = _CONFIG_KEYS[key]
            if name == "required_claims":
                if not isinstance(value, dict) or not all(
                        isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                    raise OidcConfigError(f"{where}: requiredClaims must map claim names to "
                                          f"string values")
            elif not isinstance(value, str):
                raise OidcConfigError(f"{where}: {key} must be a string")
            if name == "ca_file":
                value = (path.parent / value).resolve()
            kwargs[name] = value
        for required in ("issuer", "audience"):
            if not entry.get(required) and not (required == "audience"
                                                and entry.get("clientID")):
                raise OidcConfigError(f"{where}: {required} is required")
        issuer = OidcIssuer(**kwargs)
        try:
            issuer.validate()
        except OidcConfigError as exc:
            raise OidcConfigError(f"{where}: {exc}") from None
        if issuer.issuer_url in seen:
            raise OidcConfigError(f"{where}: issuer {issuer.issuer_url} is listed twice")
        seen.add(issuer.issuer_url)
        issuers.append(issuer)
    return issuers


async def _require_public(url: str) -> None:
    """Refuse a URL whose host resolves to any non-global address (see :mod:`..net`); the
    fetch stays bounded by the size cap, the timeout and no redirects."""
    host = urlsplit(url).hostname
    try:
        address = await non_public_address(url)
    except OSError as exc:
        raise InvalidToken(f"cannot resolve {host}: {exc}") from None
    if address:
        raise InvalidToken(f"{host} resolves to {address}, which is not a public address; "
                           f"tenant identity providers must be public")


class _IssuerKeys:
    """Discovery and the key set of one issuer, fetched lazily and cached."""

    def __init__(self, issuer: OidcIssuer, min_refresh_interval: float, timeout: float,
                 clock: Callable[[], float]) -> None:
        self.issuer = issuer
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self.clock = clock
        self.jwks_uri: str | None = None
        self.keys: list[dict[str, Any]] = []
        self.fetched_at: float | None = None  # last successful JWKS fetch
        self.attempted_at: float | None = None  # last fetch attempt, successful or not
        self.fetches = 0  # JWKS fetches (tests assert the kid-spam limit with it)
        self.lock = asyncio.Lock()

    def _verify(self) -> ssl.SSLContext | bool:
        if self.issuer.ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.issuer.ca_file))

    async def _get_json(self, url: str) -> Any:
        """GET a JSON document with a size cap (the IdP is trusted, the network path less)."""
        if self.issuer.public_only:
            await _require_public(url)
        # A client per fetch: fetches are rare, and a client bound to one event loop would
        # break when the authenticator is used from another (tests, reloads).
        async with httpx.AsyncClient(verify=self._verify(), timeout=self.timeout,
                                     follow_redirects=False) as client:
            async with client.stream("GET", url, headers={"Accept": "application/json"}) as r:
                if r.status_code != 200:
                    raise InvalidToken(f"GET {url} answered HTTP {r.status_code}")
                body = b""
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise InvalidToken(f"GET {url}: document larger than "
                                           f"{MAX_DOCUMENT_BYTES} bytes")
        try:
            return json.loads(body)
        except ValueError:
            raise InvalidToken(f"GET {url}: not JSON") from None

    async def _discover(self) -> str:
        url = self.issuer.issuer_url.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url)
        if not isinstance(document, dict):
            raise InvalidToken("discovery document is not a JSON object")
        if document.get("issuer") != self.issuer.issuer_url:
            raise InvalidToken(f"discovery document names issuer {document.get('issuer')!r}, "
                               f"not the configured {self.issuer.issuer_url!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("https", "http"):
            raise InvalidToken("discovery document has no usable jwks_uri")
        if urlsplit(jwks_uri).scheme == "http" and \
                urlsplit(self.issuer.issuer_url).scheme != "http":
            raise InvalidToken("discovery document points an https issuer at an http jwks_uri")
        return jwks_uri

    async def _fetch(self) -> None:
        self.attempted_at = self.clock()
        if self.jwks_uri is None:
            self.jwks_uri = await self._discover()
        self.fetches += 1
        document = await self._get_json(self.jwks_uri)
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise InvalidToken("JWKS document has no 'keys' list")
        self.keys = [k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"]
        self.fetched_at = self.clock()
        log.debug("oidc: fetched %d keys for %s", len(self.keys), self.issuer.issuer_url)

    async def refresh(self, reason: str) -> bool:
        """Fetch discovery + keys unless that was tried too recently. Returns whether a fetch
        happened; fetch errors surface as :class:`InvalidToken`."""
        async with self.lock:  # concurrent requests with the same new kid: one fetch
            now = self.clock()
            if self.attempted_at is not None and \
                    now - self.attempted_at < self.min_refresh_interval:
                return False
            log.debug("oidc: refreshing keys of %s (%s)", self.issuer.issuer_url, reason)
            try:
                await self._fetch()
            except httpx.HTTPError as exc:
                self._failed(f"{type(exc).__name__}: {exc}")
                raise InvalidToken(f"cannot fetch keys of {self.issuer.issuer_url}: "
                                   f"{type(exc).__name__}: {exc}") from None
            except InvalidToken as exc:
                self._failed(str(exc))
                raise
            return True

    def _failed(self, reason: str) -> None:
        self.jwks_uri = None  # rediscover next time: the IdP may have been fixed
        # At most once per refresh interval: the operator must learn that an IdP is unusable,
        # and a flood of tokens cannot flood the log.
        log.warning("oidc: cannot fetch the keys of %s: %s", self.issuer.issuer_url, reason)

    def candidates(self, kid: str | None, alg: str) -> list[dict[str, Any]]:
        kty = KEY_TYPES[alg]
        return [k for k in self.keys
                if k.get("kty") == kty and (kid is None or k.get("kid") == kid)
                and k.get("alg", alg) == alg]

    async def keys_for(self, kid: str | None, alg: str) -> list[dict[str, Any]]:
        now = self.clock()
        if self.fetched_at is None or now - self.fetched_at > JWKS_MAX_AGE:
            await self.refresh("no keys yet" if self.fetched_at is None else "keys are old")
        found = self.candidates(kid, alg)
        if not found and await self.refresh(f"unknown key id {kid!r}"):
            found = self.candidates(kid, alg)
        if not found:
            raise InvalidToken(f"no {alg} key with id {kid!r} in the issuer's key set")
        return found


class OidcAuthenticator:
    """:class:`~central_api.auth.authn.Authenticator` for ID tokens of configured issuers."""

    def __init__(self, issuers: list[OidcIssuer], *, jwks_min_refresh_interval: float = 10.0,
                 http_timeout: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.jwks_min_refresh_interval = jwks_min_refresh_interval
        self.http_timeout = http_timeout
        self._issuers: dict[str, _IssuerKeys] = {}
        self._verified: TokenCache[tuple[_IssuerKeys, list[dict[str, Any]], User]] = \
            TokenCache(clock)
        self.set_issuers(issuers)

    def set_issuers(self, issuers: list[OidcIssuer]) -> None:
        """Trust exactly these issuers from now on. An issuer whose settings did not change
        keeps its cached keys; a changed one starts afresh (new CA, new audience...)."""
        for issuer in issuers:
            issuer.validate()
        current = self._issuers
        self._issuers = {
            i.issuer_url: current[i.issuer_url] if i.issuer_url in current
            and current[i.issuer_url].issuer == i
            else _IssuerKeys(i, self.jwks_min_refresh_interval, self.http_timeout, self.clock)
            for i in issuers}

    @property
    def issuer_urls(self) -> set[str]:
        return set(self._issuers)

    def issuer_keys(self, issuer_url: str) -> _IssuerKeys:
        """The key cache of one issuer (for tests and diagnostics)."""
        return self._issuers[issuer_url]

    async def authenticate(self, token: str) -> User | None:
        """The token's user. A verified token is remembered (:class:`TokenCache`) for as
        long as its issuer is trusted with the same settings and its keys were not fetched
        again: :meth:`set_issuers` dropping or changing the issuer, or a new key set, ends
        it at once; otherwise it lasts seconds (:class:`TokenCache`)."""
        key = TokenCache.key(token)
        cached = self._verified.get(key)
        if cached is not None and self._still_trusted(*cached):
            return cached[2]
        if token.count(".") != 2:
            return None
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None  # not a JWT: not ours
        issuer_url = unverified.get("iss")
        state = self._issuers.get(issuer_url) if isinstance(issuer_url, str) else None
        if state is None:
            return None  # another authenticator's token (or an issuer we do not trust)
        try:
            user = await self._verify(state, token, header)
        except InvalidToken as exc:
            log.debug("oidc: refused a token from %s: %s", issuer_url, exc)
            raise
        self._verified.put(key, (state, state.keys, user), float(unverified["exp"]) + LEEWAY)
        return user

    def _still_trusted(self, state: _IssuerKeys, keys: list[dict[str, Any]], _: User) -> bool:
        """The issuer is trusted with the same settings and its key set was not fetched
        again since (a fetch is how a withdrawn key is learnt)."""
        return self._issuers.get(state.issuer.issuer_url) is state and state.keys is keys

    async def _verify(self, state: _IssuerKeys, token: str, header: dict[str, Any]) -> User:
        issuer = state.issuer
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken(f"algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("kid is not a string")
        claims: dict[str, Any] | None = None
        last_error = "no key"
        for jwk in await state.keys_for(kid, alg):
            try:
                key = jwt.PyJWK(jwk, algorithm=alg)
            except jwt.PyJWTError as exc:
                last_error = f"unusable key {jwk.get('kid')!r}: {exc}"
                continue
            try:
                claims = jwt.decode(
                    token, key=key, algorithms=[alg], audience=issuer.audience,
                    issuer=issuer.issuer_url, leeway=LEEWAY,
                    options={"require": ["iss", "aud", "exp", "iat"], "verify_signature": True,
                             "verify_exp": True, "verify_nbf": True, "verify_iat": True,
                             "verify_aud": True, "verify_iss": True})
                break
            except jwt.InvalidSignatureError:
                last_error = "signature does not verify"
            except jwt.PyJWTError as exc:
                raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
        if claims is None:
            raise InvalidToken(last_error)
        if claims["iat"] > self.clock() + LEEWAY:  # PyJWT < 2.10 does not check this
            raise InvalidToken("token issued in the future (iat)")
        return self._user(issuer, claims)

    @staticmethod
    def _user(issuer: OidcIssuer, claims: dict[str, Any]) -> User:
        for name, expected in issuer.required_claims.items():
            if claims.get(name) != expected:
                raise InvalidToken(f"required claim {name!r} does not have the required value")
        username = claims.get(issuer.username_claim)
        if not isinstance(username, str) or not username:
            raise InvalidToken(f"username claim {issuer.username_claim!r} is missing or not a "
                               f"string")
        if issuer.username_claim == "email" and claims.get("email_verified", True) is not True:
            raise InvalidToken("email is not verified (email_verified is not true)")
        username = issuer.username_prefix + username
        if username.startswith(RESERVED_PREFIXES):
            raise InvalidToken(f"username {username!r} uses a reserved prefix")
        raw_groups = claims.get(issuer.groups_claim, [])
        if isinstance(raw_groups, str):
            raw_groups = [raw_groups]
        if not isinstance(raw_groups, list) or not all(isinstance(g, str) for g in raw_groups):
            raise InvalidToken(f"groups claim {issuer.groups_claim!r} is not a list of strings")
        groups: list[str] = []
        for group in raw_groups:
            group = issuer.groups_prefix + group
            if group.startswith(RESERVED_PREFIXES):
                log.warning("oidc: dropped reserved group %r of %s from %s", group, username,
                            issuer.issuer_url)
                continue
            if group not in groups:
                groups.append(group)
        return User(username, tuple(groups), uid=str(claims.get("sub", "")))
