"""``scs terraform install`` and ``terraform init`` with no registry and no internet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from central_api.terraform.install import SOURCE, VERSION, target
from tests.terraform.harness import Workspace


def test_install_into_a_directory_then_init_offline(tmp_path: Path, terraform_home: Path
                                                    ) -> None:
    plugins = tmp_path / "plugins"
    scs = Path(sys.executable).with_name("scs")
    done = subprocess.run([str(scs), "terraform", "install", "--dir", str(plugins)],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert f'source = "{SOURCE}"' in done.stdout and "-plugin-dir" in done.stdout
    binary = plugins / SOURCE / VERSION / target() / f"terraform-provider-scs_v{VERSION}"
    assert os.access(binary, os.X_OK)
    assert sys.executable in binary.read_text(), "runs this environment's Python"

    ws = Workspace(tmp_path / "ws", terraform_home, "")
    ws.write("")
    ws.run("init", f"-plugin-dir={plugins}")
    lock = (ws.path / ".terraform.lock.hcl").read_text()
    assert f'provider "{SOURCE}"' in lock and f'version = "{VERSION}"' in lock
    assert "h1:" in lock, "terraform recorded the installed provider's hash"
    assert SOURCE in ws.run("providers").stdout


def test_the_default_install_is_found_by_init_without_a_cli_configuration(
        tmp_path: Path, terraform_home: Path) -> None:
    ws = Workspace(tmp_path / "ws", terraform_home, "")
    ws.write("")
    done = ws.init()
    assert f"Installing {SOURCE}" in done.stdout, done
    assert f"Installed {SOURCE} v{VERSION} (unauthenticated)" in done.stdout, done


def test_an_unconfigured_provider_says_what_to_set(tmp_path: Path, terraform_home: Path
                                                   ) -> None:
    ws = Workspace(tmp_path / "ws", terraform_home, 'provider "scs" {}\n')
    ws.write('data "scs_tenant" "any" {\n  metadata = { name = "acme" }\n}\n')
    failed = ws.plan()
    assert failed.code == 1 and "The scs provider is not configured" in failed.stderr, failed
    assert "SCS_HOST and SCS_TOKEN" in failed.stderr and "KUBECONFIG" in failed.stderr
    assert not (terraform_home / ".cache" / "tf-python-provider").exists(), \
        "no key cached on disk: the provider's TLS key lives in its memory only"
    assert list((terraform_home / ".cache" / "scs-terraform").glob("types-*.json")), \
        "the generated types are cached for the next start"
