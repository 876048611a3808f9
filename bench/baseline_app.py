"""The read-path baseline: the smallest ASGI app on the same uvicorn + TLS settings.

``python -m bench.baseline_app --port P --cert C --key K --body FILE`` answers every request
with the bytes of FILE (the same object the real server returns), as ``application/json``.
uvicorn is started with exactly the arguments ``scs serve`` uses (``cli/serve.py``), so the
difference to the real server is the API's own work: authentication, authorization, routing,
the store read, serialisation and the audit line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn


def make_app(body: bytes) -> Any:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--body", required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(Path(args.body).read_bytes()), host="127.0.0.1", port=args.port,
                ssl_certfile=args.cert, ssl_keyfile=args.key, log_level="warning",
                access_log=False, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
