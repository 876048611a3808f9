"""Shared fixtures and helpers for the end-to-end suites: a real ``scs serve`` per module.

Every test here talks to a real server process over HTTPS (TLS from the generated CA, the
bootstrap admin token from ``admin.kubeconfig``), so the assertions are about what a client
observes. One server is shared by the tests of a module; tests isolate themselves by using
unique names (and their own namespaces where lists are compared).
"""

from __future__ import annotations

import itertools
import os
import ssl
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from tests.pg import PostgresServer
from tests.polling import poll
from tests.server import TENANTS_AS_PLAIN_OBJECTS, ScsServer

T = TypeVar("T")

TENANTS = "/apis/tenancy.scs.community/v1alpha1/tenants"
_counter = itertools.count()


def unique(prefix: str) -> str:
    """A DNS-label name nobody else uses (tests share one server per module)."""
    return f"{prefix}-{os.getpid() % 1000}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def tenant(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {"displayName": f"Tenant {name}", **spec}}


def secret(name: str, **string_data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "Opaque", "stringData": string_data}


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05,
             what: str = "condition") -> T:
    return poll(check, timeout, interval, what)


def tls(server: ScsServer) -> ssl.SSLContext:
    """Trust exactly the server's generated CA."""
    return ssl.create_default_context(cafile=str(server.ca_file))


def client_for(server: ScsServer, **kwargs: Any) -> httpx.Client:
    """An HTTPS client that trusts the server's CA and sends the admin token."""
    return httpx.Client(base_url=server.url, verify=tls(server), timeout=30,
                        headers={"Authorization": f"Bearer {server.token}"}, **kwargs)


def create_database(postgres: PostgresServer) -> str:
    """A fresh database on the shared PostgreSQL; returns its ``--store`` URL."""
    name = f"scs_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres.url_for(name)


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    """One ``scs serve`` on SQLite for all tests of a module."""
    srv = ScsServer(config=TENANTS_AS_PLAIN_OBJECTS)
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def http(server: ScsServer) -> Iterator[httpx.Client]:
    with client_for(server) as client:
        yield client


@pytest.fixture
def namespace(http: httpx.Client) -> str:
    """A fresh namespace for a test that lists namespaced objects."""
    name = unique("ns")
    response = http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert response.status_code == 201, response.text
    return name
