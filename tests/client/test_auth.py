"""Who the SDK is: a kubeconfig token, an exec credential plugin, a client certificate, an
explicit token; whom it trusts (the configured CA only); and how it meets the rate limit."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import ssl
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from central_api.client import (
    Client,
    Config,
    TLSVerifyError,
    TooManyRequests,
    TransportError,
    load_kubeconfig,
)
from central_api.kinds.core import Namespace
from central_api.kinds.iaas import Network
from tests.client.conftest import service_account_token, token_client
from tests.server import ScsServer

pytestmark = pytest.mark.slow


def kubeconfig(path: Path, server: str, user: dict[str, Any], ca_pem: bytes) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u",
                                               "namespace": "default"}}]}))
    return path


def exec_plugin(directory: Path, tokens: list[str], expires_in: int = 3600) -> Path:
    """A credential plugin printing the next of ``tokens`` (the last one again once they
    run out) and counting its runs in ``runs``."""
    script = directory / "plugin.py"
    script.write_text(f"""#!{sys.executable}
import datetime, json, pathlib
runs = pathlib.Path({str(directory / "runs")!r})
n = int(runs.read_text()) if runs.exists() else 0
runs.write_text(str(n + 1))
tokens = {tokens!r}
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds={expires_in})
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {{"token": tokens[min(n, len(tokens) - 1)],
                             "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}))
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def runs(directory: Path) -> int:
    return int((directory / "runs").read_text())


def test_a_kubeconfig_token_and_its_context_namespace(server: ScsServer) -> None:
    config = load_kubeconfig(server.kubeconfig)

    with Client(config) as client:
        names = {n.metadata.name for n in client.list(Namespace).items}

    assert config.server == server.url and "default" in names


def test_an_exec_plugin_runs_once_while_its_credential_is_valid(
        server: ScsServer, tmp_path: Path) -> None:
    plugin = exec_plugin(tmp_path, [server.token])
    path = kubeconfig(tmp_path / "config", server.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}},
        server.ca_file.read_bytes())

    with Client(kubeconfig=path) as client:
        for _ in range(3):
            client.get(Namespace, "default")

    assert runs(tmp_path) == 1


def test_an_exec_plugin_runs_again_when_its_credential_expired(
        server: ScsServer, tmp_path: Path) -> None:
    plugin = exec_plugin(tmp_path, [server.token], expires_in=0)
    path = kubeconfig(tmp_path / "config", server.url, {"exec": {"command": str(plugin)}},
                      server.ca_file.read_bytes())

    with Client(kubeconfig=path) as client:
        client.get(Namespace, "default")
        client.get(Namespace, "default")

    assert runs(tmp_path) == 2


def test_a_401_renews_the_exec_credential_and_repeats_the_request(
        server: ScsServer, tmp_path: Path) -> None:
    plugin = exec_plugin(tmp_path, ["revoked-token", server.token])
    path = kubeconfig(tmp_path / "config", server.url, {"exec": {"command": str(plugin)}},
                      server.ca_file.read_bytes())

    with Client(kubeconfig=path) as client:
        found = client.get(Namespace, "default")

    assert found.metadata.name == "default" and runs(tmp_path) == 2


def test_an_explicit_token_and_namespace(server: ScsServer, client: Client,
                                         tenant: str) -> None:
    token = service_account_token(client, tenant, "tenant-admin")

    with token_client(server, token, namespace=tenant) as admin:
        secret = admin.create({"apiVersion": "v1", "kind": "Secret",
                               "metadata": {"name": "from-token"}})

    assert secret["metadata"]["namespace"] == tenant


def test_a_server_signed_by_another_ca_is_refused_clearly(server: ScsServer,
                                                          tmp_path: Path) -> None:
    other_ca, _ = certificate_authority("other")
    (tmp_path / "other.crt").write_bytes(pem(other_ca))

    with Client(Config.from_token(server.url, server.token, ca_file=tmp_path / "other.crt")
                ) as client, pytest.raises(TLSVerifyError) as caught:
        client.get(Namespace, "default")

    assert "certificate verify failed" in str(caught.value)
    assert str(tmp_path / "other.crt") in str(caught.value)


