"""``scs terraform install``: make ``terraform init`` find the scs provider, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..terraform.install import default_dir, install, required_providers

terraform_app = typer.Typer(help="The Terraform provider of the SCS Central API.",
                            no_args_is_help=True)


@terraform_app.command("install")
def install_command(
    dir_: Annotated[Path | None, typer.Option(
        "--dir", help="Plugin directory to install into (default: ~/.terraform.d/plugins, "
                      "which terraform init searches by itself).")] = None,
) -> None:
    """Install the provider as a local plugin: no registry, no internet needed."""
    path = install(dir_)
    typer.echo(f"installed {path}")
    typer.echo("use it with:\n" + required_providers())
    if dir_ is not None and dir_.resolve() != default_dir().resolve():
        typer.echo(f"and run: terraform init -plugin-dir={dir_}")
