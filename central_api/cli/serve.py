"""Assemble and run the server for ``scs serve``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import uvicorn
import yaml
from rich.console import Console

from ..auth.authn import AuthenticatorChain
from ..auth.tokens import TokenAuthenticator
from ..auth.user import BOOTSTRAP_ADMIN
from ..kinds import builtin_kinds
from ..kinds.catalog import Catalog
from ..server.app import ServerContext, build_app
from ..server.bootstrap import (
    DataDir,
    SecretBox,
    WrongEncryptionKey,
    ensure_admin_token,
    ensure_ca,
    ensure_encryption_key,
    ensure_server_cert,
    write_kubeconfig,
)
from ..store import open_store
from ..store.base import Store


@dataclass
class ServeOptions:
    host: str
    port: int
    data_dir: Path
    store_url: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False
    log_level: str = "info"
    encryption_key_file: Path | None = None


def open_configured_store(options: ServeOptions, data: DataDir) -> Store:
    store = open_store(options.store_url or f"sqlite:///{data.database.resolve()}")
    box = SecretBox(ensure_encryption_key(data, options.encryption_key_file))
    store.set_transformer("core/secrets", (box.encrypt, box.decrypt))
    try:
        store.list("core/secrets", limit=1)
    except WrongEncryptionKey:
        store.close()
        raise ValueError("the store holds secrets written with another encryption key: give "
                         "every replica the same key (--encryption-key-file)") from None
    return store


def prepare_tls(options: ServeOptions, data: DataDir) -> tuple[Path, Path, Path | None]:
    """(cert, key, CA to put in the kubeconfig); generated unless the operator brought one."""
    if options.tls_cert and options.tls_key:
        return options.tls_cert, options.tls_key, None
    ensure_ca(data)
    ensure_server_cert(data, [options.host])
    return data.server_cert, data.server_key, data.ca_cert


def prepare_kubeconfig(options: ServeOptions, data: DataDir, ca: Path | None,
                       console: Console) -> None:
    scheme = "http" if options.insecure_http else "https"
    host = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{host}:{options.port}"
    token = ensure_admin_token(data)
    if token is None and data.kubeconfig.exists():
        config = yaml.safe_load(data.kubeconfig.read_text())
        token = config["users"][0]["user"]["token"]
    if token is None:
        console.print(f"[yellow]{data.kubeconfig} is missing and the admin token cannot be "
                      f"recovered; delete {data.token_hash} to issue a new one[/yellow]")
        return
    write_kubeconfig(data, url, token, ca if scheme == "https" else None)


def run_server(options: ServeOptions, console: Console) -> None:
    data = DataDir(options.data_dir.resolve())
    data.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = open_configured_store(options, data)
    cert = key = ca = None
    if not options.insecure_http:
        cert, key, ca = prepare_tls(options, data)
    prepare_kubeconfig(options, data, ca, console)
    token_hash = data.token_hash.read_text().strip()
    ctx = ServerContext(store=store, catalog=Catalog(builtin_kinds()),
                        authenticator=AuthenticatorChain(
                            [TokenAuthenticator({token_hash: BOOTSTRAP_ADMIN})]))
    scheme = "http" if options.insecure_http else "https"
    console.print(f"SCS Central API on {scheme}://{options.host}:{options.port} "
                  f"(store: {options.store_url or data.database})")
    console.print(f"  export KUBECONFIG={data.kubeconfig}")
    if options.insecure_http:
        console.print("[yellow]  serving plain HTTP: tokens cross the network in clear text"
                      "[/yellow]")
    try:
        uvicorn.run(build_app(ctx), host=options.host, port=options.port,
                    ssl_certfile=str(cert) if cert else None,
                    ssl_keyfile=str(key) if key else None,
                    log_level=options.log_level, access_log=False, timeout_graceful_shutdown=5)
    finally:
        store.close()
