"""The certificate authority of a simulated cluster, and the admin certificates it signs.

Nothing serves the sandbox's clusters, but their kubeconfigs are real enough to check: each
cluster gets its own CA once (kept in its sandbox record, the simulated backend's own storage,
like Cluster API's ``<cluster>-ca`` Secret), and an admin credential is a client certificate
signed by it, valid for exactly the time asked, as kubeadm's would be. ECDSA P-256 keys: made
in well under a millisecond, and accepted by kubectl and client-go.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_YEARS = 10
ADMIN_GROUP = "kubeadm:cluster-admins"
"""The group kubeadm (and so Cluster API) binds to cluster-admin since Kubernetes 1.29; unlike
``system:masters`` it can be unbound, so an admin certificate is not beyond revocation."""
BACKDATE = dt.timedelta(seconds=60)
"""notBefore lies this far back, so a client whose clock is slightly behind can use it."""


@dataclass(frozen=True)
class Pair:
    certificate: bytes
    key: bytes
    """PEM (PKCS#8, unencrypted)."""
    not_after: dt.datetime


def new_ca(cluster_id: str, now: dt.datetime) -> Pair:
    """A self-signed CA for one cluster."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sandbox (simulated)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"kubernetes {cluster_id}")])
    not_after = now + dt.timedelta(days=365 * CA_YEARS)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Pair(_pem(cert), _key_pem(key), not_after)


def admin_certificate(ca: Pair, user: str, seconds: int, now: dt.datetime) -> Pair:
    """A client certificate for ``user`` (CN) in the cluster-admin group, valid for
    ``seconds`` from ``now``."""
    ca_cert = x509.load_pem_x509_certificate(ca.certificate)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cluster CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_GROUP),
                         x509.NameAttribute(NameOID.COMMON_NAME, user, _validate=False)])
    # (no 64-character limit: Kubernetes takes the whole CN as the user name, and Go's x509
    # does not bound it either; long ServiceAccount names exceed it)
    not_after = now + dt.timedelta(seconds=seconds)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Pair(_pem(cert), _key_pem(key), not_after)


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
