"""An OpenStack endpoint that accepts connections but never answers must not hold a worker
thread for good: every request, the token fetch included, ends by the provider's call
timeout (openstacksdk's ``api_timeout``) unless the cloud's own config sets one.

The silent endpoint is a real listening socket on 127.0.0.1 that never reads or writes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from central_api.providers.base import Scope
from central_api.providers.openstack.connection import Connections, OpenStackSettings


@pytest.fixture()
def silent_endpoint() -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v3"
    finally:
        listener.close()


def _token_fetch_ends(connections: Connections, scope: Scope, within: float) -> bool:
    """True if fetching a token failed by itself before ``within`` seconds."""
    failed = threading.Event()

    def fetch() -> None:
        try:
            connections.get(scope).session.get_auth_headers()
        except Exception:
            failed.set()

    threading.Thread(target=fetch, daemon=True).start()
    return failed.wait(within)


def _auth(url: str) -> dict[str, str]:
    return {"auth_url": url, "username": "u", "password": "p", "project_name": "p",
            "user_domain_name": "Default", "project_domain_name": "Default"}


def test_a_tenants_credentials_get_the_call_timeout(silent_endpoint: str) -> None:
    connections = Connections(OpenStackSettings(timeout=1))
    scope = Scope(namespace="ns", credentials=_auth(silent_endpoint))
    started = time.monotonic()
    assert _token_fetch_ends(connections, scope, within=30)
    assert time.monotonic() - started < 15


def test_the_operators_cloud_gets_the_call_timeout(silent_endpoint: str, tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    auth = "".join(f"      {key}: {value}\n" for key, value in _auth(silent_endpoint).items())
    clouds.write_text(f"clouds:\n  operator:\n    auth:\n{auth}")
    connections = Connections(OpenStackSettings(cloud="operator", clouds_yaml=str(clouds),
                                                timeout=1))
    assert _token_fetch_ends(connections, Scope(namespace="ns"), within=30)
