"""The certificate authority of a simulated cluster, and the admin certificates it signs.

Nothing serves the sandbox's clusters, but their kubeconfigs are real enough to check: each
cluster gets its own CA once (kept in its sandbox record, the simulated backend's own storage,
like Cluster API's ``<cluster>-ca`` Secret), and an admin credential is a client certificate
signed by it, valid for exactly the time asked, as kubeadm's would be. ECDSA P-256 keys: made
in well under a millisecond, and accepted by kubectl and client-go.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..certificates import CLOCK_SKEW, Signed, client_certificate, key_usage, private_key_pem

CA_YEARS = 10
ADMIN_GROUP = "kubeadm:cluster-admins"
"""The group kubeadm (and so Cluster API) binds to cluster-admin since Kubernetes 1.29; unlike
``system:masters`` it can be unbound, so an admin certificate is not beyond revocation."""


Pair = Signed
"""A CA: its certificate and key (PEM), kept in the cluster's sandbox record."""


def admin_certificate(ca: Pair, user: str, seconds: int, now: dt.datetime) -> Signed:
    """A client certificate for ``user`` (CN) in the cluster-admin group, valid for
    ``seconds`` from ``now``."""
    return client_certificate(ca.certificate, ca.key, user, ADMIN_GROUP, seconds, now)


def new_ca(cluster_id: str, now: dt.datetime) -> Pair:
    """A self-signed CA for one cluster."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sandbox (simulated)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"kubernetes {cluster_id}")])
    not_after = now + dt.timedelta(days=365 * CA_YEARS)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Pair(_pem(cert), private_key_pem(key), not_after)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
