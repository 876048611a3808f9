"""Helpers of the Ceilometer-ingest and billing-export suites: a real ``scs serve`` with the
metering service, a token holding ``metering-ingest``, the server's ledger read (and, for
the export, written) directly in its database, and Ceilometer 19's real HTTP payloads."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from central_api.datadir import DataDir
from central_api.store import open_store
from central_api.store.ledger import Ledger
from tests.security.support import (
    bind,
    create_service_account,
    request_token,
    sa_subject,
    tls,
    unique,
)
from tests.server import ScsServer

WEBHOOK = "/webhooks/ceilometer"
INGEST_ROLE = "metering-ingest"
CAPTURED = Path(__file__).with_name("captured_ceilometer19.json")
"""What Ceilometer 19's (Debian 12's) ``HttpPublisher`` really POSTed — samples, then events
— captured by a local HTTP server from ``publish_samples``/``publish_events`` of the
installed ``python3-ceilometer`` (URL ``http://ceilometer:s3cret-token@…``)."""


def captured() -> list[dict[str, Any]]:
    return list(json.loads(CAPTURED.read_text()))


def captured_samples() -> list[dict[str, Any]]:
    return list(json.loads(captured()[0]["body"]))


def captured_events() -> list[dict[str, Any]]:
    return list(json.loads(captured()[1]["body"]))


def fresh(items: list[dict[str, Any]], project: str | None = None) -> list[dict[str, Any]]:
    """The captured items with new message ids (and optionally another project)."""
    out = copy.deepcopy(items)
    for item in out:
        key = "id" if "name" in item else "message_id"
        item[key] = str(uuid.uuid4())
        if project is not None:
            if "traits" in item:
                item["traits"] = [[n, t, project if n == "project_id" else v]
                                  for n, t, v in item["traits"]]
            else:
                item["project_id"] = project
    return out


def basic(token: str, user: str = "ceilometer") -> dict[str, str]:
    """What the HTTP publisher sends for ``https://user:token@host/...``."""
    raw = base64.b64encode(f"{user}:{token}".encode()).decode()
    return {"Authorization": f"Basic {raw}", "Content-Type": "application/json"}


def https(server: ScsServer, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=server.url, verify=tls(server), timeout=60, headers=headers)


def serve(config: dict[str, Any] | None = None,
          env: dict[str, str] | None = None) -> Iterator[ScsServer]:
    server = ScsServer(config={"identity": {"type": "none"}, **(config or {})}, env=env)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def token_with_role(http: httpx.Client, role: str | None, who: str = "ceilometer") -> str:
    name = unique(who)
    create_service_account(http, "default", name)
    if role:
        bind(http, role, sa_subject("default", name))
    return request_token(http, "default", name)


@dataclass
class ServerLedger:
    """The server's ledger, opened from the test process on the same database file."""

    path: Path
    _ledger: Ledger | None = field(default=None, repr=False)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(open_store(f"sqlite:///{self.path}"))
        return self._ledger

    def samples(self, tenant: str | None = None) -> list[Any]:
        return [s.sample for s in self.ledger.samples(tenant=tenant, limit=10_000)]

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.store.close()
            self._ledger = None


def server_ledger(server: ScsServer) -> ServerLedger:
    return ServerLedger(DataDir(server.data_dir).database.resolve())
