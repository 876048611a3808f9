"""Service account tokens: what kube's bound tokens guarantee must hold here too.

A token authenticates only while it is unexpired, meant for us (audience), signed by one of our
keys with ES256, and its ServiceAccount still exists with the same uid; anything else is
refused with ``InvalidToken``, while JWTs of other issuers are left to other authenticators.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from central_api.auth.authn import AuthenticatorChain, InvalidToken
from central_api.auth.serviceaccounts import (
    CREDENTIAL_ID,
    MAX_EXPIRATION_SECONDS,
    ServiceAccountAuthenticator,
    SigningKeys,
    TokenIssuer,
    key_id,
    openid_configuration,
    parse_token_request,
    token_request_response,
)
from central_api.machinery.errors import ApiError
from central_api.machinery.user import User

ISSUER = "https://central.example:6443"
AUDIENCES = [ISSUER]
UID = "0b6c8f5e-3f0c-4a0e-9d59-3c2f2b7f1a11"


@pytest.fixture
def keys(tmp_path: Path) -> SigningKeys:
    return SigningKeys.load_or_create(tmp_path)


class Accounts:
    """A fake ServiceAccount store: (namespace, name) -> uid."""

    def __init__(self) -> None:
        self.uids: dict[tuple[str, str], str] = {("team-a", "deployer"): UID}

    def lookup(self, namespace: str, name: str) -> str | None:
        return self.uids.get((namespace, name))


def authenticator(keys: SigningKeys, accounts: Accounts, clock: float | None = None,
                  audiences: list[str] | None = None) -> ServiceAccountAuthenticator:
    return ServiceAccountAuthenticator(keys, ISSUER, audiences or AUDIENCES, accounts.lookup,
                                       clock=(lambda: clock) if clock is not None else time.time)


def issue(keys: SigningKeys, audiences: list[str] | None = None, seconds: int = 3600,
          now: datetime | None = None) -> str:
    token, _ = TokenIssuer(keys, ISSUER).issue("team-a", "deployer", UID,
                                               audiences or AUDIENCES, seconds, now)
    return token


def authenticate(auth: ServiceAccountAuthenticator, token: str) -> User | None:
    return asyncio.run(auth.authenticate(token))


def rejected(auth: ServiceAccountAuthenticator, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        authenticate(auth, token)
    assert token not in str(caught.value)
    return str(caught.value)


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unb64(part: str) -> dict[str, object]:
    result = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert isinstance(result, dict)
    return result


# --- round trip -------------------------------------------------------------------------------

def test_issued_token_authenticates_as_the_service_account(keys: SigningKeys) -> None:
    user = authenticate(authenticator(keys, Accounts()), issue(keys))
    assert user is not None
    assert user.name == "system:serviceaccount:team-a:deployer"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team-a")
    assert user.uid == UID
    assert user.extra[CREDENTIAL_ID][0].startswith("JTI=")


def test_claims_and_header_look_like_kube(keys: SigningKeys) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    token, expiry = TokenIssuer(keys, ISSUER).issue("team-a", "deployer", UID, ["a", "b"],
                                                    900, now=now)
    header, payload, _ = token.split(".")
    assert unb64(header)["alg"] == "ES256"
    assert unb64(header)["kid"] == keys.signing_kid
    claims = unb64(payload)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "system:serviceaccount:team-a:deployer"
    assert claims["aud"] == ["a", "b"]
    assert claims["iat"] == claims["nbf"] == int(now.timestamp())
    assert claims["exp"] == int(now.timestamp()) + 900
    assert expiry == now + timedelta(seconds=900)
    assert claims["kubernetes.io"] == {"namespace": "team-a",
                                       "serviceaccount": {"name": "deployer", "uid": UID}}
    assert claims["jti"] != unb64(issue(keys).split(".")[1])["jti"]


def test_chain_adds_authenticated_group(keys: SigningKeys) -> None:
    chain = AuthenticatorChain([authenticator(keys, Accounts())])
    user = asyncio.run(chain.authenticate(f"Bearer {issue(keys)}"))
    assert user is not None and "system:authenticated" in user.groups


def test_async_lookup_is_awaited(keys: SigningKeys) -> None:
    async def lookup(namespace: str, name: str) -> str | None:
        return UID

    auth = ServiceAccountAuthenticator(keys, ISSUER, AUDIENCES, lookup)
    assert authenticate(auth, issue(keys)) is not None


# --- refusals ---------------------------------------------------------------------------------

def test_expired_token_is_rejected(keys: SigningKeys) -> None:
    issued = datetime.now(UTC) - timedelta(hours=2)
    assert "expired" in rejected(authenticator(keys, Accounts()), issue(keys, now=issued))


def test_expiry_has_a_small_leeway(keys: SigningKeys) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    token = issue(keys, seconds=600, now=now)
    end = now.timestamp() + 600
    assert authenticate(authenticator(keys, Accounts(), clock=end + 30), token) is not None
    rejected(authenticator(keys, Accounts(), clock=end + 120), token)


def test_not_yet_valid_token_is_rejected(keys: SigningKeys) -> None:
    future = datetime.now(UTC) + timedelta(hours=1)
    assert "not valid yet" in rejected(authenticator(keys, Accounts()),
                                       issue(keys, now=future))


def test_wrong_audience_is_rejected(keys: SigningKeys) -> None:
    message = rejected(authenticator(keys, Accounts()), issue(keys, audiences=["vault"]))
    assert "audience" in message


def test_any_accepted_audience_is_enough(keys: SigningKeys) -> None:
    auth = authenticator(keys, Accounts(), audiences=["api", "other"])
    assert authenticate(auth, issue(keys, audiences=["vault", "other"])) is not None


def test_other_issuer_is_not_ours(keys: SigningKeys) -> None:
    token, _ = TokenIssuer(keys, "https://other.example").issue("team-a", "deployer", UID,
                                                               AUDIENCES, 3600)
    assert authenticate(authenticator(keys, Accounts()), token) is None


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "not-a-jwt-at-all" * 10, "a.W10.c",
                                   "a.\u00e9\u00e9.c", "a.__8.c", "a.b.c.d"])
def test_non_jwt_is_not_ours(keys: SigningKeys, token: str) -> None:
    assert authenticate(authenticator(keys, Accounts()), token) is None


def test_tampered_payload_is_rejected(keys: SigningKeys) -> None:
    header, payload, signature = issue(keys).split(".")
    claims = unb64(payload)
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    claims["kubernetes.io"] = {"namespace": "kube-system",
                               "serviceaccount": {"name": "admin", "uid": UID}}
    forged = ".".join([header, b64(claims), signature])
    assert "signature" in rejected(authenticator(keys, Accounts()), forged)


def test_token_of_another_key_is_rejected(keys: SigningKeys, tmp_path: Path) -> None:
    other = SigningKeys.load_or_create(tmp_path / "elsewhere")
    assert "unknown key" in rejected(authenticator(keys, Accounts()), issue(other))


def test_another_key_claiming_our_kid_is_rejected(keys: SigningKeys) -> None:
    claims = unb64(issue(keys).split(".")[1])
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                        headers={"kid": keys.signing_kid})
    assert "signature" in rejected(authenticator(keys, Accounts()), forged)


def test_token_without_kid_is_checked_against_every_key(keys: SigningKeys) -> None:
    claims = unb64(issue(keys).split(".")[1])
    token = jwt.encode(claims, keys.signing_key, algorithm="ES256")
    assert authenticate(authenticator(keys, Accounts()), token) is not None
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    rejected(authenticator(keys, Accounts()), forged)


def test_alg_none_is_rejected(keys: SigningKeys) -> None:
    claims = unb64(issue(keys).split(".")[1])
    unsigned = ".".join([b64({"alg": "none", "typ": "JWT"}), b64(claims), ""])
    assert "algorithm" in rejected(authenticator(keys, Accounts()), unsigned)


def test_hs256_with_the_public_key_as_secret_is_rejected(keys: SigningKeys) -> None:
    claims = unb64(issue(keys).split(".")[1])
    public_pem = keys.signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64({"alg": "HS256", "typ": "JWT", "kid": keys.signing_kid})
    signing_input = f"{header}.{b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert "algorithm" in rejected(authenticator(keys, Accounts()), forged)


def test_es256_algorithm_confusion_with_other_ec_alg_is_rejected(keys: SigningKeys) -> None:
    claims = unb64(issue(keys).split(".")[1])
    token = jwt.encode(claims, ec.generate_private_key(ec.SECP384R1()), algorithm="ES384",
                       headers={"kid": keys.signing_kid})
    rejected(authenticator(keys, Accounts()), token)


def test_deleted_service_account_revokes_its_tokens(keys: SigningKeys) -> None:
    accounts = Accounts()
    token = issue(keys)
    del accounts.uids[("team-a", "deployer")]
    assert "no longer exists" in rejected(authenticator(keys, accounts), token)


def test_recreated_service_account_revokes_old_tokens(keys: SigningKeys) -> None:
    accounts = Accounts()
    token = issue(keys)
    accounts.uids[("team-a", "deployer")] = "a-new-uid"
    assert "re-created" in rejected(authenticator(keys, accounts), token)


def test_subject_must_match_the_kube_claim(keys: SigningKeys) -> None:
    claims = unb64(issue(keys).split(".")[1])
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    token = jwt.encode(claims, keys.signing_key, algorithm="ES256",
                       headers={"kid": keys.signing_kid})
    assert "subject" in rejected(authenticator(keys, Accounts()), token)


# --- keys -------------------------------------------------------------------------------------

def test_key_files_are_private(keys: SigningKeys, tmp_path: Path) -> None:
    directory = tmp_path / "sa-signing"
    keys.rotate()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(directory.glob("*.pem"))
    assert {p.stem for p in files} == set(keys.kids)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)


def test_kid_is_base64url_sha256_of_the_public_key(keys: SigningKeys) -> None:
    kid = keys.signing_kid
    assert kid == key_id(keys.signing_key.public_key())
    assert len(kid) == 43 and "=" not in kid and "+" not in kid and "/" not in kid


def test_keys_survive_a_restart(keys: SigningKeys, tmp_path: Path) -> None:
    token = issue(keys)
    reloaded = SigningKeys.load_or_create(tmp_path)
    assert reloaded.kids == keys.kids
    assert authenticate(authenticator(reloaded, Accounts()), token) is not None


def test_rotation_signs_with_the_new_key_and_keeps_old_tokens_valid(
        keys: SigningKeys, tmp_path: Path) -> None:
    old_kid, old_token = keys.signing_kid, issue(keys)
    new_kid = keys.rotate()
    assert keys.signing_kid == new_kid != old_kid
    new_token = issue(keys)
    assert unb64(new_token.split(".")[0])["kid"] == new_kid
    reloaded = SigningKeys.load_or_create(tmp_path)
    assert reloaded.signing_kid == new_kid
    auth = authenticator(reloaded, Accounts())
    assert authenticate(auth, old_token) is not None
    assert authenticate(auth, new_token) is not None


def test_removing_an_old_key_revokes_its_tokens(keys: SigningKeys, tmp_path: Path) -> None:
    old_kid, old_token = keys.signing_kid, issue(keys)
    keys.rotate()
    keys.remove(old_kid)
    assert not (tmp_path / "sa-signing" / f"{old_kid}.pem").exists()
    rejected(authenticator(keys, Accounts()), old_token)
    with pytest.raises(ValueError):
        keys.remove(keys.signing_kid)


def test_non_p256_key_file_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "sa-signing"
    directory.mkdir()
    key = ec.generate_private_key(ec.SECP384R1())
    (directory / "x.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ValueError, match="P-256"):
        SigningKeys.load_or_create(tmp_path)


def test_jwks_verifies_our_tokens(keys: SigningKeys) -> None:
    keys.rotate()
    document = keys.jwks()
    assert [k["kid"] for k in document["keys"]] == keys.kids
    assert all("d" not in k for k in document["keys"])  # no private parts
    token = issue(keys)
    jwk = jwt.PyJWKSet.from_dict(document)[keys.signing_kid]
    claims = jwt.decode(token, jwk.key, algorithms=["ES256"], audience=ISSUER, issuer=ISSUER)
    assert claims["sub"] == "system:serviceaccount:team-a:deployer"


def test_openid_configuration() -> None:
    config = openid_configuration(ISSUER + "/")
    assert config["issuer"] == ISSUER + "/"
    assert config["jwks_uri"] == ISSUER + "/openid/v1/jwks"
    assert config["id_token_signing_alg_values_supported"] == ["ES256"]
    assert config["response_types_supported"] == ["id_token"]
    assert openid_configuration(ISSUER, "https://cdn.example/jwks")["jwks_uri"] == \
        "https://cdn.example/jwks"


# --- TokenRequest -----------------------------------------------------------------------------

def request(spec: dict[str, object] | None = None) -> dict[str, object]:
    body: dict[str, object] = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}
    if spec is not None:
        body["spec"] = spec
    return body


def test_token_request_defaults() -> None:
    assert parse_token_request(request(), AUDIENCES) == (AUDIENCES, 3600)
    assert parse_token_request(request({"audiences": []}), AUDIENCES) == (AUDIENCES, 3600)
    assert parse_token_request({}, AUDIENCES) == (AUDIENCES, 3600)


def test_token_request_values() -> None:
    spec = {"audiences": ["vault", "vault", "s3"], "expirationSeconds": 600}
    assert parse_token_request(request(spec), AUDIENCES) == (["vault", "s3"], 600)


def test_token_request_too_long_is_capped() -> None:
    _, seconds = parse_token_request(request({"expirationSeconds": 10**8}), AUDIENCES)
    assert seconds == MAX_EXPIRATION_SECONDS == 48 * 3600


@pytest.mark.parametrize(("spec", "field"), [
    ({"expirationSeconds": 599}, "spec.expirationSeconds"),
    ({"expirationSeconds": -1}, "spec.expirationSeconds"),
    ({"expirationSeconds": "3600"}, "spec.expirationSeconds"),
    ({"expirationSeconds": True}, "spec.expirationSeconds"),
    ({"expirationSeconds": 1.5e3}, "spec.expirationSeconds"),
    ({"expirationSeconds": 2**33}, "spec.expirationSeconds"),
    ({"audiences": "vault"}, "spec.audiences"),
    ({"audiences": ["ok", ""]}, "spec.audiences[1]"),
    ({"audiences": [3]}, "spec.audiences[0]"),
    ({"boundObjectRef": {"kind": "Pod", "name": "p"}}, "spec.boundObjectRef"),
])
def test_token_request_invalid(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_token_request(request(spec), AUDIENCES, name="deployer")
    error = caught.value
    assert error.code == 422 and error.reason == "Invalid"
    assert [c.field for c in error.causes] == [field]
    assert 'TokenRequest.authentication.k8s.io "deployer" is invalid' in error.message


def test_token_request_too_short_message_matches_kube() -> None:
    with pytest.raises(ApiError, match="may not specify a duration less than 10 minutes"):
        parse_token_request(request({"expirationSeconds": 60}), AUDIENCES)


def test_bound_object_ref_is_explained() -> None:
    with pytest.raises(ApiError) as caught:
        parse_token_request(request({"boundObjectRef": {"kind": "Pod"}}), AUDIENCES)
    assert caught.value.causes[0].reason == "FieldValueNotSupported"
    assert "not supported" in caught.value.message


@pytest.mark.parametrize("body", [[], "x", {"apiVersion": "v1", "kind": "Pod"}])
def test_token_request_of_the_wrong_shape_is_bad_request(body: object) -> None:
    with pytest.raises(ApiError) as caught:
        parse_token_request(body, AUDIENCES)
    assert caught.value.code == 400


def test_token_request_response_is_what_kubectl_prints(keys: SigningKeys) -> None:
    now = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    token, expiry = TokenIssuer(keys, ISSUER).issue("team-a", "deployer", UID, AUDIENCES,
                                                    3600, now=now)
    body = token_request_response("deployer", "team-a", AUDIENCES, 3600, token, expiry)
    assert body["kind"] == "TokenRequest"
    assert body["apiVersion"] == "authentication.k8s.io/v1"
    assert body["metadata"]["name"] == "deployer"
    assert body["metadata"]["namespace"] == "team-a"
    assert body["spec"] == {"audiences": AUDIENCES, "expirationSeconds": 3600,
                            "boundObjectRef": None}
    assert body["status"] == {"token": token, "expirationTimestamp": "2030-01-01T13:00:00Z"}
