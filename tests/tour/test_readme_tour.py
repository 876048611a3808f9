"""The README's tour, step by step, as written, with the real kubectl against a fresh server.

The tour is the first thing a new user runs, so it must work on the embedded default (no
configuration: sandbox cloud and sandbox identity). Each ``### N. Title`` step's ``sh``
block runs in its own bash (``-e -o pipefail``), from a directory where ``scs-data`` is the
server's data directory and ``examples`` the repository's, in order; each must succeed and
print what the tour says it shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import REPO, ScsServer

pytestmark = pytest.mark.slow

TOUR_HEADING = "## A tour of the product with kubectl"
STEP = re.compile(r"^### (\d+)\. (.+?)\n+(?:.*?\n)*?```sh\n(.*?)```", re.M | re.S)

SHOWS: dict[int, list[str]] = {
    1: ["default", "tenants", "FIELDS", "system:masters"],
    2: ["condition met", "sandbox (simulated)", "tenancy.scs.community/tenant=acme",
        "tenant-admin", "alice@acme.example", "openstack-credentials"],
    3: ['Context "acme" created', 'Switched to context "acme"'],
    4: ["system:serviceaccount:acme:ops", "scs:iam:devs-member", "scs:iam:carol-viewer",
        "bob@acme.example"],
    5: ["condition met", "loadbalancer", 'deleted'],
    6: ["openstack-scs2-1-34-v2", "condition met", "1.34.7", "2/2", "sandbox (simulated)",
        '"expirationTimestamp":"', "3/3", 'cluster.kaas.scs.community "demo" deleted'],
    7: ["s3cret", "acme", "noc@acme.example", 'namespace "team-a" deleted'],
    8: ["condition met"],
    9: ["block-storage", "kaas", "incident.status.scs.community/block-storage-upgrade created",
        '"activelyAffectedBy":', '"displayName":"Block storage upgrade"', '"severity":0',
        'incident.status.scs.community "block-storage-upgrade" deleted'],
    10: ["Server", "SCS-2V-4"],
}
"""What each step's output must contain (one line of what the tour's comments promise)."""


def tour_steps() -> list[tuple[int, str, str]]:
    readme = (REPO / "README.md").read_text()
    tour = readme[readme.index(TOUR_HEADING):]
    tour = tour[:tour.find("\n## ", len(TOUR_HEADING))]
    return [(int(number), title, script) for number, title, script in STEP.findall(tour)]


STEPS = tour_steps()


def test_the_tour_has_its_steps_in_order() -> None:
    assert [number for number, _, _ in STEPS] == sorted(SHOWS)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory like the repository root after ``scripts/serve``: ``scs-data`` and
    ``examples``, with the embedded default server running."""
    root = tmp_path_factory.mktemp("tour")
    (root / "examples").symlink_to(REPO / "examples")
    server = ScsServer(data_dir=root / "scs-data")
    (root / "scs-data").mkdir()
    server.start()
    try:
        yield root
    finally:
        server.stop()
        shutil.rmtree(root / "scs-data", ignore_errors=True)


@pytest.mark.parametrize(("number", "title", "script"), STEPS,
                         ids=[f"{n}-{t}" for n, t, _ in STEPS])
def test_tour_step(workdir: Path, number: int, title: str, script: str) -> None:
    env = {**os.environ, "KUBECONFIG": str(workdir / "scs-data" / "admin.kubeconfig")}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=workdir,
                          env=env, capture_output=True, text=True, timeout=240, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"step {number} ({title}) failed:\n{output}"
    for shown in SHOWS[number]:
        assert shown in output, f"step {number} ({title}) did not show {shown!r}:\n{output}"
