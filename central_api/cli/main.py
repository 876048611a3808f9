"""The ``scs`` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from .. import __version__
from ..assembly import ServeOptions
from ..config import load_config
from ..kinds import builtin_kinds
from ..kinds.crd_export import exportable, to_crd
from .cluster import cluster_app
from .controllers import controllers_command
from .login import login as login_command
from .login import token as token_command
from .serve import run_server
from .tenant import tenant_app
from .terraform import terraform_app
from .usage import usage as usage_command

app = typer.Typer(help="SCS Central API: one Kubernetes-style API for your cloud.",
                  no_args_is_help=True, add_completion=False)
err = Console(stderr=True)


@app.command()
def serve(
    listen: Annotated[str, typer.Option(help="Address to listen on, HOST:PORT.")]
    = "127.0.0.1:6443",
    data_dir: Annotated[Path, typer.Option(help="Where state, keys and admin.kubeconfig "
                                                "live.")] = Path("scs-data"),
    store: Annotated[str, typer.Option(help="Store URL: sqlite:///PATH (default: DATA_DIR/"
                                            "state.db) or postgresql://...")] = "",
    tls_cert: Annotated[Path | None, typer.Option(help="Serving certificate (PEM) to use "
                                                       "instead of the generated one.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Key for --tls-cert (PEM).")] = None,
    insecure_http: Annotated[bool, typer.Option(
        "--insecure-http", help="Serve plain HTTP (no TLS). Only for local experiments.")]
    = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    encryption_key_file: Annotated[Path | None, typer.Option(
        help="Base64 32-byte key for secrets at rest (default: DATA_DIR/encryption.key). "
             "Replicas sharing a PostgreSQL store must use the same key.")] = None,
    config: Annotated[Path | None, typer.Option(
        help="Operator configuration (YAML): enabled services, providers; see "
             "docs/operator.md.")] = None,
    oidc_config: Annotated[Path | None, typer.Option(
        help="YAML file listing trusted OpenID Connect issuers; their ID tokens are "
             "accepted as bearer tokens.")] = None,
    service_account_issuer: Annotated[str, typer.Option(
        help="Issuer (and default audience) of ServiceAccount tokens; default: the server "
             "URL. Replicas must agree.")] = "",
    audit_log: Annotated[Path | None, typer.Option(
        help="Also write the audit log (JSON lines, rotated at 100 MiB) to this file.")] = None,
    rate_limit: Annotated[float, typer.Option(
        help="Requests per second allowed per identity (bootstrap admin exempt).")] = 50.0,
    rate_burst: Annotated[int, typer.Option(help="Burst size of the rate limit.")] = 200,
    workers: Annotated[str, typer.Option(
        help="Worker processes sharing the port, or auto (one per CPU); default: the "
             "config's workers, 1. Rate limits, connection limits and /metrics are per "
             "worker.")] = "",
) -> None:
    """Run the API server with its embedded store and in-process controllers."""
    if (tls_cert is None) != (tls_key is None):
        err.print("[red]--tls-cert and --tls-key must be given together[/red]")
        raise typer.Exit(2)
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        err.print(f"[red]--listen must be HOST:PORT, got {listen!r}[/red]")
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = ServeOptions(host=host.strip("[]") or "127.0.0.1", port=int(port),
                               data_dir=data_dir, store_url=store, tls_cert=tls_cert,
                               tls_key=tls_key, insecure_http=insecure_http, log_level=log_level,
                               encryption_key_file=encryption_key_file, oidc_config=oidc_config,
                               service_account_issuer=service_account_issuer, audit_log=audit_log,
                               rate_limit=rate_limit, rate_burst=rate_burst,
                               config=load_config(config))
        options.workers = workers or options.config.workers
        run_server(options, err)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


app.command("login")(login_command)
app.command("controllers")(controllers_command)
app.command("token")(token_command)
app.command("usage")(usage_command)
app.add_typer(tenant_app, name="tenant")
app.add_typer(cluster_app, name="cluster")
app.add_typer(terraform_app, name="terraform")


@app.command()
def crds() -> None:
    """Print the built-in kinds as CustomResourceDefinitions (YAML) for a Kubernetes cluster."""
    docs = [to_crd(rt) for rt in exportable(builtin_kinds())]
    typer.echo(yaml.safe_dump_all(docs, sort_keys=False), nl=False)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)
