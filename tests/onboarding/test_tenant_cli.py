"""``scs tenant``: bad input is refused before anything is sent; against a real server the
command creates the Tenant, reports the server's refusals, and ``show`` prints the steps.

(The full onboarding with progress until Ready runs against the real Keystone in
``test_keystone.py``.)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from central_api.cli.main import app
from tests.server import ScsServer

runner = CliRunner()


@pytest.mark.parametrize(("args", "message"), [
    (["acme", "--display-name", "Acme", "--admin", "a@acme.example", "--quota", "cores"],
     "expected KEY=N"),
    (["acme", "--display-name", "Acme", "--admin", "a@acme.example", "--quota", "disks=3"],
     "expected KEY=N"),
    (["--display-name", "Acme", "--admin", "a@acme.example"], "missing tenant name"),
    (["acme", "--display-name", "Acme", "--admin", "a@acme.example",
      "--idp-issuer", "https://login.acme.example"], "go together"),
])
def test_bad_input_is_refused_before_contacting_the_api(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["tenant", "onboard", *args, "--kubeconfig", "/nonexistent"])
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    started = ScsServer().start()
    try:
        yield started
    finally:
        started.cleanup()


def scs(server: ScsServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "central_api.cli", "tenant", *args,
                           "--kubeconfig", str(server.kubeconfig)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
def test_onboard_without_waiting_then_show(server: ScsServer) -> None:
    created = scs(server, "onboard", "initech", "--display-name", "Initech",
                  "--admin", "peter@initech.example", "--contact", "it@initech.example",
                  "--quota", "cores=8", "--no-wait")
    assert created.returncode == 0, created.stderr
    assert "tenant initech created" in created.stdout
    again = scs(server, "onboard", "initech", "--display-name", "Initech",
                "--admin", "peter@initech.example", "--contact", "", "--no-wait")
    assert again.returncode == 0 and "exists" in again.stdout

    shown = scs(server, "show", "initech")
    assert shown.returncode == 0, shown.stderr
    assert "Tenant initech (Initech)" in shown.stdout
    assert "NamespaceReady" in shown.stdout and "CredentialsReady" in shown.stdout


@pytest.mark.slow
def test_server_refusals_are_reported(server: ScsServer) -> None:
    refused = scs(server, "onboard", "Not_A_Label", "--display-name", "X", "--admin", "x",
                  "--contact", "", "--no-wait")
    assert refused.returncode == 1
    assert "Not_A_Label" in refused.stderr
    plain_http = scs(server, "onboard", "hooli", "--display-name", "Hooli", "--admin", "x",
                     "--contact", "", "--idp-issuer", "http://login.hooli.example",
                     "--idp-client-id", "scs", "--no-wait")
    assert plain_http.returncode == 1
    assert "spec.federation.issuerURL" in plain_http.stderr
    missing = scs(server, "show", "nobody")
    assert missing.returncode == 1 and "not found" in missing.stderr
