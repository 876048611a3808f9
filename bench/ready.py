"""Create N objects of one collection and time them to ``Ready``: the reconcile benchmarks.

Shared by the Server benchmark (``reconcile``) and the Cluster benchmarks (``kaas``): eight
connections create the objects as fast as the server takes them, a watch records when each
one turns Ready, and a paginated list at the end counts what the watch missed. The server's
CPU time and peak RSS over the run give the cost per object (API and in-process controllers
together, as an operator pays for them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from .common import Conn, RssSampler, ScsServer, connect, cpu_seconds, rss_mib

CONNECTIONS = 8

Body = Callable[[int], dict[str, Any]]
"""The ``i``-th object to create."""


async def to_ready(server: ScsServer, collection: str, body: Body, n: int,
                   timeout: float, pids: tuple[int, ...] = ()) -> dict[str, Any]:
    """Create ``body(0..n-1)`` in ``collection`` and wait up to ``timeout`` seconds (create
    and Ready together) until all are Ready. ``pids``: further processes whose CPU counts
    (e.g. a management cluster the provider drives); the server's own is always counted."""
    pid = server.proc.pid if server.proc else 0
    watcher = await _watch(server, collection)
    ready: dict[str, float] = {}
    done = asyncio.Event()
    watch_task = asyncio.create_task(_follow_ready(watcher, ready, n, done))
    sampler = RssSampler(pid)
    sampler.start()
    cpu = {p: cpu_seconds(p) for p in (pid, *pids)}
    started = time.monotonic()
    deadline = started + timeout
    applied = await _create_all(server, collection, body, n, deadline)
    apply_seconds = time.monotonic() - started
    try:
        await asyncio.wait_for(done.wait(), max(1.0, deadline - time.monotonic()))
    except TimeoutError:
        pass
    watch_ended = watch_task.done()  # e.g. disconnected for falling 10,000 events behind
    watch_task.cancel()
    watcher.close()
    listed_ready = await _count_ready(server, collection)
    finished = max(ready.values(), default=started)
    if listed_ready > len(ready):  # the watch missed some: count them at the deadline
        finished = time.monotonic()
    used = {p: cpu_seconds(p) - before for p, before in cpu.items()}
    peak = await sampler.stop()
    elapsed = finished - started
    total_ready = max(listed_ready, len(ready))
    return {"objects": n, "applied": applied, "apply_seconds": round(apply_seconds, 2),
            "apply_rate": round(applied / apply_seconds, 1) if apply_seconds else 0,
            "ready": total_ready, "ready_seen_by_watch": len(ready),
            "watch_ended_early": watch_ended, "ready_seconds": round(elapsed, 2),
            "ready_rate": round(total_ready / elapsed, 1) if elapsed > 0 else 0,
            "peak_rss_mib": peak, "rss_after_mib": rss_mib(pid),
            "cpu_ms_per_object": round(used[pid] * 1e3 / max(1, applied), 2),
            "other_cpu_ms_per_object": round(
                sum(v for p, v in used.items() if p != pid) * 1e3 / max(1, applied), 2),
            "timed_out": len(ready) < n}


async def _watch(server: ScsServer, collection: str) -> Conn:
    conn = await connect(server)
    listed = await conn.json("GET", collection + "?limit=1")
    rv = listed["metadata"]["resourceVersion"]
    watcher = await connect(server)
    watcher.writer.write(watcher.build(  # type: ignore[union-attr]
        "GET", f"{collection}?watch=1&resourceVersion={rv}&timeoutSeconds=1800"))
    await watcher.reader.readuntil(b"\r\n\r\n")  # type: ignore[union-attr]
    conn.close()
    return watcher


async def _create_all(server: ScsServer, collection: str, body: Body, n: int,
                      deadline: float) -> int:
    conns = [await connect(server) for _ in range(CONNECTIONS)]
    failures: list[str] = []
    applied = [0]

    async def worker(c: Conn, indices: range) -> None:
        for i in indices:
            if time.monotonic() > deadline:
                return  # bounded in time as well as in count
            status, raw = await c.send_raw(c.build("POST", collection, orjson.dumps(body(i))))
            if status != 201:
                failures.append(f"{status}: {raw[:200]!r}")
            else:
                applied[0] += 1

    try:
        await asyncio.gather(*(worker(c, range(k, n, len(conns)))
                               for k, c in enumerate(conns)))
    finally:
        for c in conns:
            c.close()
    if failures:
        raise RuntimeError(f"{len(failures)} creates failed, e.g. {failures[0]}")
    return applied[0]


async def _count_ready(server: ScsServer, collection: str) -> int:
    """Ready objects by a paginated list (on a new connection: the others may have been
    idle longer than the keep-alive timeout)."""
    conn = await connect(server)
    count, token = 0, ""
    try:
        while True:
            page = await conn.json("GET", collection + "?limit=500"
                                   + (f"&continue={token}" if token else ""))
            count += sum(1 for item in page["items"] if _is_ready(item))
            token = page["metadata"].get("continue", "")
            if not token:
                return count
    finally:
        conn.close()


def _is_ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


async def _follow_ready(conn: Conn, ready: dict[str, float], n: int,
                        done: asyncio.Event) -> None:
    reader = conn.reader
    assert reader is not None
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.strip().split(b";")[0], 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return
        for frame in data[:-2].split(b"\n"):
            if not frame.strip():
                continue
            obj = orjson.loads(frame)["object"]
            name = obj["metadata"]["name"]
            if name not in ready and _is_ready(obj):
                ready[name] = time.monotonic()
                if len(ready) >= n:
                    done.set()
