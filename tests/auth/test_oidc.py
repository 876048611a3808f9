"""OIDC ID-token authentication against a real OpenID provider (Node.js oidc-provider).

The accepted tokens come from real device-flow logins. Refused tokens are crafted with PyJWT:
most are signed with a key the provider itself publishes (see ``OidcProvider.test_key``), so
the signature is valid and the refusal is about the one claim under test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from central_api.auth.authn import AuthenticatorChain, InvalidToken
from central_api.auth.oidc import (
    OidcAuthenticator,
    OidcConfigError,
    OidcIssuer,
    load_oidc_config,
)
from central_api.machinery.user import User
from tests.auth.conftest import start_provider
from tests.oidc import CLIENT_ID, ES256_CLIENT_ID, OidcProvider, device_login

slow = pytest.mark.slow


def authenticate(authenticator: OidcAuthenticator, token: str) -> User | None:
    return asyncio.run(authenticator.authenticate(token))


def refused(authenticator: OidcAuthenticator, token: str) -> str:
    """Assert the token is refused as invalid; the reason."""
    with pytest.raises(InvalidToken) as info:
        authenticate(authenticator, token)
    return str(info.value)


def claims_for(provider: OidcProvider, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": CLIENT_ID, "sub": "carol", "iat": now,
              "exp": now + 300, "email": "carol@acme.example", "email_verified": True,
              "groups": ["acme-devs"]}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                     b64(signature)])


@pytest.fixture
def auth(oidc_provider: OidcProvider) -> OidcAuthenticator:
    """Trusts the session provider (email usernames, prefixes) and a second, unreachable
    issuer; a short refresh interval keeps rotation tests fast."""
    return OidcAuthenticator([
        OidcIssuer(oidc_provider.issuer, CLIENT_ID, username_claim="email",
                   username_prefix="acme:", groups_prefix="acme:"),
        OidcIssuer("http://127.0.0.1:9", CLIENT_ID),
    ], jwks_min_refresh_interval=10.0)


# --- configuration --------------------------------------------------------------------------


def test_config_file_loads_with_defaults_and_relative_ca(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here")
    path = tmp_path / "oidc.yaml"
    path.write_text("""
issuers:
- issuer: https://login.acme.example/realms/acme
  audience: scs-cli
  usernameClaim: email
  usernamePrefix: "acme:"
  groupsPrefix: "acme:"
  caFile: ca.pem
  requiredClaims: {hd: acme.example}
- issuer: http://127.0.0.1:5556
  clientID: other
