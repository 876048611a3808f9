"""ServiceAccount tokens, like Kubernetes' bound tokens from the TokenRequest API.

A token is an ES256-signed JWT with kube's claims, so anything that verifies kube service
account tokens (OIDC discovery + JWKS, e.g. a cloud's workload-identity federation) verifies
ours. Tokens are *bound* to the ServiceAccount's uid: every authentication looks the account
up, so deleting (or deleting and re-creating) the account revokes its tokens at once, without a
revocation list.

Signing keys live in ``DATA_DIR/sa-signing/<kid>.pem`` (0600, directory 0700). The newest key
signs; every key present verifies, so a rotation never invalidates tokens already handed out —
an old key is removed only once its tokens have expired.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..machinery.errors import ApiError, Cause, bad_request, invalid
from ..machinery.files import write_private
from ..machinery.user import MASTERS, User
from .authn import InvalidToken, TokenCache
from .rbac import compact_rules, compact_string, covers

ALGORITHM = "ES256"
SIGNING_DIR = "sa-signing"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
KUBE_CLAIM = "kubernetes.io"
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
LEEWAY_SECONDS = 60
"""Clock skew tolerated on ``exp``/``nbf``, as kube-apiserver's one minute."""

DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 48 * 3600
"""Longer requests are silently shortened, like ``--service-account-max-token-expiration``."""
HARD_MAX_EXPIRATION_SECONDS = 1 << 32
"""Beyond this kube refuses the request instead of shortening it."""

AUTHENTICATION_API_VERSION = "authentication.k8s.io/v1"
AUTHENTICATION_GROUP = "authentication.k8s.io"
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
JWKS_CONTENT_TYPE = "application/jwk-set+json"
DISCOVERY_CACHE_CONTROL = "public, max-age=3600"

UidLookup = Callable[[str, str], "str | None | Awaitable[str | None]"]


# --- signing keys -----------------------------------------------------------------------------

