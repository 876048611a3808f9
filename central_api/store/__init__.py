"""Revisioned object stores; :func:`open_store` picks the back end from a URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .base import Store
from .guard import install_if_enabled

__all__ = ["Store", "open_store"]


def open_store(url: str) -> Store:
    """Open the store a ``--store`` URL names.

    * ``sqlite:///abs/path.db`` (optionally ``?synchronous=NORMAL``; FULL is the default, see
      :mod:`.sqlite`) or a plain filesystem path: the embedded SQLite store.
    * ``postgresql://...`` or ``postgres://...``: the PostgreSQL store (the URL goes to libpq
      unchanged, so ``sslmode=`` and friends work).

    Back ends are imported lazily so that SQLite deployments never load psycopg. A blocking
    store gets the loop guard when ``SCS_LOOP_GUARD=1`` (:mod:`.guard`, for tests).
    """
    if not url:
        raise ValueError("store URL is empty")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStore

        return install_if_enabled(PostgresStore(url))
    from .sqlite import DEFAULT_SYNCHRONOUS, SqliteStore

    if scheme == "sqlite":
        parts = urlsplit(url)
        if parts.netloc or not parts.path or parts.path == "/":
            raise ValueError(f"invalid SQLite store URL {url!r}: use sqlite:///absolute/path.db")
        options = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ValueError(f"unknown SQLite store option(s) {sorted(unknown)} in {url!r}; "
                             "only 'synchronous' is supported")
        synchronous = options.get("synchronous", [DEFAULT_SYNCHRONOUS])[-1]
        return SqliteStore(parts.path, synchronous=synchronous)
    if scheme:
        raise ValueError(f"unsupported store URL scheme {scheme!r} in {url!r}: use "
                         "sqlite:///path.db, a file path, or postgresql://...")
    return SqliteStore(Path(url))