""")
    first, second = load_oidc_config(path)
    assert first == OidcIssuer("https://login.acme.example/realms/acme", "scs-cli", "email",
                               "acme:", "groups", "acme:", tmp_path / "ca.pem",
                               {"hd": "acme.example"})
    assert second == OidcIssuer("http://127.0.0.1:5556", "other")


@pytest.mark.parametrize(("text", "message"), [
    ("issuers: [", "not valid YAML"),
    ("{}", "non-empty list"),
    ("- just a string", "expected a mapping"),
    ("- {issuer: https://a.example, audience: x, usernameclaim: email}", "unknown keys"),
    ("- {issuer: https://a.example}", "audience is required"),
    ("- {audience: x}", "issuer is required"),
    ("- {issuer: http://idp.example, audience: x}", "plain http is only allowed"),
    ("- {issuer: 'https://a.example?x=1', audience: x}", "query"),
    ("- {issuer: https://a.example, audience: x, caFile: missing.pem}", "does not exist"),
    ("- {issuer: https://a.example, audience: x, requiredClaims: {a: 1}}", "requiredClaims"),
    ("- {issuer: https://a.example, audience: x}\n- {issuer: https://a.example, audience: y}",
     "listed twice"),
])
def test_bad_config_files_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "oidc.yaml"
    path.write_text(text)
    with pytest.raises(OidcConfigError, match=message) as info:
        load_oidc_config(path)
    assert str(path) in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(OidcConfigError, match="cannot read"):
        load_oidc_config(tmp_path / "nope.yaml")


def test_tokens_of_other_kinds_are_not_ours() -> None:
    """Not a JWT, or a JWT of an issuer we do not trust: None, so the chain asks the next
    authenticator (service-account tokens are JWTs too). No network is touched."""
    auth = OidcAuthenticator([OidcIssuer("https://login.acme.example", CLIENT_ID)])
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = jwt.encode({"iss": "https://elsewhere.example", "sub": "x"}, key, algorithm="RS256")
    for token in ["opaque-bootstrap-token", "a.b.c", other, jwt.encode({"sub": "x"}, key,
                                                                      algorithm="RS256")]:
        assert authenticate(auth, token) is None


# --- the valid path: real tokens from the real provider -------------------------------------


@slow
def test_real_device_flow_token_is_accepted(oidc_provider: OidcProvider,
                                            auth: OidcAuthenticator) -> None:
    tokens = device_login(oidc_provider, "alice")
    user = authenticate(auth, tokens["id_token"])
    assert user == User("acme:alice@acme.example", ("acme:acme-admins", "acme:acme-devs"),
                        uid="alice")
    # Through the chain the user also gets system:authenticated.
    chain = AuthenticatorChain([auth])
    chained = asyncio.run(chain.authenticate(f"Bearer {tokens['id_token']}"))
    assert chained is not None and "system:authenticated" in chained.groups


@slow
def test_es256_token_and_default_claims(oidc_provider: OidcProvider) -> None:
    auth = OidcAuthenticator([OidcIssuer(oidc_provider.issuer, ES256_CLIENT_ID)])
    tokens = device_login(oidc_provider, "bob", client_id=ES256_CLIENT_ID)
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == "ES256"
    assert authenticate(auth, tokens["id_token"]) == User("bob", ("acme-devs",), uid="bob")


@slow
def test_reserved_groups_from_the_idp_are_dropped(oidc_provider: OidcProvider) -> None:
    """An IdP group named system:masters must not make its members cluster admins."""
    auth = OidcAuthenticator([OidcIssuer(oidc_provider.issuer, CLIENT_ID)])
    tokens = device_login(oidc_provider, "mallory")
    user = authenticate(auth, tokens["id_token"])
    assert user is not None and user.groups == ("acme-devs",)
    assert refused(auth, oidc_provider.sign(claims_for(oidc_provider, sub="system:admin"))) \
        == "username 'system:admin' uses a reserved prefix"


@slow
def test_audience_may_be_a_list(oidc_provider: OidcProvider, auth: OidcAuthenticator) -> None:
    token = oidc_provider.sign(claims_for(oidc_provider, aud=["other-client", CLIENT_ID]))
    user = authenticate(auth, token)
    assert user is not None and user.name == "acme:carol@acme.example"


# --- refusals --------------------------------------------------------------------------------


@slow
def test_forged_signature(oidc_provider: OidcProvider, auth: OidcAuthenticator,
                          caplog: pytest.LogCaptureFixture) -> None:
    """A real token whose payload was edited (mallory -> alice's groups) keeps a signature
    that no longer matches."""
    token = device_login(oidc_provider, "bob")["id_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["acme-admins"]
    forged = ".".join([header, b64(json.dumps(claims).encode()), signature])
    caplog.set_level(logging.DEBUG, logger="central_api.auth.oidc")
    assert refused(auth, forged) == "signature does not verify"
    assert forged not in caplog.text and signature not in caplog.text
    assert "signature does not verify" in caplog.text


@slow
@pytest.mark.parametrize(("overrides", "reason"), [
    ({"exp": int(time.time()) - 120}, "ExpiredSignatureError"),
    ({"nbf": int(time.time()) + 600}, "ImmatureSignatureError"),
    ({"iat": int(time.time()) + 600}, "(iat)"),
    ({"exp": None}, 'MissingRequiredClaimError: Token is missing the "exp" claim'),
    ({"aud": "another-client"}, "InvalidAudienceError"),
    ({"aud": ["a", "b"]}, "InvalidAudienceError"),
    ({"email": None}, "username claim 'email' is missing"),
    ({"email_verified": False}, "email is not verified"),
    ({"groups": "acme-devs,x"}, None),  # a single string is one group: accepted
    ({"groups": [1, 2]}, "groups claim 'groups' is not a list of strings"),
])
def test_bad_claims_with_a_valid_signature(oidc_provider: OidcProvider,
                                           auth: OidcAuthenticator,
                                           overrides: dict[str, Any], reason: str | None) -> None:
    token = oidc_provider.sign(claims_for(oidc_provider, **overrides))
    if reason is None:
        assert authenticate(auth, token) is not None
    else:
        assert reason in refused(auth, token)


@slow
def test_leeway_of_30_seconds(oidc_provider: OidcProvider, auth: OidcAuthenticator) -> None:
    now = int(time.time())
    assert authenticate(auth, oidc_provider.sign(claims_for(oidc_provider, exp=now - 10,
                                                            iat=now - 100)))
    assert authenticate(auth, oidc_provider.sign(claims_for(oidc_provider, nbf=now + 10)))
    refused(auth, oidc_provider.sign(claims_for(oidc_provider, exp=now - 40, iat=now - 100)))


@slow
def test_required_claims(oidc_provider: OidcProvider) -> None:
    auth = OidcAuthenticator([OidcIssuer(oidc_provider.issuer, CLIENT_ID,
                                         required_claims={"tenant": "acme"})])
    ok = oidc_provider.sign(claims_for(oidc_provider, tenant="acme"))
    assert authenticate(auth, ok) is not None
    assert "required claim 'tenant'" in refused(
        auth, oidc_provider.sign(claims_for(oidc_provider, tenant="other")))


@slow
def test_wrong_issuer(oidc_provider: OidcProvider, auth: OidcAuthenticator) -> None:
    # An issuer nobody configured: not ours.
    token = oidc_provider.sign(claims_for(oidc_provider, iss="https://evil.example"))
    assert authenticate(auth, token) is None
    # Claims another trusted issuer: verified against that issuer's keys, which cannot be
    # fetched (nothing listens there) -> refused, not passed on.
    token = oidc_provider.sign(claims_for(oidc_provider, iss="http://127.0.0.1:9"))
    assert "cannot fetch keys" in refused(auth, token)


@slow
def test_alg_none(oidc_provider: OidcProvider, auth: OidcAuthenticator) -> None:
    token = unsigned({"alg": "none", "typ": "JWT"}, claims_for(oidc_provider))
    assert refused(auth, token) == "algorithm 'none' is not allowed"
    token = unsigned({"alg": "None", "kid": oidc_provider.test_kid}, claims_for(oidc_provider))
    assert refused(auth, token) == "algorithm 'None' is not allowed"


@slow
def test_hs256_signed_with_the_public_key(oidc_provider: OidcProvider,
                                          auth: OidcAuthenticator) -> None:
    """Algorithm confusion: HMAC "signed" with the provider's public key (which anyone can
    download) must not verify against that key."""
    for jwk in oidc_provider.jwks()["keys"]:
        public = jwt.PyJWK(jwk).key
        pem = public.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
            header = {"alg": alg, "typ": "JWT", "kid": jwk["kid"]}
            signing_input = ".".join([b64(json.dumps(header).encode()),
                                      b64(json.dumps(claims_for(oidc_provider)).encode())])
            signature = hmac.new(pem, signing_input.encode(), digest).digest()
            token = f"{signing_input}.{b64(signature)}"
            assert refused(auth, token) == f"algorithm '{alg}' is not allowed"


@slow
def test_wrong_key(oidc_provider: OidcProvider, auth: OidcAuthenticator) -> None:
    """Signed with our own keys under the provider's real key ids."""
    kids = {k["alg"]: k["kid"] for k in oidc_provider.jwks()["keys"]}
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    claims = claims_for(oidc_provider)
    for alg, key in (("RS256", rsa_key), ("ES256", ec_key), ("PS256", rsa_key)):
        token = jwt.encode(claims, key, algorithm=alg, headers={"kid": kids[alg]})
        assert refused(auth, token) == "signature does not verify"
    # An EC-signed token naming the RSA key: the key type does not fit the algorithm.
    token = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": kids["RS256"]})
    assert "no ES256 key with id" in refused(auth, token)


