"""``scs controllers``: run the reconcilers as their own process against any KRM API."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..config import load_config
from ..controllers.client import HttpClient
from ..controllers.iaas import iaas_reconcilers
from ..controllers.manager import Manager
from ..providers import build_provider
from ..providers.base import Provider

err = Console(stderr=True)


def controllers_command(
    kubeconfig: Annotated[Path, typer.Option(help="Kubeconfig of the API to reconcile "
                                                  "(needs write access to the IaaS kinds, "
                                                  "their status and leases).")],
    context: Annotated[str, typer.Option(help="Kubeconfig context (default: current).")] = "",
    config: Annotated[Path | None, typer.Option(help="Operator configuration with the "
                                                     "providers.")] = None,
    leader_elect: Annotated[bool, typer.Option(help="Run only while holding the lease.")]
    = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Reconcile IaaS objects against the configured provider, using only the public API."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_config(config)
        provider_config = settings.provider("iaas")
        if provider_config is None:
            raise ValueError("no IaaS provider is configured (providers.iaas)")
        provider = build_provider(provider_config, None)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    asyncio.run(_run(kubeconfig, context, provider, leader_elect, settings.resync_seconds))


async def _run(kubeconfig: Path, context: str, provider: Provider, leader_elect: bool,
               resync_seconds: float) -> None:
    client = HttpClient(kubeconfig, context)
    try:
        manager = Manager(client, iaas_reconcilers(client, provider),
                          leader_election=leader_elect, resync_seconds=resync_seconds)
        err.print(f"scs controllers: provider {provider.name}, identity "
                  f"{manager.identity}")
        await manager.run()
    finally:
        await client.close()
