"""Fixtures of the contract tests: every test that takes ``backend`` or ``store`` runs on
SQLite and on PostgreSQL (a fresh database per test on the shared server, marked slow)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from central_api.store.base import Store
from tests.contract.backends import Backend, postgres_backend, sqlite_backend
from tests.pg import PostgresServer


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database on the shared server, dropped afterwards."""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    database = f"t_{uuid.uuid4().hex[:20]}"
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    yield server.url_for(database)
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return sqlite_backend(tmp_path / "store.db")
    return postgres_backend(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    opened = backend.open()
    yield opened
    opened.close()