@slow
def test_unknown_kid_refetches_at_most_once_per_interval(oidc_provider: OidcProvider,
                                                         auth: OidcAuthenticator) -> None:
    """Kid spam: many tokens with made-up key ids cost one JWKS fetch, not one each."""
    assert authenticate(auth, device_login(oidc_provider, "alice")["id_token"])
    keys = auth.issuer_keys(oidc_provider.issuer)
    assert keys.fetches == 1
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for i in range(20):
        token = jwt.encode(claims_for(oidc_provider), key, algorithm="RS256",
                           headers={"kid": f"made-up-{i}"})
        assert "no RS256 key with id 'made-up-" in refused(auth, token)
    assert keys.fetches == 1  # all within the 10 s of the first fetch
    # Known keys keep working meanwhile.
    assert authenticate(auth, oidc_provider.sign(claims_for(oidc_provider)))


@slow
def test_jwks_rotation() -> None:
    """The provider restarts with new signing keys: the new kid is fetched and accepted,
    tokens of the withdrawn keys are refused."""
    provider = start_provider()
    try:
        auth = OidcAuthenticator([OidcIssuer(provider.issuer, CLIENT_ID)],
                                 jwks_min_refresh_interval=0.5)
        before = device_login(provider, "alice")["id_token"]
        assert authenticate(auth, before) is not None
        keys = auth.issuer_keys(provider.issuer)
        assert keys.fetches == 1
        old_kid = jwt.get_unverified_header(before)["kid"]

        provider.restart()
        after = device_login(provider, "alice")["id_token"]
        new_kid = jwt.get_unverified_header(after)["kid"]
        assert new_kid != old_kid
        time.sleep(0.6)
        assert authenticate(auth, after) == User("alice", ("acme-admins", "acme-devs"),
                                                 uid="alice")
        assert keys.fetches == 2
        assert new_kid in {k["kid"] for k in keys.keys}
        time.sleep(0.6)
        assert f"no RS256 key with id '{old_kid}'" in refused(auth, before)
    finally:
        provider.cleanup()


