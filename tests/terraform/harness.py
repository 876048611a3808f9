"""Running the real ``terraform`` binary against a real ``scs serve``, isolated from the host.

A :class:`Workspace` is one Terraform working directory with its own configuration; every
command runs with ``HOME`` (and the XDG directories: the provider caches its generated types
there) in a temporary directory (where ``scs terraform install`` put the
provider), an empty CLI configuration (``TF_CLI_CONFIG_FILE``), ``TF_IN_AUTOMATION=1``,
``CHECKPOINT_DISABLE=1``, ``-input=false -no-color``, and none of the host's ``TF_*``,
``KUBECONFIG`` or ``SCS_*`` variables: a test never reads or writes the real home, and
Terraform never calls out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central_api.terraform.install import SOURCE

TERRAFORM = shutil.which("terraform") or "terraform"
COMMAND_TIMEOUT = 300


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def terraform_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a terraform command: the host's, minus what could leak in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TF_", "SCS_")) and k not in ("KUBECONFIG",)}
    cli_config = home / "terraformrc"
    cli_config.touch()
    env.update({"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
                "XDG_DATA_HOME": str(home / ".local" / "share"),
                "XDG_CONFIG_HOME": str(home / ".config"), "TF_CLI_CONFIG_FILE": str(cli_config),
                "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", **(extra or {})})
    return env


def provider_block(kubeconfig: Path | None = None, *, host: str = "", token: str = "",
                   ca_file: Path | None = None) -> str:
    """HCL of the provider block: a kubeconfig, or host + token (+ CA)."""
    if kubeconfig is not None:
        return f'provider "scs" {{\n  kubeconfig = {json.dumps(str(kubeconfig))}\n}}\n'
    lines = [f"  host = {json.dumps(host)}", f"  token = {json.dumps(token)}"]
    if ca_file is not None:
        lines.append(f"  ca_file = {json.dumps(str(ca_file))}")
    return 'provider "scs" {\n' + "\n".join(lines) + "\n}\n"


class Workspace:
    """One Terraform working directory: write a configuration, run commands on it."""

    def __init__(self, path: Path, home: Path, provider: str,
                 env: dict[str, str] | None = None) -> None:
        self.path = path
        self.home = home
        self.provider = provider
        self.env = terraform_env(home, env)
        self.initialized = False
        self.timings: list[tuple[str, float]] = []
        """(command, seconds) of every run, for the suite's time budget."""
        path.mkdir(parents=True, exist_ok=True)

    def write(self, resources: str) -> Workspace:
        """main.tf: required_providers, the provider block and ``resources`` (HCL)."""
        header = ("terraform {\n  required_providers {\n"
                  f'    scs = {{ source = "{SOURCE}" }}\n  }}\n}}\n\n')
        (self.path / "main.tf").write_text(header + self.provider + "\n" + resources)
        return self

    def run(self, *args: str, check: bool = True) -> Result:
        """``terraform ARGS -input=false -no-color`` (plus -auto-approve where it applies)."""
        options = ["-no-color"]  # before the positional arguments: import takes no others
        if args[0] in ("init", "plan", "apply", "destroy", "import", "refresh"):
            options.append("-input=false")
        if args[0] in ("apply", "destroy"):
            options.append("-auto-approve")
        words = 2 if args[0] == "state" else 1  # "state list", "state rm"
        command = [TERRAFORM, *args[:words], *options, *args[words:]]
        started = time.monotonic()
        done = subprocess.run(command, cwd=self.path, env=self.env, capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT, check=False)
        result = Result(done.returncode, done.stdout, done.stderr)
        self.timings.append((" ".join(args), round(time.monotonic() - started, 1)))
        if check and result.code != 0:
            raise AssertionError(f"terraform {' '.join(args)} failed:\n{result}")
        return result

    def init(self) -> Result:
        result = self.run("init")
        self.initialized = True
        return result

    def _ready(self) -> None:
        if not self.initialized:
            self.init()

    def apply(self, *args: str, check: bool = True) -> Result:
        self._ready()
        return self.run("apply", *args, check=check)

    def destroy(self, check: bool = True) -> Result:
        self._ready()
        return self.run("destroy", check=check)

    def plan(self, *args: str) -> Result:
        """``terraform plan -detailed-exitcode``: code 0 no changes, 2 changes, 1 error."""
        self._ready()
        return self.run("plan", "-detailed-exitcode", *args, check=False)

    def assert_no_changes(self) -> None:
        result = self.plan()
        assert result.code == 0, f"expected no changes:\n{result}"

    def import_(self, address: str, ident: str, check: bool = True) -> Result:
        self._ready()
        return self.run("import", address, ident, check=check)

    def state(self, address: str) -> dict[str, Any]:
        """The resource's (or data source's, ``data.scs_x.y``) attributes, as stored in
        terraform.tfstate (read from the file: no terraform run, no provider start)."""
        stored = json.loads((self.path / "terraform.tfstate").read_text())
        for resource in stored.get("resources", []):
            prefix = "data." if resource["mode"] == "data" else ""
            if f"{prefix}{resource['type']}.{resource['name']}" == address:
                return dict(resource["instances"][0]["attributes"])
        raise KeyError(f"{address} is not in the state")

    def addresses(self) -> list[str]:
        listed = self.run("state", "list", check=False)
        return [line for line in listed.stdout.splitlines() if line]

    def has_resources(self) -> bool:
        """Something is in the state (read from the file: no terraform run)."""
        state = self.path / "terraform.tfstate"
        if not state.exists():
            return False
        return bool(json.loads(state.read_text()).get("resources"))

    def output(self, name: str) -> Any:
        return json.loads(self.run("output", "-json", name).stdout)
