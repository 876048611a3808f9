"""Many concurrent watchers in one process (the watch fan-out benchmark starts several).

``python -m bench.watch_client --port P --ca CA --token-file F --path PATH --watchers N
--out FILE`` opens N HTTPS watch streams on PATH, prints ``READY`` once every stream has its
response headers (the server subscribes before it answers, so no event can be missed after
that), then reads events until a line ``END <expected> <grace-seconds>`` arrives on stdin and
every watcher has ``expected`` events (or the grace time is up). Each event carries the
writer's send time in the annotation ``bench.scs/sent``; the delivery latencies go to FILE
(``array('d')``) and one JSON line with the counts to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from array import array
from dataclasses import dataclass, field

import orjson

SENT = "bench.scs/sent"


@dataclass
class Watcher:
    received: int = 0
    out_of_order: int = 0
    duplicates: int = 0
    last_rv: int = 0
    ended: bool = False
    error: str = ""
    latencies: array = field(default_factory=lambda: array("d"))


async def watch(host: str, port: int, context: ssl.SSLContext, token: str, path: str,
                state: Watcher, ready: asyncio.Event, counter: list[int], total: int) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port, ssl=context, limit=1 << 22)
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Authorization: Bearer {token}\r\nUser-Agent: scs-bench-watch\r\n"
                      "Accept: application/json\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if head[9:12] != b"200":
            raise RuntimeError(f"watch answered {head[:200]!r}")
    except Exception as exc:  # reported, not raised: one failed watcher must not hide others
        state.error, state.ended = repr(exc), True
        counter[0] += 1
        if counter[0] >= total:
            ready.set()
        return
    counter[0] += 1
    if counter[0] >= total:
        ready.set()
    buf = b""
    line = b""
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            buf += data
            while True:  # decode chunked transfer encoding
                eol = buf.find(b"\r\n")
                if eol < 0:
                    break
                size = int(buf[:eol].split(b";")[0], 16)
                if len(buf) < eol + 2 + size + 2:
                    break
                line += buf[eol + 2:eol + 2 + size]
                buf = buf[eol + 2 + size + 2:]
                if size == 0:
                    raise EOFError
                while (nl := line.find(b"\n")) >= 0:
                    frame, line = line[:nl], line[nl + 1:]
                    now = time.time()
                    event = orjson.loads(frame)
                    meta = event["object"]["metadata"]
                    rv = int(meta["resourceVersion"])
                    if rv == state.last_rv:
                        state.duplicates += 1
                    elif rv < state.last_rv:
                        state.out_of_order += 1
                    state.last_rv = max(rv, state.last_rv)
                    if event["type"] == "ADDED":
                        state.received += 1
                        sent = (meta.get("annotations") or {}).get(SENT)
                        if sent:
                            state.latencies.append(now - float(sent))
    except (EOFError, ConnectionError, asyncio.IncompleteReadError):
        pass
    except Exception as exc:
        state.error = repr(exc)
    finally:
        state.ended = True
        writer.close()


async def main_async(args: argparse.Namespace) -> None:
    context = ssl.create_default_context(cafile=args.ca)
    token = open(args.token_file).read().strip()
    states = [Watcher() for _ in range(args.watchers)]
    ready = asyncio.Event()
    counter = [0]
    tasks = []
    for state in states:
        tasks.append(asyncio.create_task(watch("127.0.0.1", args.port, context, token,
                                               args.path, state, ready, counter,
                                               args.watchers)))
        await asyncio.sleep(0)  # spread the TLS handshakes a little
    await asyncio.wait_for(ready.wait(), args.connect_timeout)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    _, expected_text, grace_text = line.split()
    expected, deadline = int(expected_text), time.monotonic() + float(grace_text)
    while time.monotonic() < deadline:
        if all(s.received >= expected or s.ended for s in states):
            break
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = array("d")
    for state in states:
        latencies.extend(state.latencies)
    with open(args.out, "wb") as out:
        latencies.tofile(out)
    print(json.dumps({
        "watchers": len(states), "expected_each": expected,
        "received": sum(s.received for s in states),
        "missing": sum(max(0, expected - s.received) for s in states),
        "out_of_order": sum(s.out_of_order for s in states),
        "duplicates": sum(s.duplicates for s in states),
        "ended_early": sum(1 for s in states if s.ended and s.received < expected),
        "errors": sorted({s.error for s in states if s.error})[:5],
    }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--watchers", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--connect-timeout", type=float, default=120)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
