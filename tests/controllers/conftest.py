"""Harness for the controller and provider acceptance suite: real ``scs serve`` processes with
an operator config, the real ``kubectl``, and direct access to the sandbox cloud.

Faults and out-of-band changes are injected the way the sandbox documents it
(``central_api/providers/sandbox/faults.py``, ``admin.py``): by opening the *server's own
store* from the test process while the server runs — ``SqliteStore(<data_dir>/state.db)``
(WAL mode makes a second process safe) or ``PostgresStore(url)`` — and calling
``inject_fault``, ``set_quota`` or ``delete_behind_the_back`` on it. The server's provider
re-reads fault records within ``fault_cache_seconds``; nothing goes through the API.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from central_api.store.base import Store
from tests.polling import poll
from tests.server import ScsServer

T = TypeVar("T")

KUBECTL = Path(os.environ.get("SCS_KUBECTL",
                              "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"))
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "iaas"
IAAS = "/apis/iaas.scs.community/v1alpha1"
API_VERSION = "iaas.scs.community/v1alpha1"
INVENTORY = "/sandbox/v1/inventory"
FINALIZER = "iaas.scs.community/backend"
_counter = itertools.count()


def unique(prefix: str) -> str:
    """A DNS-label name nobody else uses (module servers are shared between tests)."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:5]}"


def eventually(check: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1,
               what: str = "condition") -> T:
    return poll(check, timeout, interval, what)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


# -- objects -----------------------------------------------------------------------------------
def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def network(name: str) -> dict[str, Any]:
    return obj("Network", name, {"description": f"test network {name}"})


def subnet(name: str, network_name: str, cidr: str = "10.0.0.0/24") -> dict[str, Any]:
    return obj("Subnet", name, {"networkRef": {"name": network_name}, "cidr": cidr})


def server(name: str, network_name: str, flavor: str = "SCS-1V-2") -> dict[str, Any]:
    return obj("Server", name, {"flavor": flavor, "image": "ubuntu-24.04",
                                "networks": [{"name": network_name}]})


PLURALS = {"Network": "networks", "Subnet": "subnets", "Router": "routers",
           "SecurityGroup": "securitygroups", "Keypair": "keypairs", "Volume": "volumes",
           "Image": "images", "Server": "servers", "FloatingIP": "floatingips",
           "LoadBalancer": "loadbalancers"}


