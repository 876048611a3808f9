"""How to reach a CAPI cluster: its endpoint and CA, and on request a short-lived admin.

The endpoint is ``spec.controlPlaneEndpoint``, the CA the ``tls.crt`` of the ``<name>-ca``
Secret that Cluster API (kubeadm) keeps for every cluster. An admin credential is a client
certificate signed here with that CA's key (``tls.key``), valid for the seconds asked for: the
long-lived ``<name>-kubeconfig`` Secret (a certificate valid for a year) is never read, so
it can neither leave the management cluster nor be stored anywhere. The certificate's
subject names the user (``scs:<user>``) so the cluster's audit log shows who it was; its
organization is ``capi.adminGroup``, by default kubeadm's ``kubeadm:cluster-admins`` (bound to
cluster-admin): unlike ``system:masters``, which bypasses RBAC, the operator can revoke every
such certificate at once by removing that binding (Kubernetes cannot revoke a certificate).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..base import BackendResource, Conflict, InvalidRequest, NotFound, Scope
from ..kaas import AdminRequest, ClusterAccess
from . import mapping, status
from .management import Management

USER_PREFIX = "scs:"
CLOCK_SKEW = dt.timedelta(minutes=1)
"""The certificate is valid from a minute ago: the cluster's clock may run behind ours."""


async def cluster_access(management: Management, scope: Scope, backend: BackendResource,
                         admin: AdminRequest | None) -> ClusterAccess:
    kube = await management.kube()
    namespace = management.namespace(scope)
    found = await kube.get(mapping.CAPI, mapping.CLUSTERS, namespace, backend.id)
    labels = ((found or {}).get("metadata") or {}).get("labels") or {}
    if found is None or labels.get(mapping.OWNER_LABEL) != backend.owner_uid:
        raise NotFound(f"the cluster {backend.id} is not in the management cluster")
    server = status.endpoint(found)
    if not server:
        raise Conflict(f"the cluster {backend.id} has no API endpoint yet")
    secret = await kube.get("v1", "secrets", namespace, f"{backend.id}-ca")
    data = (secret or {}).get("data") or {}
    if "tls.crt" not in data:
        raise Conflict(f"the CA of cluster {backend.id} is not there yet")
    ca = base64.b64decode(data["tls.crt"])
    if admin is None:
        return ClusterAccess(server, ca)
    if "tls.key" not in data:
        raise InvalidRequest(f"the CA of cluster {backend.id} has no key to sign with")
    cert, key, expires = await asyncio.to_thread(
        sign_client_certificate, ca, base64.b64decode(data["tls.key"]), admin,
        management.settings.admin_group)
    return ClusterAccess(server, ca, client_certificate=cert, client_key=key, expires=expires)


def sign_client_certificate(ca_pem: bytes, ca_key_pem: bytes, admin: AdminRequest,
                            group: str, now: dt.datetime | None = None
                            ) -> tuple[bytes, bytes, dt.datetime]:
    """A client certificate for ``admin`` in ``group``, signed by the cluster CA: (PEM cert,
    PEM key, notAfter)."""
    now = now or dt.datetime.now(dt.UTC)
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key: Any = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    expires = now + dt.timedelta(seconds=admin.seconds)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, group),
                         x509.NameAttribute(NameOID.COMMON_NAME, USER_PREFIX + admin.user)])
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(expires)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=False, content_commitment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, None if isinstance(ca_key, ed25519.Ed25519PrivateKey
                                             | ed448.Ed448PrivateKey) else hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, expires
