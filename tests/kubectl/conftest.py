"""Fixtures for the end-to-end suite with the real ``kubectl`` binaries (1.27 and 1.33).

Every test runs once per kubectl version against one ``scs serve`` per version. Tests use
their own namespaces and object names so they stay independent of each other.
"""

from __future__ import annotations

import json
import os
import queue
import string
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.server import TENANTS_AS_PLAIN_OBJECTS, ScsServer

KUBECTL_DIR = Path(os.environ.get("SCS_KUBECTL_DIR", "/usr/lib/google-cloud-sdk/bin"))
VERSIONS = ["1.27", "1.33"]
MANIFESTS = Path(__file__).resolve().parent / "manifests"


class Kubectl:
    """Runs one kubectl binary against one server with the admin kubeconfig."""

    def __init__(self, binary: Path, version: str, server: ScsServer, workdir: Path) -> None:
        self.binary = binary
        self.version = version
        self.server = server
        self.workdir = workdir
        self.env = {**os.environ, "KUBECONFIG": str(server.kubeconfig),
                    "HOME": str(workdir), "KUBECACHEDIR": str(workdir / "cache")}

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])

    def command(self, *args: str) -> list[str]:
        return [str(self.binary), *args]

    def run(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), input=input, capture_output=True,
                              text=True, timeout=timeout, cwd=self.workdir,
                              env={**self.env, **(env or {})})

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, self._describe(args, result)
        return result

    def fails(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **kwargs)
        assert result.returncode != 0, self._describe(args, result)
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "-o", "json", **kwargs).stdout)

    def apply(self, manifest: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``kubectl apply -f -`` with the manifest text on stdin."""
        return self.ok("apply", "-f", "-", *args, input=manifest)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.workdir,
                                env=self.env)

    def _describe(self, args: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> str:
        return (f"kubectl {self.version} {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
                f"server log:\n{self.server.log_tail(20)}")


def manifest(file: str, **values: str) -> str:
    """A YAML fixture from ``manifests/`` with ``$name``-style placeholders filled in."""
    return string.Template((MANIFESTS / file).read_text()).substitute(values)


def eventually(check: Callable[[], Any], timeout: float = 15, interval: float = 0.1,
               message: str = "condition not met") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{message} (after {timeout}s; last value: {last!r})")


class Lines:
    """Collects the lines of a background kubectl's stdout or stderr as they come."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.stream = stream
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 15) -> str:
        def check() -> str | None:
            while not self.lines.empty():
                self.seen.append(self.lines.get())
            return next((line for line in self.seen if text in line), None)
        return str(eventually(check, timeout, message=f"output never showed {text!r}: "
                                                      f"{self.seen}"))


@pytest.fixture(scope="session", params=VERSIONS, ids=[f"kubectl{v}" for v in VERSIONS])
def kubectl(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """A kubectl of one version and a fresh ``scs serve`` for it.

    A missing binary fails the tests (never skips): CI installs both versions, and a
    silently skipped version would let client-compatibility regressions through.
    """
    version = request.param
    binary = KUBECTL_DIR / f"kubectl.{version}"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"kubectl {version} not found at {binary}; install the Debian package "
                    "'kubectl' from the Google Cloud SDK repository (it ships kubectl.1.27 "
                    "... kubectl.1.33)")
    server = ScsServer(config=TENANTS_AS_PLAIN_OBJECTS).start()
    try:
        yield Kubectl(binary, version, server, tmp_path_factory.mktemp(f"kubectl{version}"))
    finally:
        server.cleanup()


@pytest.fixture
def name(request: pytest.FixtureRequest, kubectl: Kubectl) -> str:
    """A short DNS-label name unique to the test (for namespaces and cluster objects)."""
    base = request.node.originalname.removeprefix("test_").replace("_", "-")[:40].rstrip("-")
    return f"{base}-{kubectl.minor}"


@pytest.fixture
def namespace(kubectl: Kubectl, name: str) -> str:
    """A namespace of the test's own, created with kubectl."""
    kubectl.ok("create", "namespace", name)
    return name
