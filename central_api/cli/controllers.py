"""``scs controllers``: run the reconcilers as their own process against any KRM API."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from prometheus_client import start_http_server
from rich.console import Console

from ..assembly import Backends, build_backends
from ..config import load_config
from ..controllers.client import HttpClient
from ..controllers.metrics import ControllerMetrics

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
    metrics_address: Annotated[str, typer.Option(help=(
        "HOST:PORT to serve /metrics on (reconciles, leader, probes) in plain HTTP without "
        "authentication, as a scrape sidecar expects: keep it on loopback or a pod-local "
        "address. Default: not served."))] = "",
) -> None:
    """Reconcile IaaS objects against the configured provider and onboard tenants (with IAM)
    against the configured identity backend, using only the public API."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        backends = build_backends(load_config(config), None)
        if backends.empty:
            raise ValueError("nothing to reconcile: configure providers.iaas and/or identity")
        metrics = ControllerMetrics()
        if metrics_address:
            serve_metrics(metrics, metrics_address)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    asyncio.run(_run(kubeconfig, context, leader_elect, backends, metrics))


def serve_metrics(metrics: ControllerMetrics, address: str) -> None:
    """prometheus_client's own HTTP server, in a daemon thread beside the event loop."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--metrics-address {address!r}: expected HOST:PORT")
    try:
        start_http_server(int(port), host.strip("[]"), registry=metrics.registry)
    except OSError as exc:
        raise ValueError(f"--metrics-address {address}: {exc.strerror}") from None


async def _run(kubeconfig: Path, context: str, leader_elect: bool, backends: Backends,
               metrics: ControllerMetrics) -> None:
    client = HttpClient(kubeconfig, context)
    try:
        manager = backends.manager(client, metrics, leader_election=leader_elect)
        provider = backends.provider
        err.print(f"scs controllers: provider {provider.name if provider else 'none'}, "
                  f"identity backend {backends.config.identity.type}, lease holder "
                  f"{manager.identity}")
        await manager.run()
    finally:
        await client.close()
