"""Start a real ``scs serve`` process for end-to-end tests (TLS, generated kubeconfig)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
TENANTS_AS_PLAIN_OBJECTS = {"identity": {"type": "none"}}
"""Config for suites that use Tenants as plain objects (API semantics, the tenant boundary):
the embedded default onboards every Tenant against the sandbox identity, which adds a
namespace, status writes and a deletion guard those suites do not test (the onboarding,
tour and federation-to-Keystone suites do)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ScsServer:
    """An ``scs serve`` child process on 127.0.0.1 with its own data directory."""

    def __init__(self, data_dir: Path | None = None, store: str = "",
                 extra_args: list[str] | None = None,
                 address_space: int | None = None,
                 config: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="scs-test-"))
        self.port = free_port()
        self.store = store
        self.extra_args = [*(extra_args or [])]
        if config is not None:  # beside the data directory: a server owns what is inside
            config_file = self.data_dir.with_name(self.data_dir.name + ".config.yaml")
            config_file.write_text(yaml.safe_dump(config))
            self.extra_args += ["--config", str(config_file)]
        self.address_space = address_space
        """Bytes of address space the child may map (``prlimit --as``), so that a memory
        regression fails a test instead of exhausting the machine; None: unlimited."""
        self.env = env or {}
        """More environment of the child (e.g. SCS_TEST_CLOCK_FILE)."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def token(self) -> str:
        config = yaml.safe_load(self.kubeconfig.read_text())
        return str(config["users"][0]["user"]["token"])

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.crt"

    def start(self, timeout: float = 30) -> ScsServer:
        args = [sys.executable, "-m", "central_api.cli", "serve",
                "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir),
                "--log-level", "warning", *self.extra_args]
        if self.store:
            args += ["--store", self.store]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.address_space:
            args = ["prlimit", f"--as={self.address_space}", "--", *args]
            env["MALLOC_ARENA_MAX"] = "2"  # glibc maps 64 MiB of arena per thread otherwise
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"scs serve exited early:\n{self.log_tail()}")
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"scs serve not ready after {timeout}s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        if not self.ca_file.exists():
            return False
        try:
            # Inside the try: the server may still be writing ca.crt (an empty or partial
            # file makes the SSL context raise SSLError, an OSError).
            context = ssl.create_default_context(cafile=str(self.ca_file))
            with urllib.request.urlopen(f"{self.url}/readyz", context=context,  # noqa: S310
                                        timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, like a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """A raw HTTPS call with the admin token (for protocol-level assertions)."""
        import httpx

        with httpx.Client(base_url=self.url, verify=str(self.ca_file), timeout=30,
                          headers={"Authorization": f"Bearer {self.token}"}) as client:
            if isinstance(body, bytes | str):
                response = client.request(method, path, content=body, headers=headers)
            else:
                response = client.request(method, path, json=body, headers=headers)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text
