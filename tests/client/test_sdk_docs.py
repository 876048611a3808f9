"""docs/sdk.md and examples/sdk/, as written, against a fresh server.

Every ``python`` block of the guide is a complete program; they run in order, each in its
own interpreter, from a directory where ``scs-data`` is the server's data directory, with
``KUBECONFIG`` set to its admin kubeconfig (what a reader does after ``scripts/serve``).
Each must succeed and print what the guide says it does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import REPO, ScsServer

pytestmark = pytest.mark.slow

BLOCK = re.compile(r"^## (.+?)\n(?:.*?\n)*?```python\n(.*?)```", re.M | re.S)
SHOWS: dict[str, list[str]] = {
    "Connect": ["namespace default"],
    "Connect#2": ["configured True"],
    "Typed objects: onboard a tenant": ["created acme defaults: ['iaas', 'iam']",
                                        "ready sandbox (simulated)", "['acme']"],
    "Servers in the tenant's namespace": ["web-1 ready at ['10.20.0.", "web-2 ready at"],
    "Changing objects": ["web tier", "conflict:", "forced: the db tier's now"],
    "Errors carry the server's Status": ["404: servers.iaas.scs.community \"no-such-server\"",
                                         "422 fields: ['spec.flavor']", "find: None"],
    "Watching": ["MODIFIED web-1"],
    "Custom resources": ["backup nightly 0 3 * * *"],
    "Deleting": ["left: []"],
    "Asynchronous code": ["clusters in acme: 0"],
}


def blocks() -> list[tuple[str, str]]:
    text = (REPO / "docs" / "sdk.md").read_text()
    found: list[tuple[str, str]] = []
    for section in re.split(r"(?=^## )", text, flags=re.M):
        title = section.splitlines()[0][3:] if section.startswith("## ") else ""
        for i, code in enumerate(re.findall(r"```python\n(.*?)```", section, re.S)):
            found.append((title if i == 0 else f"{title}#{i + 1}", code))
    return found


BLOCKS = blocks()


def test_every_block_of_the_guide_is_checked() -> None:
    assert [title for title, _ in BLOCKS] == list(SHOWS)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    server = ScsServer()
    try:
        server.start()
        work = tmp_path_factory.mktemp("sdk-docs")
        (work / "scs-data").symlink_to(server.data_dir)
        env = {**os.environ, "KUBECONFIG": str(server.kubeconfig),
               "PYTHONPATH": str(REPO)}
        yield work, env
    finally:
        server.cleanup()


def run(args: list[str], work: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, f"{args[-1][:60]!r} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_guide_runs_as_written(workdir: tuple[Path, dict[str, str]]) -> None:
    work, env = workdir
    for title, code in BLOCKS:
        output = run([sys.executable, "-c", code], work, env)
        for expected in SHOWS[title]:
            assert expected in output, f"{title}: {expected!r} not in:\n{output}"


def test_the_examples_run(workdir: tuple[Path, dict[str, str]]) -> None:
    work, env = workdir
    examples = REPO / "examples" / "sdk"
    output = run([sys.executable, str(examples / "onboard_tenant.py"), "globex",
                  "--admin", "hank@globex.example"], work, env)
    assert "globex is Ready" in output
    output = run([sys.executable, str(examples / "web_tier.py"), "--namespace", "globex",
                  "--servers", "2"], work, env)
    assert "web-1" in output and "removed" in output
    output = run([sys.executable, str(examples / "follow_servers.py"), "--namespace",
                  "globex", "--seconds", "2"], work, env)
    assert "watched" in output
