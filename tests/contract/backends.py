"""The storages the contract tests run on: how to open (more) stores on one, and query it raw."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from central_api.store import open_store
from central_api.store.base import Store


@dataclass
class Backend:
    """How to open (more) stores on one storage, and peek at the raw stored values."""

    kind: str
    url: str
    query: Callable[[str], list[tuple[Any, ...]]]
    """Run one SQL statement on its own connection (committed) and return its rows."""

    def open(self) -> Store:
        return open_store(self.url)

    def raw_values(self) -> list[bytes]:
        return [bytes(r[0]) for r in self.query("SELECT value FROM kv")]


def sqlite_backend(path: Path) -> Backend:
    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]

    return Backend("sqlite", f"sqlite://{path}", query)


def postgres_backend(url: str) -> Backend:
    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    return Backend("postgres", url, query)
