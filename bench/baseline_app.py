"""The baselines of the read and write benchmarks: the smallest ASGI apps on the fastest stack
a Python server has here, uvicorn on httptools and uvloop, with the server's TLS certificate.

``python -m bench.baseline_app --port P --cert C --key K --body FILE`` answers every request
with the bytes of FILE (the same object the real server returns), as ``application/json``.

``python -m bench.baseline_app --port P --cert C --key K --sqlite DB`` inserts every POSTed
JSON object into the store's table in DB (created with the store's schema beforehand), one
WAL transaction per request that takes the next revision from ``meta``, as the server's
store does for a create, and answers 201 with the object. No Python-side object handling
beyond reading its name: the difference to the real server is the API's own work
(authentication, authorization, routing, admission, serialisation, the audit line).
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvicorn

Handler = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
RESOURCE = "iaas.scs.community/networks"


def make_app(body: bytes) -> Handler:
    """Answers every request with ``body``."""
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]

    async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return with_lifespan(answer)


def make_insert_app(database: Path, synchronous: str) -> Handler:
    """Inserts every POSTed object into ``database`` (see the module's docstring).

    ``synchronous``: NORMAL is the baseline issue 21 was filed against (no sync per commit,
    durable against a process crash only); FULL syncs every commit, the durability the
    store now gives each acknowledged write."""
    db = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    cursor = db.cursor()

    async def insert(scope: dict[str, Any], receive: Any, send: Any) -> None:
        value = await read_body(receive)
        name = orjson.loads(value)["metadata"]["name"]
        cursor.execute("BEGIN IMMEDIATE")
        revision = cursor.execute("UPDATE meta SET revision = revision + 1 WHERE id = 1 "
                                  "RETURNING revision").fetchone()[0]
        cursor.execute("INSERT INTO kv (revision, resource, namespace, name, event, superseded, "
                       "value) VALUES (?, ?, ?, ?, 0, NULL, ?)",
                       (revision, RESOURCE, "bench", name, value))
        cursor.execute("COMMIT")
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(value)).encode())]})
        await send({"type": "http.response.body", "body": value})

    return with_lifespan(insert)


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def with_lifespan(handler: Handler) -> Handler:
    """``handler`` for HTTP requests, with the lifespan protocol uvicorn expects."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http":
            await handler(scope, receive, send)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--body", type=Path, help="answer every request with this file")
    what.add_argument("--sqlite", type=Path, help="insert every POSTed object here")
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default="NORMAL",
                        help="SQLite's sync level for --sqlite")
    args = parser.parse_args()
    app = (make_app(args.body.read_bytes()) if args.body
           else make_insert_app(args.sqlite, args.synchronous))
    uvicorn.run(app, host="127.0.0.1", port=args.port, ssl_certfile=args.cert,
                ssl_keyfile=args.key, http="httptools", loop="uvloop", log_level="warning",
                access_log=False, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