def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """kube's key id: unpadded base64url SHA-256 of the PKIX DER public key, so a kid is stable
    across restarts and replicas that share a key, and says nothing secret."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64url(hashlib.sha256(der).digest())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path}: service account signing keys must be EC P-256 (ES256)")
    return key


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class SigningKeys:
    """The ES256 keys: the last one signs, all of them verify.

    Order on disk is the files' modification time (``rotate`` makes the new file strictly the
    newest), so an operator can also rotate by dropping a new ``.pem`` into the directory.
    """

    def __init__(self, keys: list[ec.EllipticCurvePrivateKey],
                 directory: Path | None = None) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.directory = directory
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._public: dict[str, ec.EllipticCurvePublicKey] = {}
        for key in keys:  # oldest first; re-inserting a duplicate keeps the first position
            self._keys.setdefault(key_id(key.public_key()), key)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> SigningKeys:
        """Load ``data_dir/sa-signing/*.pem``, creating the directory and a first key if none."""
        directory = Path(data_dir) / SIGNING_DIR
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        paths = sorted(directory.glob("*.pem"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        keys = [_load_key(path) for path in paths]
        if keys:
            return cls(keys, directory)
        created = cls([ec.generate_private_key(ec.SECP256R1())], directory)
        created._write(created.signing_kid)
        return created

    @property
    def signing_kid(self) -> str:
        return next(reversed(self._keys))

    @property
    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        return self._keys[self.signing_kid]

    @property
    def kids(self) -> list[str]:
        """Key ids, oldest first."""
        return list(self._keys)

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """Derived once per key: deriving it costs more than a remembered token's check."""
        key = self._keys.get(kid)
        if key is None:
            return None
        public = self._public.get(kid)
        if public is None:
            public = self._public[kid] = key.public_key()
        return public

    def public_keys(self) -> list[tuple[str, ec.EllipticCurvePublicKey]]:
        return [(kid, key.public_key()) for kid, key in self._keys.items()]

    def rotate(self) -> str:
        """Add a new signing key (persisted when loaded from disk) and return its kid."""
        key = ec.generate_private_key(ec.SECP256R1())
        kid = key_id(key.public_key())
        self._keys[kid] = key
        self._write(kid)
        return kid

    def remove(self, kid: str) -> None:
        """Stop trusting ``kid`` (its tokens stop verifying); the last key cannot go."""
        if kid not in self._keys:
            raise KeyError(kid)
        if len(self._keys) == 1:
            raise ValueError("cannot remove the only service account signing key")
        del self._keys[kid]
        self._public.pop(kid, None)
        if self.directory is not None:
            (self.directory / f"{kid}.pem").unlink(missing_ok=True)

    def _write(self, kid: str) -> None:
        if self.directory is None:
            return
        newest = max((p.stat().st_mtime_ns for p in self.directory.glob("*.pem")), default=0)
        path = self.directory / f"{kid}.pem"
        write_private(path, _pem(self._keys[kid]))
        # a full second past the previous newest survives coarse file-system timestamps
        stamp = max(time.time_ns(), newest + 1_000_000_000)
        os.utime(path, ns=(stamp, stamp))

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set of every verifying key (what ``/openid/v1/jwks`` serves)."""
        return {"keys": [_jwk(kid, pub) for kid, pub in self.public_keys()]}


def _jwk(kid: str, public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {"use": "sig", "kty": "EC", "kid": kid, "crv": "P-256", "alg": ALGORITHM,
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big"))}


# --- issuing ----------------------------------------------------------------------------------

def service_account_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


class TokenIssuer:
    """Signs bound service account tokens with the newest key."""

    def __init__(self, keys: SigningKeys, issuer: str) -> None:
        self.keys = keys
        self.issuer = issuer

    def issue(self, namespace: str, name: str, uid: str, audiences: list[str],
              expiration_seconds: int, now: datetime | None = None) -> tuple[str, datetime]:
        """A token for ServiceAccount ``namespace/name`` (``uid``) and its expiry time."""
        if not audiences or expiration_seconds <= 0:
            raise ValueError("a token needs an audience and a positive lifetime")
        issued = int((now or datetime.now(UTC)).timestamp())
        expires = issued + int(expiration_seconds)
        claims = {
            "iss": self.issuer, "sub": service_account_username(namespace, name),
            "aud": list(audiences), "exp": expires, "iat": issued, "nbf": issued,
            "jti": str(uuid.uuid4()),
            KUBE_CLAIM: {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        }
        token = jwt.encode(claims, self.keys.signing_key, algorithm=ALGORITHM,
                           headers={"kid": self.keys.signing_kid})
        return token, datetime.fromtimestamp(expires, UTC)


# --- verifying --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Verified:
    """What a verified token says: the account (namespace, name, uid), its ``jti`` and the
    id of the key it was signed with."""

    namespace: str
    name: str
    uid: str
    jti: object
    kid: str


class ServiceAccountAuthenticator:
    """Authenticates our service account tokens; ignores JWTs of other issuers (OIDC)."""

    def __init__(self, keys: SigningKeys, issuer: str, audiences: list[str],
                 lookup: UidLookup, clock: Callable[[], float] = time.time) -> None:
        """``lookup(namespace, name)`` returns the ServiceAccount's current uid or None; it may
        be a coroutine function. ``clock`` is injectable for tests."""
        self.keys = keys
        self.issuer = issuer
        self.audiences = frozenset(audiences)
        self.lookup = lookup
        self.clock = clock
        self._verified: TokenCache[_Verified] = TokenCache(clock)

    async def authenticate(self, token: str) -> User | None:
        """The account's user. The signature and claims of a token are verified once per
        :class:`TokenCache` period (while its key is still trusted); whether the account
        still exists with the token's uid is asked on every request, so deleting it
        revokes its tokens from the next request on."""
        key = TokenCache.key(token)
        account = self._verified.get(key)
        if account is None or self.keys.public_key(account.kid) is None:
            claims = _unverified_claims(token)
            if claims is None or claims.get("iss") != self.issuer:
                return None  # not a JWT, or another issuer's: let the next authenticator try
            account = self._verify(token, key)
        namespace, name, uid = account.namespace, account.name, account.uid
        current = self.lookup(namespace, name)
        if inspect.isawaitable(current):
            current = await current
        if current is None:
            raise InvalidToken(f"service account {namespace}/{name} no longer exists")
        if current != uid:
            raise InvalidToken(f"service account {namespace}/{name} was re-created "
                               "(uid differs)")
        return _user(namespace, name, uid, account.jti)

    def _verify(self, token: str, key: bytes) -> _Verified:
        """Signature, times, audience and the account claim; kept in the cache when the
        token names its key (the key's removal must revoke it)."""
        claims = self._verified_claims(token)
        kid = _text(jwt.get_unverified_header(token).get("kid"))  # parsed: it verified
        self._check_times(claims)
        self._check_audience(claims)
        namespace, name, uid = _service_account(claims)
        verified = _Verified(namespace, name, uid, claims.get("jti"), kid)
        if kid:
            self._verified.put(key, verified, float(claims["exp"]) + LEEWAY_SECONDS)
        return verified

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token header: {exc}") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"unsupported token algorithm {str(header.get('alg'))[:20]!r}")
        kid = header.get("kid")
        if kid is None:
            candidates = [pub for _, pub in self.keys.public_keys()]
        else:
            pub = self.keys.public_key(kid) if isinstance(kid, str) else None
            if pub is None:
                raise InvalidToken("token signed with an unknown key id")
            candidates = [pub]
        return _decode_with_any(token, candidates)

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        exp, nbf = _number(claims.get("exp")), _number(claims.get("nbf", claims.get("iat")))
        if exp is None:
            raise InvalidToken("token has no valid exp claim")
        if now > exp + LEEWAY_SECONDS:
            raise InvalidToken("token has expired")
        if nbf is not None and now < nbf - LEEWAY_SECONDS:
            raise InvalidToken("token is not valid yet")

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        aud = claims.get("aud")
        given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not self.audiences.intersection(a for a in given if isinstance(a, str)):
            raise InvalidToken("token audience is not accepted by this server")


def _unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a compact JWS, unverified, only to see whose token it is: None when
    ``token`` is not a JWT at all."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError included
        return None
    return claims if isinstance(claims, dict) else None


def _decode_with_any(token: str, keys: list[ec.EllipticCurvePublicKey]) -> dict[str, Any]:
    """Verify the signature only (ES256 pinned); the claims are checked by the caller against
    its own clock."""
    reason = "no verification key"
    for key in keys:
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={
                "verify_signature": True, "verify_exp": False, "verify_nbf": False,
                "verify_iat": False, "verify_aud": False, "verify_iss": False})
        except jwt.InvalidSignatureError:
            reason = "signature verification failed"
            continue
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        return claims
    raise InvalidToken(reason)


def _number(value: object) -> float | None:
    """A NumericDate claim; a missing or non-numeric one is None (bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _service_account(claims: Mapping[str, Any]) -> tuple[str, str, str]:
    """(namespace, name, uid) from the ``kubernetes.io`` claim, consistent with ``sub``."""
    kube = claims.get(KUBE_CLAIM)
    account = kube.get("serviceaccount") if isinstance(kube, dict) else None
    if not isinstance(kube, dict) or not isinstance(account, dict):
        raise InvalidToken("token lacks the kubernetes.io service account claim")
    namespace, name, uid = (_text(kube.get("namespace")), _text(account.get("name")),
                            _text(account.get("uid")))
    if not (namespace and name and uid):
        raise InvalidToken("token has an incomplete kubernetes.io claim")
    if claims.get("sub") != service_account_username(namespace, name):
        raise InvalidToken("token subject does not match its service account claim")
    return namespace, name, uid


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _user(namespace: str, name: str, uid: str, jti: object) -> User:
    extra: dict[str, tuple[str, ...]] = {}
    if isinstance(jti, str) and jti:
        extra[CREDENTIAL_ID] = (f"JTI={jti}",)
    return User(service_account_username(namespace, name),
                (SA_GROUP, f"{SA_GROUP}:{namespace}"), uid, extra)


# --- the TokenRequest API ---------------------------------------------------------------------

Rules = list[dict[str, Any]]


def token_escalation(held: Callable[[User, str], Rules], requester: User, namespace: str,
                     name: str) -> str | None:
    """Why ``requester`` may not mint a token of ServiceAccount ``namespace/name``, or None.

    A token acts as its account, so minting one grants the account's rights: like binding a
    role, it is allowed only to whom already holds every right the account holds, in the
    account's namespace and cluster-wide (``held(user, namespace)``; "" is cluster-wide).
    Without this, a member who may create tokens minted one of a tenant-admin ServiceAccount
    and bound itself tenant-admin."""
    if MASTERS in requester.groups:
        return None
    account = _user(namespace, name, "", None).with_authenticated()
    missing: Rules = []
    for scope in (namespace, ""):
        missing += covers(held(requester, scope), held(account, scope))[1]
    if not missing:
        return None
    lines = sorted({compact_string(rule) for rule in compact_rules(missing)})
    return (f'user "{requester.name}" may not request a token of service account '
            f'"{namespace}/{name}": the account holds permissions the user does not:\n'
            + "\n".join(lines))


def parse_token_request(body: Any, default_audiences: list[str],
                        name: str = "") -> tuple[list[str], int]:
    """Validate a ``TokenRequest`` body like kube: (audiences, expirationSeconds to use).

    Audiences default to the server's; the lifetime defaults to an hour, below ten minutes is
    refused and above 48 hours is silently shortened (kube's max-token-expiration behaviour).
    ``name`` is the ServiceAccount's, used in the 422 message.
    """
    if not isinstance(body, dict):
        raise bad_request("a TokenRequest body must be a JSON object")
    _check_kind(body)
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise _invalid(name, "spec", "must be an object")
    if spec.get("boundObjectRef") is not None:
        raise _invalid(name, "spec.boundObjectRef", "binding a token to a Pod or Secret is "
                       "not supported; tokens are bound to the ServiceAccount only",
                       "FieldValueNotSupported")
    return _audiences(spec, default_audiences, name), _expiration(spec, name)


def _check_kind(body: Mapping[str, Any]) -> None:
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if api_version not in (None, "", AUTHENTICATION_API_VERSION) or \
            kind not in (None, "", "TokenRequest"):
        raise bad_request(f"expected {AUTHENTICATION_API_VERSION} TokenRequest, got "
                          f"{str(api_version)[:60]} {str(kind)[:60]}")


def _audiences(spec: Mapping[str, Any], default: list[str], name: str) -> list[str]:
    audiences = spec.get("audiences")
    if audiences is None or audiences == []:
        return list(default)
    if not isinstance(audiences, list):
        raise _invalid(name, "spec.audiences", "must be a list of strings")
    for index, audience in enumerate(audiences):
        if not isinstance(audience, str) or not audience:
            raise _invalid(name, f"spec.audiences[{index}]", "must be a non-empty string")
    return list(dict.fromkeys(audiences))


def _expiration(spec: Mapping[str, Any], name: str) -> int:
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        return DEFAULT_EXPIRATION_SECONDS
    field = "spec.expirationSeconds"
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise _invalid(name, field, "must be an integer")
    if seconds < MIN_EXPIRATION_SECONDS:
        raise _invalid(name, field, "may not specify a duration less than 10 minutes")
    if seconds > HARD_MAX_EXPIRATION_SECONDS:
        raise _invalid(name, field, "may not specify a duration larger than 2^32 seconds")
    return min(seconds, MAX_EXPIRATION_SECONDS)


def _invalid(name: str, field: str, message: str,
             reason: str = "FieldValueInvalid") -> ApiError:
    return invalid("TokenRequest", name, [Cause(field, message, reason)],
                   group=AUTHENTICATION_GROUP)


def token_request_response(name: str, namespace: str, audiences: list[str],
                           expiration_seconds: int, token: str,
                           expiry: datetime) -> dict[str, Any]:
    """The TokenRequest object answered to ``POST .../serviceaccounts/<name>/token``; kubectl
    create token prints its ``status.token``."""
    return {
        "kind": "TokenRequest", "apiVersion": AUTHENTICATION_API_VERSION,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {"audiences": list(audiences), "expirationSeconds": expiration_seconds,
                 "boundObjectRef": None},
        "status": {"token": token, "expirationTimestamp": _rfc3339(expiry)},
    }


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- issuer discovery -------------------------------------------------------------------------

def openid_configuration(issuer: str, jwks_uri: str | None = None) -> dict[str, Any]:
    """kube's ServiceAccountIssuerDiscovery document: lets an external system find our JWKS
    and verify our tokens. ``jwks_uri`` defaults to ``<issuer>/openid/v1/jwks``."""
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri or issuer.rstrip("/") + JWKS_PATH,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
    }
