"""Follow the Servers of a namespace with the AsyncClient (as a controller would) and print
each change: ``python follow_servers.py --namespace acme --seconds 60``."""

from __future__ import annotations

import argparse
import asyncio

from central_api.client import AsyncClient, is_ready
from central_api.kinds.iaas import Server


async def follow(namespace: str | None, seconds: float) -> int:
    events = 0
    async with AsyncClient() as client:
        async for event in client.watch(Server, namespace, timeout=seconds):
            if event.type == "BOOKMARK":
                continue
            events += 1
            server = event.object
            print(f"{event.type:8} {server.metadata.name:20} ready={is_ready(server)} "
                  f"{server.status.addresses}")
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", default=None, help="default: the context's")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    print(f"watched {asyncio.run(follow(args.namespace, args.seconds))} events")


if __name__ == "__main__":
    main()
