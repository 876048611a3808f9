"""The provider process: go-plugin's handshake and the gRPC server, with Terraform's AutoMTLS.

Terraform starts the provider with ``PLUGIN_CLIENT_CERT``, the certificate its own side will
present, and expects the provider's certificate in the handshake line. The tf framework's
runner caches a 1024-bit RSA key in ``~/.cache`` for a week; this entry point replaces the
runner: a fresh P-256 key per process, kept in memory only.

Terraform's client certificate cannot be *required*: go-plugin makes it on P-521 with
ECDSA-SHA512, which BoringSSL (grpcio's TLS) does not offer among the signature algorithms
it accepts, so Terraform's Go client finds no acceptable certificate and sends none (tried:
the handshake fails with PEER_DID_NOT_RETURN_A_CERTIFICATE). The access control is the
socket instead: it lives in a directory only this user can enter (``mkdtemp``, 0700), and
whoever else could reach it (this user, root) could read Terraform's memory anyway.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import threading
import time
from concurrent import futures
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tf.gen import grpc_controller_pb2 as controller_pb
from tf.gen import grpc_controller_pb2_grpc as controller_rpc
from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
from tf.gen import tfplugin_pb2_grpc as rpc

from .servicer import ScsServicer

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
"""go-plugin's handshake cookie for Terraform providers (not a secret: it only tells a
binary it was started by Terraform)."""
FULL_NAME = "scs.community/scs/scs"


class _App:
    """What the framework's servicer asks of a provider object beyond our overrides."""

    def get_functions(self) -> list[Any]:
        return []

    def get_model_prefix(self) -> str:
        return ""

    def get_data_sources(self) -> list[Any]:
        return []

    def get_resources(self) -> list[Any]:
        return []


class _Stopper(grpc.ServerInterceptor):
    """Notices Terraform's Shutdown (and StopProvider) so the process ends."""

    def __init__(self) -> None:
        self.stopped = False

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if details.method in ("/plugin.GRPCController/Shutdown",
                              "/tfplugin6.Provider/StopProvider"):
            self.stopped = True
        return continuation(details)


class _Controller(controller_rpc.GRPCControllerServicer):
    def Shutdown(self, request: Any, context: Any) -> Any:  # noqa: N802
        return controller_pb.Empty()


class _Stdio(stdio_rpc.GRPCStdioServicer):
    def StreamStdio(self, request: Any, context: Any) -> Any:  # noqa: N802
        return iter(())


def server_certificate() -> tuple[bytes, bytes, bytes]:
    """(key PEM, certificate PEM, certificate DER) for ``localhost``, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "terraform-provider-scs")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(seconds=30))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=True, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return (key_pem, cert.public_bytes(serialization.Encoding.PEM),
            cert.public_bytes(serialization.Encoding.DER))


def main(argv: list[str] | None = None) -> int:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE:
        print("This is the Terraform provider of the SCS Central API; Terraform runs it. "
              "Install it with `scs terraform install` (docs/terraform.md).", file=sys.stderr)
        return 1
    _exit_with_parent()
    stopper = _Stopper()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), interceptors=[stopper])
    rpc.add_ProviderServicer_to_server(ScsServicer(_App()), server)
    controller_rpc.add_GRPCControllerServicer_to_server(_Controller(), server)
    stdio_rpc.add_GRPCStdioServicer_to_server(_Stdio(), server)
    with tempfile.TemporaryDirectory(dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR")) as tmp:
        socket = os.path.join(tmp, "provider.sock")
        client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "")
        shown = ""
        if client_cert:
            key_pem, cert_pem, cert_der = server_certificate()
            credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)])
            server.add_secure_port(f"unix://{socket}", credentials)
            shown = base64.b64encode(cert_der).decode().rstrip("=")
        else:  # Terraform without AutoMTLS: a socket only this user can reach
            server.add_insecure_port(f"unix://{socket}")
        server.start()
        print(f"1|6|unix|{socket}|grpc|{shown}", flush=True)
        while not stopper.stopped:
            server.wait_for_termination(0.05)
        server.stop(grace=None).wait()
    return 0


def _exit_with_parent() -> None:
    """End when Terraform is gone (killed, say): no provider left waiting for minutes."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def entry() -> None:
    """The ``terraform-provider-scs`` console script."""
    sys.exit(main())
