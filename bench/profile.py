"""Profile the server under one benchmark's load with py-spy (docs/performance.md).

    .venv/bin/pip install py-spy
    .venv/bin/python -m bench.profile read|write|write-pg|watch|reconcile|scale [--seconds N]

Starts ``scs serve`` as the benchmark does, puts the benchmark's load on it, records the
server with ``py-spy record --format raw`` (collapsed stacks, idle frames dropped) and prints
the functions with the largest inclusive and self share of the samples. The raw profile is
kept in ``bench/results/profile-<name>.txt`` (open it with speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from . import run
from .common import (
    NETWORKS,
    SERVERS,
    SUBNETS,
    PostgresServer,
    ScsServer,
    connect,
    raise_fd_limit,
    run_wrk,
    start_server,
    stop_server,
    wait_ready,
)


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is missing: .venv/bin/pip install py-spy")
    return found


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--duration",
                             str(int(seconds)), "--rate", "200", "--format", "raw",
                             "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize(out: Path, top: int = 30) -> str:
    """Inclusive and self sample shares per function from collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)`` relative to the package."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("central_api/", "site-packages/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})"


def profile_wrk(server: ScsServer, url: str, script: str, seconds: float, conns: int,
                work: Path, out: Path) -> dict[str, object]:
    assert server.proc is not None
    spy = record(server.proc.pid, seconds, out)
    result = run_wrk(url, server.token, seconds, conns, script, work)
    spy.wait(seconds + 30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=["read", "write", "write-pg", "watch", "reconcile",
                                         "scale"])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--size", type=int, default=0,
                        help="watchers (watch, default 200), Servers (reconcile, default "
                             "2000) or objects (scale, default 100000)")
    args = parser.parse_args()
    raise_fd_limit()
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    out = run.RESULTS / f"profile-{args.name}.txt"
    work = Path(tempfile.mkdtemp(prefix="scs-profile-"))
    pg = None
    try:
        if args.name == "write-pg":
            pg = PostgresServer()
            pg.start()
        server = start_server(store=pg.url if pg else "", config=run.NO_CONTROLLERS
                              if args.name != "reconcile" else run.RECONCILE_CONFIG)
        try:
            print(FUNCS[args.name](server, args, work, out))
        finally:
            stop_server(server)
        print(summarize(out))
        print(f"\nraw profile: {out}")
    finally:
        if pg is not None:
            pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def _read(server: ScsServer, args: argparse.Namespace, work: Path, out: Path) -> object:
    async def prepare() -> None:
        conn = await connect(server)
        await run.make_namespace(conn, "bench")
        await conn.json("POST", NETWORKS.format(ns="bench"), run.network("read-me"))
        conn.close()

    asyncio.run(prepare())
    return profile_wrk(server, server.url + NETWORKS.format(ns="bench") + "/read-me", "",
                       args.seconds, 32, work, out)


def _write(server: ScsServer, args: argparse.Namespace, work: Path, out: Path) -> object:
    async def prepare() -> None:
        conn = await connect(server)
        await run.make_namespace(conn, "bench")
        conn.close()

    asyncio.run(prepare())
    script = run.POST_LUA % {"prefix": "p-", "template": run._write_template()}
    return profile_wrk(server, server.url + NETWORKS.format(ns="bench"), script,
                       args.seconds, 8, work, out)


def _watch(server: ScsServer, args: argparse.Namespace, work: Path, out: Path) -> object:
    sizes = run.Sizes(watchers=args.size or 200, watch_clients=1,
                      watch_seconds=args.seconds, watch_grace=60)
    assert server.proc is not None
    pid = server.proc.pid

    def spy_later() -> None:  # start recording once the watchers are connected
        time.sleep(3 + sizes.watchers / 200)
        record(pid, args.seconds, out).wait(args.seconds + 30)

    thread = threading.Thread(target=spy_later)
    thread.start()
    clients: list[subprocess.Popen[str]] = []
    try:
        result = asyncio.run(run._watch(server, sizes, work, clients))
    finally:
        for proc in clients:
            if proc.poll() is None:
                proc.kill()
    thread.join()
    return {k: result[k] for k in ("watchers", "write_rate", "latency", "delivery_rate")}


def _reconcile(server: ScsServer, args: argparse.Namespace, work: Path, out: Path) -> object:
    n = args.size or 2000

    async def go() -> dict[str, object]:
        conn = await connect(server)
        await run.make_namespace(conn, "recon")
        await conn.json("POST", NETWORKS.format(ns="recon"), run.network("net"))
        await conn.json("POST", SUBNETS.format(ns="recon"), {
            "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Subnet",
            "metadata": {"name": "net-v4"},
            "spec": {"networkRef": {"name": "net"}, "cidr": "10.64.0.0/16"}})
        await wait_ready(conn, SUBNETS.format(ns="recon") + "/net-v4", 60)
        assert server.proc is not None
        spy = record(server.proc.pid, args.seconds, out)
        started = time.monotonic()
        for i in range(n):
            await conn.json("POST", SERVERS.format(ns="recon"), {
                "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Server",
                "metadata": {"name": f"vm-{i:05d}"},
                "spec": {"flavor": "SCS-1V-2", "image": "ubuntu-24.04",
                         "networks": [{"name": "net"}]}})
            if time.monotonic() - started > args.seconds:
                break
        await asyncio.to_thread(spy.wait, args.seconds + 30)
        conn.close()
        return {"created": i + 1, "seconds": round(time.monotonic() - started, 1)}

    # quotas: the default namespace quota allows 50 instances
    from central_api.providers.sandbox import set_quota
    from central_api.store.sqlite import SqliteStore

    store = SqliteStore(server.data_dir / "state.db")
    set_quota(store, "recon", instances=n * 2, cores=n * 4, ramMiB=n * 8192)
    store.close()
    return asyncio.run(go())


def _scale(server: ScsServer, args: argparse.Namespace, work: Path, out: Path) -> object:
    n = args.size or 100_000

    async def template() -> dict[str, object]:
        conn = await connect(server)
        await run.make_namespace(conn, "scale")
        created = await conn.json("POST", NETWORKS.format(ns="scale"), run.network(
            "template", labels={"app": "scale", "shard": "s00"}))
        await conn.json("DELETE", NETWORKS.format(ns="scale") + "/template")
        conn.close()
        return dict(created)

    sample = asyncio.run(template())
    server.stop()
    run._load_objects(server.data_dir / "state.db", sample, 0, n)
    server.start(timeout=600)
    assert server.proc is not None
    spy = record(server.proc.pid, args.seconds, out)

    async def walk() -> dict[str, object]:
        conn = await connect(server)
        base = NETWORKS.format(ns="scale")
        pages, token = 0, ""
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            status, body = await conn.request(
                "GET", base + "?limit=500" + (f"&continue={token}" if token else ""))
            pages += 1
            token = orjson.loads(body)["metadata"].get("continue", "")
        conn.close()
        return {"pages": pages, "seconds": round(time.monotonic() - started, 1)}

    result = asyncio.run(walk())
    spy.wait(args.seconds + 30)
    return result


FUNCS = {"read": _read, "write": _write, "write-pg": _write, "watch": _watch,
         "reconcile": _reconcile, "scale": _scale}

if __name__ == "__main__":
    main()
