"""The package's layers import downward only: the contracts in pyproject.toml hold.

Checked with import-linter (``lint-imports``), which reads ``[tool.importlinter]``; the
second test shows the check fails when a lower layer imports a higher one, on a copy of the
package with one such import added.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_every_layer_imports_only_layers_below_it() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_registry_importing_the_http_layer_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "central_api", tmp_path / "central_api",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "central_api" / "registry" / "resources.py").open("a") as module:
        module.write("\nfrom ..server import app as _app  # noqa: E402\n")
    done = lint(tmp_path)
    assert done.returncode != 0
    assert "central_api.registry is not allowed to import central_api.server" in done.stdout
