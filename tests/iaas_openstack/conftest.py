"""The IaaS kinds through the Central API against the harness OpenStack, driven by kubectl.

One ``scs serve`` per module, configured with ``providers.iaas: openstack`` pointing at the
harness cloud's clouds.yaml (the operator's cloud: the ``admin`` project). Every assertion
about the backend is made with openstacksdk directly against the service, never through the
Central API. Faults are real: a service process is stopped, Nova is asked for a flavor no
host can hold, objects are deleted with openstacksdk, quotas are set in Nova.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.openstack import CLOUD_NAME, OpenStackCloud
from tests.openstack.fixture import shared_cloud
from tests.polling import poll
from tests.server import REPO, ScsServer

KUBECTL = Path(os.environ.get("SCS_KUBECTL", "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"))
API_VERSION = "iaas.scs.community/v1alpha1"
RESYNC_SECONDS = 5


@pytest.fixture(scope="session")
def cloud() -> Iterator[OpenStackCloud]:
    yield from shared_cloud()


@pytest.fixture(scope="module")
def conn(cloud: OpenStackCloud) -> Iterator[Any]:
    """openstacksdk as the operator (the project the Central API works in)."""
    connection = cloud.connection()
    yield connection
    connection.close()


class Central:
    """One ``scs serve`` with the OpenStack provider, used through kubectl."""

    def __init__(self, server: ScsServer, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.server.kubeconfig),
               "HOME": str(self.workdir), "KUBECACHEDIR": str(self.workdir / "kcache")}
        done = subprocess.run([str(KUBECTL), *args], input=input, capture_output=True,
                              text=True, timeout=timeout, cwd=REPO, env=env, check=False)
        if check:
            assert done.returncode == 0, (
                f"kubectl {' '.join(args)} exited {done.returncode}\n{done.stdout}\n"
                f"{done.stderr}")
        return done

    def apply(self, namespace: str, *objects: dict[str, Any]) -> None:
        # JSON, not YAML: kubectl reads YAML 1.1, where a name like "n" is a boolean.
        self.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": list(objects)}))

    def get(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        done = self.kubectl("-n", namespace, "get", kind, name, "-o", "json", check=False)
        if done.returncode != 0:
            assert "NotFound" in done.stderr, done.stderr
            return None
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def wait_ready(self, namespace: str, kind: str, *names: str, timeout: int = 180) -> None:
        done = self.kubectl("-n", namespace, "wait", "--for=condition=Ready",
                            f"--timeout={timeout}s", *[f"{kind}/{n}" for n in names],
                            check=False, timeout=timeout + 30)
        if done.returncode != 0:
            states = self.kubectl("-n", namespace, "get", kind, *names, "-o", "yaml",
                                  check=False).stdout
            pytest.fail(f"{kind} {names} not Ready within {timeout}s: {done.stderr}\n"
                        f"{states}")

    def ready_condition(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
        current = self.get(namespace, kind, name) or {}
        for entry in (current.get("status") or {}).get("conditions") or []:
            if entry.get("type") == "Ready":
                return dict(entry)
        return {}

    def wait_condition(self, namespace: str, kind: str, name: str, reason: str,
                       timeout: float = 120) -> dict[str, Any]:
        """Until Ready carries ``reason``; returns the condition."""
        def check() -> dict[str, Any] | None:
            found = self.ready_condition(namespace, kind, name)
            return found if found.get("reason") == reason else None
        return poll(check, timeout, 1.0, f"{kind}/{name} Ready reason {reason}")

    def uid(self, namespace: str, kind: str, name: str) -> str:
        return str((self.get(namespace, kind, name) or {})["metadata"]["uid"])

    def wait_generation(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
        """Until the controller has reconciled the latest spec and the object is Ready."""
        def check() -> dict[str, Any] | None:
            current = self.get(namespace, kind, name) or {}
            status = current.get("status") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions") or [])
            generation = current["metadata"].get("generation")
            return current if ready and status.get("observedGeneration") == generation \
                else None
        return poll(check, 120, 1.0, f"{kind}/{name} to reconcile its latest generation")

    def backend_id(self, namespace: str, kind: str, name: str) -> str:
        return str(((self.get(namespace, kind, name) or {}).get("status") or {})
                   .get("backendID", ""))

    def namespace(self) -> str:
        name = f"os-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        return name

    def delete_and_wait(self, namespace: str, kind: str, *names: str,
                        timeout: int = 240) -> None:
        self.kubectl("-n", namespace, "delete", kind, *names, f"--timeout={timeout}s",
                     timeout=timeout + 30)


def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name},
            "spec": spec}


@contextlib.contextmanager
def running_central(cloud: OpenStackCloud, workdir: Path, provider: dict[str, Any] | None = None,
                    **config: Any) -> Iterator[Central]:
    """``scs serve`` with the harness cloud as the operator's IaaS provider (plus ``provider``
    settings and ``config``, e.g. an identity backend), stopped and removed afterwards."""
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump({
        "services": ["tenancy", "iaas"], "resyncSeconds": RESYNC_SECONDS,
        "providers": {"iaas": {"type": "openstack", "cloudsYaml": str(cloud.clouds_yaml),
                               "cloud": CLOUD_NAME, "externalNetwork": "public",
                               **(provider or {})}},
        **config}))
    (workdir / "data").mkdir()
    server = ScsServer(data_dir=workdir / "data", extra_args=["--config", str(path)])
    try:
        server.start()
        yield Central(server, workdir)
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def central(cloud: OpenStackCloud, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Central]:
    with running_central(cloud, tmp_path_factory.mktemp("central")) as started:
        yield started


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bytes]]:
    """An HTTP server on 127.0.0.1 serving ``disk.raw`` (3 MiB of random data) for Images to
    import: the base URL and the data. Glance must be allowed private sources to use it."""
    root = tmp_path_factory.mktemp("image-files")
    data = os.urandom(3 * 1024 * 1024)
    (root / "disk.raw").write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", data
    finally:
        server.shutdown()
        server.server_close()
