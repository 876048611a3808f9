"""Short-lived client certificates signed by a cluster's CA: the admin credential of KaaS.

Kubernetes cannot revoke a client certificate, so the Central API never hands out the
long-lived admin kubeconfig a backend keeps; where it holds the cluster CA (Cluster API's
``<cluster>-ca`` Secret, the sandbox's record) it signs a fresh certificate for the caller,
valid for exactly the seconds granted. Signing is CPU work: call it off the event loop.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLOCK_SKEW = dt.timedelta(minutes=1)
"""notBefore lies this far back: the cluster's clock may run behind ours."""


@dataclass(frozen=True)
class Signed:
    certificate: bytes
    """PEM."""
    key: bytes
    """PEM (PKCS#8, unencrypted): handed to the caller, never stored."""
    not_after: dt.datetime


def client_certificate(ca_pem: bytes, ca_key_pem: bytes, common_name: str, group: str,
                       seconds: int, now: dt.datetime | None = None) -> Signed:
    """A client certificate for user ``common_name`` in ``group`` (its organization, which
    Kubernetes reads as a group), signed by the CA, valid for ``seconds`` from ``now``."""
    now = now or dt.datetime.now(dt.UTC)
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key: Any = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    # no 64-character limit on the CN: Kubernetes takes all of it as the user name, and
    # Go's x509 does not bound it (long ServiceAccount names exceed 64)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, group),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name,
                                            _validate=False)])
    not_after = now + dt.timedelta(seconds=seconds)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, None if isinstance(ca_key, ed25519.Ed25519PrivateKey
                                             | ed448.Ed448PrivateKey) else hashes.SHA256()))
    return Signed(cert.public_bytes(serialization.Encoding.PEM), private_key_pem(key),
                  not_after)


def key_usage(cert_sign: bool) -> x509.KeyUsage:
    """Signatures only; a CA's also signs certificates and CRLs."""
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
