"""Fixtures of the Terraform provider suites: the provider installed by ``scs terraform
install`` into a temporary HOME (once per session), a real ``scs serve`` per module, an SDK
client as its admin, and ``workspace``: a factory of isolated Terraform working directories
(destroyed at the end of the test when they still hold something).

A scenario test::

    def test_network(workspace, admin):
        ws = workspace()                     # provider configured with the admin kubeconfig
        ws.write('resource "scs_network" "web" { metadata = { ... } }')
        ws.apply()
        ws.assert_no_changes()
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import pytest

from central_api.client import Client
from tests.server import ScsServer
from tests.terraform.harness import TERRAFORM, Workspace, provider_block
from tests.terraform.scenario import FAST_SANDBOX

MIN_TERRAFORM = (1, 11)


@pytest.fixture(scope="session")
def terraform_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME with the provider installed by the ``scs terraform install`` command itself.

    Fails (never skips) without terraform >= 1.11 on PATH: the machines have it."""
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH (the test machines have 1.11)")
    version = subprocess.run([TERRAFORM, "version", "-json"], capture_output=True, text=True,
                             check=True, env={**os.environ, "CHECKPOINT_DISABLE": "1"})
    numbers = tuple(int(p) for p in json.loads(version.stdout)["terraform_version"]
                    .split(".")[:2])
    if numbers < MIN_TERRAFORM:
        pytest.fail(f"terraform {numbers} is older than {MIN_TERRAFORM}")
    home = tmp_path_factory.mktemp("tf-home")
    scs = Path(sys.executable).with_name("scs")
    subprocess.run([str(scs), "terraform", "install"], check=True, capture_output=True,
                   env={**os.environ, "HOME": str(home)})
    return home


@pytest.fixture(scope="module")
def scs_server() -> Iterator[ScsServer]:
    """One server per test module, on a sandbox fast enough for Ready within seconds."""
    srv = ScsServer(config=FAST_SANDBOX)
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def admin(scs_server: ScsServer) -> Iterator[Client]:
    """The SDK as the server's bootstrap admin (arrange and check beside Terraform)."""
    with Client(kubeconfig=scs_server.kubeconfig) as client:
        yield client


WorkspaceFactory = Callable[..., Workspace]


@pytest.fixture
def workspace(tmp_path: Path, terraform_home: Path, scs_server: ScsServer
              ) -> Iterator[WorkspaceFactory]:
    """``workspace(provider=None, env=None)``: a new working directory; ``provider`` is the
    HCL of the provider block (default: the admin kubeconfig; see harness.provider_block)."""
    made: list[Workspace] = []
    numbers = count()

    def make(provider: str | None = None, env: dict[str, str] | None = None) -> Workspace:
        ws = Workspace(tmp_path / f"ws{next(numbers)}", terraform_home,
                       provider or provider_block(scs_server.kubeconfig), env)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        if ws.has_resources():
            ws.destroy(check=False)
        print(f"terraform timings of {ws.path.name}: {ws.timings}")
