"""Run the server for ``scs serve``: data directory, TLS, kubeconfig, then uvicorn.

What the process consists of is decided in :mod:`central_api.assembly`."""

from __future__ import annotations

import contextlib
import secrets
import socket
from functools import partial
from pathlib import Path

import uvicorn
import yaml
from rich.console import Console

from ..assembly import (
    ServeOptions,
    ServerProcess,
    build_server,
    open_configured_store,
    parent_options,
    prepare_workers,
    server_url,
    worker_options,
)
from ..datadir import (
    DataDir,
    ensure_admin_token,
    ensure_ca,
    ensure_server_cert,
    write_kubeconfig,
)
from ..machinery import clock
from ..server.connections import (
    BACKLOG,
    ConnectionGuard,
    connection_cap,
    raise_open_file_limit,
    uvicorn_settings,
)
from ..server.workers import Supervisor, listen_socket, worker_count
from ..store.sqlite import SqliteStore
from ..store.wake import PeerWake

STARTUP_FAILURE = 3
"""The exit code of a server whose app failed to start (uvicorn's)."""


def prepare_tls(options: ServeOptions, data: DataDir) -> tuple[Path, Path, Path | None]:
    """(cert, key, CA to put in the kubeconfig); generated unless the operator brought one."""
    if options.tls_cert and options.tls_key:
        return options.tls_cert, options.tls_key, None
    ensure_ca(data)
    ensure_server_cert(data, [options.host])
    return data.server_cert, data.server_key, data.ca_cert


def prepare_kubeconfig(options: ServeOptions, data: DataDir, ca: Path | None,
                       console: Console) -> None:
    url = server_url(options)
    token = ensure_admin_token(data)
    if token is None and data.kubeconfig.exists():
        config = yaml.safe_load(data.kubeconfig.read_text())
        token = config["users"][0]["user"]["token"]
    if token is None:
        console.print(f"[yellow]{data.kubeconfig} is missing and the admin token cannot be "
                      f"recovered; delete {data.token_hash} to issue a new one[/yellow]")
        return
    write_kubeconfig(data, url, token, None if options.insecure_http else ca)


def run_server(options: ServeOptions, console: Console) -> None:
    """Prepare what happens once (data directory, store schema, TLS, kubeconfig, system
    namespaces), then serve in this process or in ``options.workers`` forked workers."""
    workers = worker_count(options.workers)
    data = DataDir(options.data_dir.resolve())
    data.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = open_configured_store(options, data)
    cert = key = ca = None
    if not options.insecure_http:
        cert, key, ca = prepare_tls(options, data)
    prepare_kubeconfig(options, data, ca, console)
    process = build_server(options if workers == 1 else parent_options(options), data, store)
    announce(options, data, process, console)
    if workers == 1:
        try:
            if not serve(process, options, cert, key):
                raise SystemExit(STARTUP_FAILURE)
        finally:
            store.close()
        return
    prepare_workers(process)
    store.close()
    sock = listen_socket(options.host, options.port, BACKLOG)
    console.print(f"  {workers} worker processes")
    peers = (secrets.token_hex(8), workers)
    with sock:
        raise SystemExit(Supervisor(workers, partial(
            serve_worker, options, data, (cert, key), sock, peers)).run())


def serve_worker(options: ServeOptions, data: DataDir, tls: tuple[Path | None, Path | None],
                 sock: socket.socket, peers: tuple[str, int], index: int) -> int:
    """One worker process: its own store connections (on SQLite woken by the other workers'
    commits: ``peers`` is their group and count), its own server and app, on the socket the
    parent listens on."""
    store = open_configured_store(options, data)
    wake = PeerWake(store, peers[0], index, peers[1]).start() \
        if isinstance(store, SqliteStore) else None
    try:
        process = build_server(worker_options(options, index), data, store)
        return 0 if serve(process, options, *tls, sockets=[sock]) else STARTUP_FAILURE
    finally:
        if wake is not None:
            wake.stop()
        store.close()


def announce(options: ServeOptions, data: DataDir, process: ServerProcess,
             console: Console) -> None:
    """Where the server listens and what it drives (simulated backends said loudly)."""
    scheme = "http" if options.insecure_http else "https"
    console.print(f"SCS Central API on {scheme}://{options.host}:{options.port} "
                  f"(store: {options.store_url or data.database})")
    console.print(f"  export KUBECONFIG={data.kubeconfig}")
    provider = process.backends.provider
    if provider is not None:
        simulated = " — SIMULATED cloud, nothing real is created" if provider.simulated else ""
        console.print(f"  IaaS provider: {provider.name}{simulated}")
    kaas = process.backends.kaas
    if kaas is not None:
        simulated = " — SIMULATED clusters, nothing real is built" if kaas.simulated else ""
        console.print(f"  KaaS provider: {kaas.name}{simulated}")
    identity = process.backends.identity
    if identity is not None and identity.simulated:
        console.print("  identity: sandbox — SIMULATED Keystone, tenant onboarding and IAM "
                      "create nothing real")
    elif identity is not None:
        console.print(f"  identity: Keystone at {options.config.identity.auth_url} "
                      "(tenant onboarding and IAM)")
    if options.insecure_http:
        console.print("[yellow]  serving plain HTTP: tokens cross the network in clear text"
                      "[/yellow]")
    warning = clock.clock_warning()
    if warning:  # read once now: a missing or bad clock file stops the start, not a write
        console.print(f"[bold red]  {warning} (now: {clock.now()})[/bold red]")


def serve(process: ServerProcess, options: ServeOptions, cert: Path | None, key: Path | None,
          sockets: list[socket.socket] | None = None) -> bool:
    """Run uvicorn until it is told to stop (on ``sockets`` when given, else bound here);
    False when the app failed to start."""
    limits = options.config.limits
    max_connections = connection_cap(limits.max_connections, raise_open_file_limit())
    guard = ConnectionGuard(limits.header_timeout_seconds, max_connections,
                            str(cert) if cert else None, str(key) if key else None)
    server = uvicorn.Server(uvicorn.Config(
        process.app(), host=options.host, port=options.port, log_level=options.log_level,
        backlog=BACKLOG, **uvicorn_settings(guard)))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it handled
        server.run(sockets=sockets)
    return server.started
