"""The sandbox's cluster access: keys are made and certificates signed off the event loop.

On SQLite the sandbox's store work runs in place, on the loop; generating the cluster's CA
key and signing an admin certificate are CPU work a request must not hold the loop for, so
they run in a worker thread whatever the store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from central_api.providers.base import Scope
from central_api.providers.kaas import AdminRequest
from central_api.providers.sandbox import SandboxSettings, sandbox_kaas_provider
from central_api.providers.sandbox import clusters as sandbox_clusters
from central_api.store.sqlite import SqliteStore

SPEC = {"kubernetesVersion": "1.34", "controlPlane": {"replicas": 1},
        "nodePools": [{"name": "general", "flavor": "SCS-2V-4", "replicas": 1}]}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "sandbox.db")
    yield s
    s.close()


def test_the_ca_key_and_the_admin_certificate_are_made_off_the_event_loop(
        store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    kaas = sandbox_kaas_provider(store, SandboxSettings(speed=0))
    made_in: dict[str, int] = {}

    def watched(name: str, real: Any) -> Any:
        def call(*args: Any) -> Any:
            made_in[name] = threading.get_ident()
            return real(*args)
        return call

    monkeypatch.setattr(sandbox_clusters, "new_ca", watched("ca", sandbox_clusters.new_ca))
    monkeypatch.setattr(sandbox_clusters, "admin_certificate",
                        watched("admin", sandbox_clusters.admin_certificate))

    async def main() -> tuple[bytes, bytes, bytes]:
        scope = Scope("acme", "acme")
        backend = await kaas.clusters.create(scope, "uid-1", SPEC)
        first = await kaas.access(scope, backend, None)
        admin = await kaas.access(scope, backend, AdminRequest("acme:alice", 900))
        return first.certificate_authority, admin.certificate_authority, \
            admin.client_certificate

    loop_thread = threading.get_ident()  # asyncio.run runs the loop in this thread
    ca, ca_again, cert = asyncio.run(main())
    assert set(made_in) == {"ca", "admin"}
    assert loop_thread not in made_in.values(), "key generation or signing on the loop"
    assert ca == ca_again, "the CA is made once and kept"
    x509.load_pem_x509_certificate(cert).verify_directly_issued_by(
        x509.load_pem_x509_certificate(ca))
