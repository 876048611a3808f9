"""Debian's real Prometheus and Alertmanager on 127.0.0.1, configured to scrape and to
notify a test ``scs serve`` over HTTPS (its CA, a ServiceAccount token in a file — as an
operator configures them, docs/status-alerts.md).

The packages (``prometheus``, ``prometheus-alertmanager``) are installed by scripts/test;
without them the suites fail, never skip."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.server import ScsServer, free_port

BINARIES = {"prometheus": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager"}


def require_binaries() -> None:
    missing = [package for package, binary in BINARIES.items() if not shutil.which(binary)]
    if missing:
        pytest.fail("Debian's " + " and ".join(missing) + " are not installed (scripts/test "
                    "installs them: apt-get install " + " ".join(missing) + ")")


class Daemon:
    """A child process with a private directory, ready once ``/-/ready`` answers 200."""

    name = ""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"scs-{self.name}-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "log.txt"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), cwd=self.dir, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def get(self, path: str) -> Any:
        import json

        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as answer:  # noqa: S310
            return json.loads(answer.read())

    def reload(self) -> None:
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            assert answer.status == 200

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Alertmanager(Daemon):
    """Routes every alert at once to the server's receiver (short group timers)."""

    name = "alertmanager"

    def __init__(self, server: ScsServer, token: str) -> None:
        super().__init__()
        (self.dir / "token").write_text(token)
        self.dir.joinpath("token").chmod(0o600)
        config = {
            "route": {"receiver": "scs", "group_by": ["alertname", "component"],
                      "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "scs", "webhook_configs": [{
                "url": f"{server.url}/webhooks/alertmanager", "send_resolved": True,
                "http_config": {
                    "authorization": {"credentials_file": str(self.dir / "token")},
                    "tls_config": {"ca_file": str(server.ca_file)}}}]}]}
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(config))

    def command(self) -> list[str]:
        return ["prometheus-alertmanager", f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=", "--log.level=info"]


class Prometheus(Daemon):
    """Scrapes the server's ``/metrics`` every second and evaluates ``rules`` as often,
    sending what fires to ``alertmanager``."""

    name = "prometheus"

    def __init__(self, server: ScsServer, token: str, alertmanager: Alertmanager) -> None:
        super().__init__()
        (self.dir / "token").write_text(token)
        self.dir.joinpath("token").chmod(0o600)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
            "rule_files": [str(self.dir / "rules.yml")],
            "scrape_configs": [{
                "job_name": "scs-central-api", "scheme": "https",
                "authorization": {"credentials_file": str(self.dir / "token")},
                "tls_config": {"ca_file": str(server.ca_file)},
                "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}]}]}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.set_rules([])

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        groups = {"groups": [{"name": "scs-test", "interval": "1s", "rules": rules}]}
        (self.dir / "rules.yml").write_text(yaml.safe_dump(groups))

    def command(self) -> list[str]:
        return ["prometheus", f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                "--rules.alert.resend-delay=1s"]
