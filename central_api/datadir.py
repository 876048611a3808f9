"""First-start set-up of a data directory, like k3s: CA, serving certificate, admin
token, encryption key and ``admin.kubeconfig`` — so kubectl works right after ``scs serve``.

Everything is created once and reused on later starts; secrets are written with mode 0600.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .auth.tokens import hash_token
from .machinery.files import write_private
from .store.base import StoreError

CA_DAYS = 3650
CERT_DAYS = 365
ENCRYPTION_PREFIX = b"scs:enc:aesgcm:v1:"


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "tls" / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "tls" / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "tls" / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "tls" / "server.key"

    @property
    def token_hash(self) -> Path:
        return self.root / "admin-token.sha256"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def encryption_key(self) -> Path:
        return self.root / "encryption.key"

    @property
    def database(self) -> Path:
        return self.root / "state.db"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SCS Central API")])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_ca(data: DataDir) -> None:
    if data.ca_cert.exists() and data.ca_key.exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("scs-central-api-ca"))
            .issuer_name(_name("scs-central-api-ca")).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    write_private(data.ca_key, _pem_key(key))
    data.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_server_cert(data: DataDir, hosts: list[str]) -> None:
    """(Re)issue the serving certificate when missing or when the host names changed."""
    wanted = sorted(set(hosts) | {"localhost", "127.0.0.1"})
    if data.server_cert.exists() and data.server_key.exists():
        current = x509.load_pem_x509_certificate(data.server_cert.read_bytes())
        san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = sorted([*san.get_values_for_type(x509.DNSName),
                        *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))])
        if set(wanted) <= set(names) and current.not_valid_after_utc > dt.datetime.now(dt.UTC) \
                + dt.timedelta(days=30):
            return
    ca_key = serialization.load_pem_private_key(data.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(data.ca_cert.read_bytes())
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{data.ca_key} is not an EC private key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = []
    for host in wanted:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder().subject_name(_name("scs-central-api"))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    write_private(data.server_key, _pem_key(key))
    data.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_admin_token(data: DataDir) -> str | None:
    """Create the bootstrap token; returns it only when newly created (else None)."""
    if data.token_hash.exists():
        return None
    token = secrets.token_urlsafe(32)
    write_private(data.token_hash, hash_token(token).encode())
    return token


def write_kubeconfig(data: DataDir, server_url: str, token: str, ca_file: Path | None) -> None:
    cluster: dict[str, object] = {"server": server_url}
    if ca_file is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "scs", "cluster": cluster}],
        "users": [{"name": "scs-admin", "user": {"token": token}}],
        "contexts": [{"name": "scs", "context": {"cluster": "scs", "user": "scs-admin",
                                                 "namespace": "default"}}],
        "current-context": "scs",
    }
    write_private(data.kubeconfig, yaml.safe_dump(config, sort_keys=False).encode())


def ensure_encryption_key(data: DataDir, key_file: Path | None = None) -> bytes:
    """The key for values at rest: ``key_file`` if given (replicas sharing one PostgreSQL
    store must share the key), else ``DATA_DIR/encryption.key``, generated on first start."""
    path = key_file or data.encryption_key
    if key_file is None and not path.exists():
        write_private(path, base64.b64encode(AESGCM.generate_key(256)))
    try:
        key = base64.b64decode(path.read_bytes(), validate=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the encryption key {path}: {exc}") from None
    if len(key) != 32:
        raise ValueError(f"{path} must hold a base64-encoded 32-byte key")
    return key


class SecretBox:
    """AES-256-GCM for values at rest; a random nonce per write, the prefix names the scheme."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plain: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return ENCRYPTION_PREFIX + nonce + self._aead.encrypt(nonce, plain, ENCRYPTION_PREFIX)

    def decrypt(self, stored: bytes) -> bytes:
        if not stored.startswith(ENCRYPTION_PREFIX):
            return stored  # written before encryption was enabled
        body = stored[len(ENCRYPTION_PREFIX):]
        try:
            return self._aead.decrypt(body[:12], body[12:], ENCRYPTION_PREFIX)
        except InvalidTag:
            raise WrongEncryptionKey("a stored value cannot be decrypted with this server's "
                                     "encryption key") from None


class WrongEncryptionKey(StoreError):
    """Another replica wrote with a different key: every replica must share one key."""
