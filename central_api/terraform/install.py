"""Installing the provider where ``terraform init`` finds it: no registry, no internet.

Terraform looks for providers in its *implicit local mirror* directories, among them
``~/.terraform.d/plugins``, in the unpacked layout
``HOST/NAMESPACE/TYPE/VERSION/OS_ARCH/terraform-provider-TYPE_vVERSION``. The installed
file is a two-line shell script that runs this environment's Python on
``central_api.terraform``, so the provider is always the installed package's code.
``terraform init`` records its hash in ``.terraform.lock.hcl``; after installing from another
environment (another Python path), run ``terraform init -upgrade`` to record the new hash.

With ``--dir DIR``, the layout is written under DIR instead: give it to
``terraform init -plugin-dir=DIR`` or to a ``filesystem_mirror`` in the CLI configuration
(a CLI configuration with its own ``provider_installation`` block ignores the implicit
directories; add the mirror there).
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

from .. import __version__

HOST, NAMESPACE, TYPE = "scs.community", "scs", "scs"
SOURCE = f"{HOST}/{NAMESPACE}/{TYPE}"
"""What users write in ``required_providers``: ``scs = { source = "scs.community/scs/scs" }``."""
VERSION = __version__
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def default_dir() -> Path:
    return Path.home() / ".terraform.d" / "plugins"


def target() -> str:
    """Terraform's OS_ARCH of this machine, e.g. ``linux_amd64``."""
    machine = platform.machine().lower()
    return f"{platform.system().lower()}_{_ARCH.get(machine, machine)}"


def install(plugin_dir: Path | None = None, python: str = sys.executable) -> Path:
    """Write the provider executable into ``plugin_dir`` (default ~/.terraform.d/plugins)
    and return its path. Writing again replaces it atomically."""
    folder = (plugin_dir or default_dir()) / HOST / NAMESPACE / TYPE / VERSION / target()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"terraform-provider-{TYPE}_v{VERSION}"
    script = f'#!/bin/sh\nexec {shlex.quote(python)} -m central_api.terraform "$@"\n'
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".provider-")
    with os.fdopen(fd, "w") as out:
        out.write(script)
    os.chmod(tmp, 0o755)  # noqa: S103 - an executable for Terraform, not a secret  # nosec B103
    os.replace(tmp, path)
    return path


def required_providers() -> str:
    return ("terraform {\n  required_providers {\n"
            f'    scs = {{ source = "{SOURCE}", version = "{VERSION}" }}\n  }}\n}}\n')
