"""``scs controllers``: run the reconcilers as their own process against any KRM API."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..config import Config, load_config
from ..controllers.client import HttpClient
from ..controllers.manager import Manager
from ..controllers.reconcilers import all_reconcilers
from ..controllers.tenants import build_identity
from ..providers import build_provider
from ..providers.base import Provider
from ..providers.identity import IdentityService

err = Console(stderr=True)


def controllers_command(
    kubeconfig: Annotated[Path, typer.Option(help="Kubeconfig of the API to reconcile "
                                                  "(needs write access to the kinds it "
                                                  "reconciles, their status and leases).")],
    context: Annotated[str, typer.Option(help="Kubeconfig context (default: current).")] = "",
    config: Annotated[Path | None, typer.Option(help="Operator configuration with the "
                                                     "providers and the identity backend.")]
    = None,
    leader_elect: Annotated[bool, typer.Option(help="Run only while holding the lease.")]
    = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Reconcile IaaS objects against the configured provider and onboard tenants (with IAM)
    against the configured identity backend, using only the public API."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_config(config)
        provider_config = settings.provider("iaas")
        provider = build_provider(provider_config, None) if provider_config else None
        identity = build_identity(settings.identity) \
            if "tenancy" in settings.services else None
        if provider is None and identity is None:
            raise ValueError("nothing to reconcile: configure providers.iaas and/or identity")
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    asyncio.run(_run(kubeconfig, context, leader_elect, settings, provider, identity))


async def _run(kubeconfig: Path, context: str, leader_elect: bool, settings: Config,
               provider: Provider | None, identity: IdentityService | None) -> None:
    client = HttpClient(kubeconfig, context)
    try:
        reconcilers = all_reconcilers(client, provider=provider, identity=identity,
                                      identity_region=settings.identity.region,
                                      identity_resync_seconds=settings.identity.resync_seconds,
                                      serves_iam="iam" in settings.services)
        manager = Manager(client, reconcilers, leader_election=leader_elect,
                          resync_seconds=settings.resync_seconds)
        err.print(f"scs controllers: provider {provider.name if provider else 'none'}, "
                  f"identity backend {settings.identity.type}, lease holder "
                  f"{manager.identity}")
        await manager.run()
    finally:
        await client.close()