def condition(item: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for entry in ((item or {}).get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            return dict(entry)
    return None


def is_ready(item: dict[str, Any] | None) -> bool:
    found = condition(item, "Ready")
    return found is not None and found.get("status") == "True"


# -- one server with its clients ------------------------------------------------------------------
class Cluster:
    """One running ``scs serve`` plus the clients a test needs: HTTPS, kubectl, the store."""

    def __init__(self, server: ScsServer, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self._http: httpx.Client | None = None
        self._store: Store | None = None

    # lifecycle
    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.server.url, verify=ssl.create_default_context(
                                          cafile=str(self.server.ca_file)),
                                      timeout=30,
                                      headers={"Authorization": f"Bearer {self.server.token}"})
        return self._http

    def reconnect(self) -> None:
        """After a restart: new port, same token."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def store(self) -> Store:
        """The server's own store, opened from the test process (the sandbox's documented
        fault-injection path): SQLite in WAL mode, or the shared PostgreSQL database."""
        if self._store is None:
            if self.server.store.startswith("postgresql://"):
                from central_api.store.postgres import PostgresStore

                self._store = PostgresStore(self.server.store)
            else:
                from central_api.store.sqlite import SqliteStore

                self._store = SqliteStore(self.server.data_dir / "state.db")
        return self._store

    # kubectl
    def kubectl(self, *args: str, input: str | None = None, timeout: float = 90,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.server.kubeconfig),
               "HOME": str(self.workdir), "KUBECACHEDIR": str(self.workdir / "kcache")}
        result = subprocess.run([str(KUBECTL), *args], input=input, capture_output=True,
                                text=True, timeout=timeout, cwd=REPO, env=env)
        if check:
            assert result.returncode == 0, (
                f"kubectl {' '.join(args)} exited {result.returncode}\nstdout:\n"
                f"{result.stdout}\nstderr:\n{result.stderr}\nserver log:\n"
                f"{self.server.log_tail(15)}")
        return result

    # API
    def create_namespace(self, prefix: str = "ns") -> str:
        name = unique(prefix)
        response = self.http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        assert response.status_code == 201, response.text
        return name

    def create(self, namespace: str, item: dict[str, Any]) -> dict[str, Any]:
        plural = PLURALS[item["kind"]]
        response = self.http.post(f"{IAAS}/namespaces/{namespace}/{plural}", json=item)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        response = self.http.get(f"{IAAS}/namespaces/{namespace}/{plural}/{name}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def list(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{IAAS}/namespaces/{namespace}/{plural}")
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def delete(self, plural: str, namespace: str, name: str) -> None:
        response = self.http.delete(f"{IAAS}/namespaces/{namespace}/{plural}/{name}")
        assert response.status_code in (200, 202), response.text

    def wait_ready(self, plural: str, namespace: str, name: str, timeout: float = 30
                   ) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            current = self.get(plural, namespace, name)
            return current if is_ready(current) else None

        try:
            return eventually(ready, timeout, what=f"{plural}/{name} Ready")
        except pytest.fail.Exception:
            current = self.get(plural, namespace, name)
            pytest.fail(f"{plural}/{name} not Ready after {timeout}s; status: "
                        f"{json.dumps((current or {}).get('status'), indent=1)}\n"
                        f"server log:\n{self.server.log_tail(15)}")

    def wait_gone(self, plural: str, namespace: str, name: str, timeout: float = 30) -> None:
        eventually(lambda: self.get(plural, namespace, name) is None, timeout,
                   what=f"{plural}/{name} to be deleted")

    def network_with_subnet(self, namespace: str, name: str = "net",
                            cidr: str = "10.0.0.0/24") -> dict[str, Any]:
        """A Ready Network with a Ready Subnet (what a Server needs for its address)."""
        self.create(namespace, network(name))
        self.create(namespace, subnet(f"{name}-v4", name, cidr))
        self.wait_ready("subnets", namespace, f"{name}-v4")
        return self.wait_ready("networks", namespace, name)

    # admin endpoints
    def inventory(self) -> dict[str, list[dict[str, Any]]]:
        response = self.http.get(INVENTORY)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["simulated"] is True
        resources: dict[str, list[dict[str, Any]]] = body["resources"]
        return resources

    def metrics(self) -> str:
        response = self.http.get("/metrics")
        assert response.status_code == 200, response.text
        return response.text

    def metric(self, name: str, **labels: str) -> float:
        """One sample of ``/metrics`` (0 when the series does not exist yet)."""
        return metric_value(self.metrics(), name, **labels)


class Recorder:
    """Records every object a watch on one kind in one namespace delivers (in a thread), so
    short-lived states — a condition shown between two retries — are never missed."""

    def __init__(self, cluster: Cluster, plural: str, namespace: str) -> None:
        self.seen: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._started = threading.Event()
        self._client = httpx.Client(
            base_url=cluster.server.url, timeout=httpx.Timeout(30, read=0.3),
            verify=ssl.create_default_context(cafile=str(cluster.server.ca_file)),
            headers={"Authorization": f"Bearer {cluster.server.token}"})
        self._path = f"{IAAS}/namespaces/{namespace}/{plural}"
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        assert self._started.wait(10), "the watch did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._client.close()

    def _run(self) -> None:
        """Watch from the last seen resourceVersion; a short read timeout lets the thread
        notice ``_stop`` (a blocked read cannot be interrupted from another thread)."""
        version = "0"
        while not self._stop.is_set():
            params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "60"}
            try:
                with self._client.stream("GET", self._path, params=params) as response:
                    self._started.set()
                    for line in response.iter_lines():
                        if line.strip():
                            item = json.loads(line)["object"]
                            version = item["metadata"]["resourceVersion"]
                            self.seen.append(item)
                        if self._stop.is_set():
                            return
            except httpx.ReadTimeout:
                continue
            except (httpx.HTTPError, ValueError, KeyError):
                self._started.set()
                time.sleep(0.1)

    def conditions(self, name: str, type_: str) -> list[dict[str, Any]]:
        """Every distinct state of condition ``type_`` that object ``name`` went through."""
        out: list[dict[str, Any]] = []
        for item in list(self.seen):
            if item["metadata"]["name"] != name:
                continue
            found = condition(item, type_)
            if found and (not out or out[-1] != found):
                out.append(found)
        return out


def metric_value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


class Launcher:
    """Starts servers for one test (or module) and stops every one of them afterwards."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.clusters: list[Cluster] = []
        self._n = itertools.count()

    def config(self, config: dict[str, Any]) -> Path:
        return write_config(self.base / f"config-{next(self._n)}.yaml", config)

    def start(self, config: dict[str, Any] | None = None, data_dir: Path | None = None,
              store: str = "", extra_args: list[str] | None = None) -> Cluster:
        args = list(extra_args or [])
        if config is not None:
            args += ["--config", str(self.config(config))]
        if data_dir is None:
            data_dir = self.base / f"server-{next(self._n)}"
            data_dir.mkdir()
        srv = ScsServer(data_dir=data_dir, store=store, extra_args=args)
        workdir = self.base / f"kubectl-{next(self._n)}"
        workdir.mkdir()
        cluster = Cluster(srv, workdir)
        self.clusters.append(cluster)
        srv.start()
        return cluster

    def cleanup(self) -> None:
        for cluster in self.clusters:
            cluster.close()
            cluster.server.cleanup()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """Start servers for this test (stopped at its end)."""
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.cleanup()


SANDBOX_CONFIG: dict[str, Any] = {"services": ["tenancy", "iaas"],
                                  "providers": {"iaas": {"type": "sandbox", "speed": 10}}}
"""A fast sandbox (a Server boots in 0.2 s) with the default resync of 30 s, so that what
converges does so through the work queue's retries, not through a periodic resync."""


def launched(tmp_path_factory: pytest.TempPathFactory, name: str,
             config: dict[str, Any]) -> Iterator[Cluster]:
    """A module fixture's server with ``config``, stopped with its module."""
    launcher = Launcher(tmp_path_factory.mktemp(name))
    try:
        yield launcher.start(config)
    finally:
        launcher.cleanup()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One server with a fast sandbox for the tests of a module; tests use own namespaces."""
    yield from launched(tmp_path_factory, "cluster", SANDBOX_CONFIG)
