"""``scs tenant``, ``scs cluster`` and ``scs usage`` reach the API through the SDK: what goes
wrong is one line on stderr and exit 1 (never a traceback) — a kubeconfig that cannot be used,
an API that cannot be reached, a credential the server refuses (401), an identity without the
right (403), an invalid object (422, with its field paths) — and what they write is owned by
the command's own field manager.

The commands run as subprocesses against a real ``scs serve`` (sandbox backends), as a user
runs them; the happy paths and progress output are in tests/onboarding/test_tenant_cli.py,
tests/kaas/test_cli_cluster.py and tests/metering/test_usage.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from central_api.cli.connection import failure
from central_api.client import ApiResource, Client, Invalid
from central_api.kinds.core import Namespace
from central_api.kinds.tenancy import TENANT
from central_api.machinery.errors import Cause
from tests.client.conftest import service_account_token
from tests.client.test_auth import kubeconfig
from tests.integration.conftest import unique
from tests.server import ScsServer, free_port

REPO = Path(__file__).resolve().parents[2]
PERIOD = ("--from", "2026-01-05", "--to", "2026-01-06")
COMMANDS = {
    "tenant": ("tenant", "show", "acme"),
    "cluster": ("cluster", "list"),
    "usage": ("usage", "--tenant", "acme", *PERIOD),
}
"""One read-only command of each group."""


def scs(*args: str, config: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "central_api.cli", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def one_line_failure(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command that failed with exit 1."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def token_kubeconfig(server: ScsServer, path: Path, token: str) -> Path:
    return kubeconfig(path, server.url, {"token": token}, server.ca_file.read_bytes())


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_unusable_kubeconfig_is_one_line(command: tuple[str, ...], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"

    line = one_line_failure(scs(*command, config=missing, home=tmp_path))

    assert "cannot read kubeconfig" in line and str(missing) in line


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_an_unreachable_api_is_one_line(command: tuple[str, ...], tmp_path: Path) -> None:
    nowhere = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    config = kubeconfig(tmp_path / "config", nowhere, {"token": "t"}, b"")

    line = one_line_failure(scs(*command, config=config, home=tmp_path))

    assert f"cannot reach {nowhere}" in line


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_refused_credential_is_one_line(server: ScsServer, command: tuple[str, ...],
                                          tmp_path: Path) -> None:
    config = token_kubeconfig(server, tmp_path / "config", "not-a-valid-token")

    line = one_line_failure(scs(*command, config=config, home=tmp_path))

    assert "scs login renews it" in line


@pytest.mark.slow
def test_an_identity_without_rights_is_refused_in_one_line(
        server: ScsServer, client: Client, tmp_path: Path) -> None:
    namespace = unique("cli")
    client.create(Namespace(metadata={"name": namespace}))
    config = token_kubeconfig(server, tmp_path / "config",
                              service_account_token(client, namespace))

    listed = one_line_failure(scs("cluster", "list", "-n", namespace, config=config,
                                  home=tmp_path))
    onboarded = one_line_failure(scs("tenant", "onboard", unique("t"), "--display-name", "X",
                                     "--admin", "x", "--contact", "", "--no-wait",
                                     config=config, home=tmp_path))

    assert "forbidden" in listed and namespace in listed
    assert "forbidden" in onboarded


@pytest.mark.slow
def test_an_invalid_cluster_is_one_line_naming_the_field(server: ScsServer,
                                                         tmp_path: Path) -> None:
    pool = "name=general,flavor=SCS-2V-4,replicas=1"

    line = one_line_failure(scs("cluster", "create", "dup", "--version", "1.33",
                                "--pool", pool, "--pool", pool, config=server.kubeconfig,
                                home=tmp_path))

    assert line.startswith("cluster dup not created: ") and "spec.nodePools[1].name" in line


@pytest.mark.slow
def test_writes_are_owned_by_the_command(server: ScsServer, client: Client,
                                         tmp_path: Path) -> None:
    name = unique("t")

    done = scs("tenant", "onboard", name, "--display-name", "Owned", "--admin", "x",
               "--contact", "", "--no-wait", config=server.kubeconfig, home=tmp_path)

    assert done.returncode == 0, done.stderr
    tenant: dict[str, Any] = client.get(ApiResource.of(TENANT).as_dicts(), name)
    managers = {entry["manager"] for entry in tenant["metadata"]["managedFields"]}
    assert "scs-tenant" in managers, managers


def test_a_refusal_whose_message_omits_a_field_gets_it_appended() -> None:
    refused = Invalid(422, "Invalid", 'Cluster "c" is invalid: spec.a: bad',
                      causes=[Cause("spec.a", "bad"), Cause("spec.b", "missing")])

    assert failure(refused, "cluster c not created") == \
        'cluster c not created: Cluster "c" is invalid: spec.a: bad; spec.b: missing'