@slow
def test_discovery_issuer_mismatch_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    """A provider at the configured URL that calls itself something else is not trusted."""
    provider = OidcProvider(issuer="http://127.0.0.1:1/impostor")
    try:
        provider.start()
    except Exception:
        provider.cleanup()
        raise
    try:
        assert provider.discovery()["issuer"] == "http://127.0.0.1:1/impostor"
        auth = OidcAuthenticator([OidcIssuer(provider.url, CLIENT_ID)])
        token = provider.sign(claims_for(provider, iss=provider.url))
        caplog.set_level(logging.DEBUG, logger="central_api.auth.oidc")
        reason = refused(auth, token)
        assert reason == (f"discovery document names issuer 'http://127.0.0.1:1/impostor', "
                          f"not the configured '{provider.url}'")
        assert token not in caplog.text
        assert auth.issuer_keys(provider.url).fetches == 0  # never fetched its keys
    finally:
        provider.cleanup()


def test_serve_refuses_a_bad_oidc_config(tmp_path: Path) -> None:
    """A broken --oidc-config stops `scs serve` at start with the reason, exit code 2."""
    import subprocess
    import sys

    from tests.server import REPO, free_port

    config = tmp_path / "oidc.yaml"
    config.write_text("- {issuer: http://idp.example, audience: scs-cli}\n")
    result = subprocess.run(
        [sys.executable, "-m", "central_api.cli", "serve", "--listen",
         f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"),
         "--oidc-config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "plain http is only allowed on a loopback address" in " ".join(result.stderr.split())