def test_the_system_trust_store_does_not_trust_the_generated_ca(server: ScsServer) -> None:
    with Client(Config.from_token(server.url, server.token)) as client, \
            pytest.raises(TLSVerifyError, match="system trust store"):
        client.get(Namespace, "default")


# -- client certificates -------------------------------------------------------------------------
# scs serve authenticates no client certificates; a TLS endpoint that requires one and
# answers with the certificate's common name shows that the SDK presents the kubeconfig's.
def certificate_authority(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str,
          server: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=1))
               .not_valid_after(now + dt.timedelta(hours=1)))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture
def mtls_endpoint(tmp_path: Path) -> Iterator[tuple[str, x509.Certificate,
                                                     ec.EllipticCurvePrivateKey]]:
    """https://127.0.0.1:port requiring a client certificate of its CA; GET of a namespace
    answers a Namespace labelled with the client certificate's common name."""
    ca, ca_key = certificate_authority("mtls-ca")
    cert, key = issue(ca, ca_key, "127.0.0.1", server=True)
    (tmp_path / "s.crt").write_bytes(pem(cert))
    (tmp_path / "s.key").write_bytes(key_pem(key))
    (tmp_path / "ca.crt").write_bytes(pem(ca))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    context.load_cert_chain(str(tmp_path / "s.crt"), str(tmp_path / "s.key"))
    context.verify_mode = ssl.CERT_REQUIRED

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            peer = self.connection.getpeercert()  # type: ignore[attr-defined]
            cn = dict(x[0] for x in peer["subject"])["commonName"]
            body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": self.path.rsplit("/", 1)[-1], "labels": {"cn": cn}}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}", ca, ca_key
    finally:
        httpd.shutdown()


def test_a_kubeconfig_client_certificate_is_presented(
        mtls_endpoint: tuple[str, x509.Certificate, ec.EllipticCurvePrivateKey],
        tmp_path: Path) -> None:
    url, ca, ca_key = mtls_endpoint
    cert, key = issue(ca, ca_key, "alice", server=False)
    path = kubeconfig(tmp_path / "config", url, {
        "client-certificate-data": base64.b64encode(pem(cert)).decode(),
        "client-key-data": base64.b64encode(key_pem(key)).decode()}, pem(ca))

    with Client(kubeconfig=path) as client:
        found = client.get(Namespace, "default")

    assert found.metadata.labels == {"cn": "alice"}


def test_without_the_client_certificate_the_handshake_fails(
        mtls_endpoint: tuple[str, x509.Certificate, ec.EllipticCurvePrivateKey],
        tmp_path: Path) -> None:
    url, ca, _ = mtls_endpoint
    path = kubeconfig(tmp_path / "config", url, {}, pem(ca))

    with Client(kubeconfig=path) as client, pytest.raises(TransportError):
        client.get(Namespace, "default")


# -- the rate limit ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def limited() -> Iterator[ScsServer]:
    """A server granting each identity a burst of 2 requests, then 1 per second."""
    srv = ScsServer(extra_args=["--rate-limit", "1", "--rate-burst", "2"])
    try:
        yield srv.start()
    finally:
        srv.cleanup()


def test_requests_beyond_the_rate_limit_are_retried_after_the_servers_wait(
        limited: ScsServer) -> None:
    with Client(kubeconfig=limited.kubeconfig) as admin:  # the bootstrap admin is exempt
        token = service_account_token(admin, "default", "viewer")

    started = time.monotonic()
    with token_client(limited, token) as client:
        for _ in range(5):
            client.list(Network, "default")

    assert time.monotonic() - started >= 2.0  # waited as the server asked


def test_without_retries_the_rate_limit_is_too_many_requests(limited: ScsServer) -> None:
    with Client(kubeconfig=limited.kubeconfig) as admin:
        token = service_account_token(admin, "default", "viewer")
    config = Config.from_token(limited.url, token, ca_file=limited.ca_file)
    config.max_retries = 0

    with Client(config) as client, pytest.raises(TooManyRequests) as caught:
        for _ in range(5):
            client.list(Network, "default")

    assert caught.value.code == 429 and caught.value.retry_after
