"""Benchmark ``metering`` (issue 16): the ingest rate of Ceilometer samples, and the CPU the
usage accounting costs per reconciled change.

``POST /webhooks/ceilometer`` with batches of samples shaped exactly as Ceilometer 19's HTTP
publisher sends them (``tests/metering_ingest/captured_ceilometer19.json``, new message ids
per sample), from ``CLIENTS`` concurrent publishers, with a token bound to
``metering-ingest`` sent as basic credentials (as the publisher sends it). Reported: samples
stored per second, POST latency p50/p99, server CPU per sample; and the same batches
re-posted (every sample a duplicate: the publisher's retries). Summary latency over a
million usage rows is ``bench/ledger_summary.py``.

Usage accounting CPU per reconciled change: ``N`` Servers created, resized and deleted
(``3 N`` changes, each reconciled to Ready or gone) on the sandbox at speed 0, once with
the metering service on and once with ``services`` without it, on otherwise identical
servers. The server's CPU from the first create until every Server is gone — and, with
metering, until the accountant has folded the last deletion into the ledger (read from
the server's SQLite file) — divided by the changes; the difference is what the accountant
(and the API's metering routes, idle here) add per change. With metering the ledger must
hold exactly two rows per Server (the two flavors; more only if a run crosses a full hour),
else the run fails.

    .venv/bin/python -m bench.metering [--samples 100000] [--batch 500] [--servers 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from .common import (
    SERVERS,
    SUBNETS,
    Conn,
    ScsServer,
    connect,
    cpu_seconds,
    percentile,
    start_server,
    stop_server,
    wait_ready,
)

CAPTURED = Path(__file__).resolve().parent.parent / "tests" / "metering_ingest" / \
    "captured_ceilometer19.json"
WEBHOOK = "/webhooks/ceilometer"
CLIENTS = 4
CONFIG = "identity: {type: none}\n"


def batches(samples: int, batch: int) -> list[bytes]:
    template = json.loads(json.loads(CAPTURED.read_text())[0]["body"])[0]
    out = []
    for start in range(0, samples, batch):
        items = [{**template, "id": str(uuid.uuid4()),
                  "resource_id": str(uuid.UUID(int=i))}
                 for i in range(start, min(samples, start + batch))]
        out.append(json.dumps(items).encode())
    return out


def ingest_token(server: Any) -> str:
    with httpx.Client(base_url=server.url, verify=str(server.ca_file), timeout=30,
                      headers={"Authorization": f"Bearer {server.token}"}) as admin:
        name = "bench-ceilometer"
        admin.post("/api/v1/namespaces/default/serviceaccounts",
                   json={"metadata": {"name": name}}).raise_for_status()
        admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json={
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "metering-ingest"},
            "subjects": [{"kind": "ServiceAccount", "name": name,
                          "namespace": "default"}]}).raise_for_status()
        answer = admin.post(f"/api/v1/namespaces/default/serviceaccounts/{name}/token", json={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
        answer.raise_for_status()
        return str(answer.json()["status"]["token"])


def post_all(server: Any, token: str, bodies: list[bytes]) -> dict[str, Any]:
    auth = base64.b64encode(f"ceilometer:{token}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
    stored, latencies = [0], []

    def post(body: bytes) -> None:
        with httpx.Client(base_url=server.url, verify=str(server.ca_file), timeout=120,
                          headers=headers) as http:
            began = time.perf_counter()
            answer = http.post(WEBHOOK, content=body)
            latencies.append(time.perf_counter() - began)
            answer.raise_for_status()
            stored[0] += int(answer.json()["stored"])

    cpu_before, began = cpu_seconds(server.proc.pid), time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(post, bodies))
    wall, cpu = time.perf_counter() - began, cpu_seconds(server.proc.pid) - cpu_before
    samples = sum(len(json.loads(b)) for b in bodies)
    return {"samples": samples, "stored": stored[0], "seconds": round(wall, 3),
            "samples_per_s": round(samples / wall, 1),
            "post_p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "post_p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "cpu_us_per_sample": round(cpu / samples * 1e6, 1)}


def bench_metering(samples: int, batch: int, report: Any, work: Path,
                   servers: int = 0) -> None:
    """The Ceilometer ingest, then (``servers`` > 0) the usage accounting."""
    server = start_server(config=CONFIG, timeout=180,
                          args=("--rate-limit", "1000000", "--rate-burst", "1000000"))
    try:
        token = ingest_token(server)
        bodies = batches(samples, batch)
        fresh = post_all(server, token, bodies)
        again = post_all(server, token, bodies)
    finally:
        stop_server(server)
    report.details["metering"] = {"batch": batch, "clients": CLIENTS, "new": fresh,
                                  "duplicates": again}
    report.add("metering", f"Ceilometer ingest samples/s ({batch} per POST, {CLIENTS} "
               "publishers)", fresh["samples_per_s"])
    report.add("metering", "Ceilometer ingest POST p99 ms", fresh["post_p99_ms"])
    report.add("metering", "Ceilometer ingest server CPU µs per sample",
               fresh["cpu_us_per_sample"])
    report.add("metering", "re-posted (all duplicates) samples/s", again["samples_per_s"])
    if servers:
        bench_accounting(servers, report)


# -- usage accounting CPU per reconciled change ----------------------------------------------
NAMESPACE = "meter"
ACCOUNTING_CONFIG = "identity: {type: none}\nproviders:\n  iaas: {type: sandbox, speed: 0}\n"
WITHOUT_METERING = "services: [tenancy, iaas, kaas, iam, status]\n"
FLAVORS = ("SCS-1V-2", "SCS-2V-4")
CONNECTIONS = 8
SETTLE_TIMEOUT = 600.0


def bench_accounting(servers: int, report: Any) -> None:
    """Metering on and off, on otherwise identical servers (module docstring)."""
    runs = {"on": _accounting_run(servers, metering=True),
            "off": _accounting_run(servers, metering=False)}
    on, off = runs["on"]["cpu_us_per_change"], runs["off"]["cpu_us_per_change"]
    report.details["metering_accounting"] = {"servers": servers, "changes": 3 * servers,
                                             **runs}
    label = f"usage accounting ({servers} Servers created, resized, deleted)"
    report.add("metering", f"{label}: server CPU µs per change, metering on", on)
    report.add("metering", f"{label}: server CPU µs per change, metering off", off)
    report.add("metering", "usage accounting CPU µs per reconciled change (on − off)",
               round(on - off, 1))
    report.add("metering", "accountant alone, CPU µs per change (replaying the run's log)",
               runs["on"]["replay"]["cpu_us_per_change"])


def _accounting_run(servers: int, metering: bool) -> dict[str, Any]:
    from central_api.providers.sandbox import set_quota
    from central_api.store.sqlite import SqliteStore

    data_dir = Path(tempfile.mkdtemp(prefix="scs-bench-accounting-"))
    store = SqliteStore(data_dir / "state.db")
    set_quota(store, NAMESPACE, instances=servers * 2, cores=servers * 4,
              ramMiB=servers * 8192)
    store.close()
    config = ACCOUNTING_CONFIG + ("" if metering else WITHOUT_METERING)
    server = start_server(data_dir=data_dir, config=config, timeout=180)
    try:
        result = asyncio.run(_lifecycle(server, servers,
                                        data_dir / "state.db" if metering else None))
        stop_server(server, remove=False)
        if metering:
            result["replay"] = _replay(data_dir / "state.db", servers)
        return result
    finally:
        stop_server(server)
        shutil.rmtree(data_dir, ignore_errors=True)


def _replay(db: Path, servers: int) -> dict[str, Any]:
    """The accountant alone: its CPU folding the run's whole log again, in this process,
    on the stopped server's database with the ledger emptied — the on/off difference of
    the server's CPU is the operator's number but noisy at small sizes; this one is not."""
    import sqlite3

    from central_api.controllers.metering import Accountant
    from central_api.store import open_store
    from central_api.store.ledger import Ledger

    with sqlite3.connect(db) as raw:
        for table in ("ledger_folds", "ledger_states", "ledger_rows", "ledger_hours"):
            raw.execute(f"DELETE FROM {table}")  # noqa: S608 - constant names
        raw.execute("UPDATE ledger_counters SET value = 0")
        revisions = int(raw.execute("SELECT COUNT(*) FROM kv").fetchone()[0])
    store = open_store(f"sqlite:///{db}")
    try:
        accountant = Accountant(store, Ledger(store))
        began = time.process_time()
        while accountant.step():
            pass
        cpu = time.process_time() - began
        rows = len(Ledger(store).rows(namespace=NAMESPACE, limit=10_000))
    finally:
        store.close()
    return {"revisions": revisions, "rows": rows, "cpu_seconds": round(cpu, 3),
            "cpu_us_per_change": round(cpu / (3 * servers) * 1e6, 1)}


async def _lifecycle(server: ScsServer, n: int, ledger_db: Path | None) -> dict[str, Any]:
    """Create, resize and delete ``n`` Servers, each step waited for; the server's CPU."""
    collection = SERVERS.format(ns=NAMESPACE)
    conn = await connect(server)
    await _network(conn)
    pid = server.proc.pid if server.proc else 0
    cpu_before, began = cpu_seconds(pid), time.perf_counter()
    await _each(server, n, lambda c, i: c.json("POST", collection, _server_body(i)))
    await _settled(server, collection, lambda items: _ready_count(items, 1) == n)
    patch = json.dumps({"spec": {"flavor": FLAVORS[1]}}).encode()
    await _each(server, n, lambda c, i: _expect(c, c.build(
        "PATCH", f"{collection}/vm-{i:05d}", patch, "application/merge-patch+json")))
    await _settled(server, collection, lambda items: _ready_count(items, 2) == n)
    await _each(server, n, lambda c, i: _expect(c, c.build(
        "DELETE", f"{collection}/vm-{i:05d}")))
    revision = await _settled(server, collection, lambda items: not items)
    rows = await asyncio.to_thread(_wait_folded, ledger_db, revision) if ledger_db else None
    wall, cpu = time.perf_counter() - began, cpu_seconds(pid) - cpu_before
    conn.close()
    if rows is not None and rows < 2 * n:
        raise RuntimeError(f"the ledger holds {rows} rows for {n} Servers, not {2 * n}")
    return {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 3), "ledger_rows": rows,
            "cpu_us_per_change": round(cpu / (3 * n) * 1e6, 1)}


async def _network(conn: Conn) -> None:
    await conn.json("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    await conn.json("POST", f"/apis/iaas.scs.community/v1alpha1/namespaces/{NAMESPACE}/"
                    "networks", {"apiVersion": "iaas.scs.community/v1alpha1",
                                 "kind": "Network", "metadata": {"name": "net"}})
    subnets = SUBNETS.format(ns=NAMESPACE)
    await conn.json("POST", subnets, {
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Subnet",
        "metadata": {"name": "net-v4"},
        "spec": {"networkRef": {"name": "net"}, "cidr": "10.64.0.0/16"}})
    await wait_ready(conn, f"{subnets}/net-v4", 60)


def _server_body(i: int) -> dict[str, Any]:
    return {"apiVersion": "iaas.scs.community/v1alpha1", "kind": "Server",
            "metadata": {"name": f"vm-{i:05d}"},
            "spec": {"flavor": FLAVORS[0], "image": "ubuntu-24.04",
                     "networks": [{"name": "net"}]}}


async def _expect(conn: Conn, request: bytes) -> None:
    status, raw = await conn.send_raw(request)
    if status not in (200, 201, 202):
        raise RuntimeError(f"HTTP {status}: {raw[:300]!r}")


async def _each(server: ScsServer, n: int, call: Callable[[Conn, int], Awaitable[Any]]
                ) -> None:
    """``call(conn, i)`` for i in 0..n-1 over :data:`CONNECTIONS` keep-alive connections."""
    conns = [await connect(server) for _ in range(CONNECTIONS)]

    async def worker(conn: Conn, indices: range) -> None:
        for i in indices:
            await call(conn, i)

    try:
        await asyncio.gather(*(worker(c, range(k, n, CONNECTIONS))
                               for k, c in enumerate(conns)))
    finally:
        for c in conns:
            c.close()


def _ready_count(items: list[dict[str, Any]], generation: int) -> int:
    """Items Ready for ``generation`` (their controller applied that spec)."""
    return sum(1 for item in items if item["metadata"].get("generation") == generation
               and any(c.get("type") == "Ready" and c.get("status") == "True"
                       and c.get("observedGeneration") == generation
                       for c in (item.get("status") or {}).get("conditions") or []))


async def _settled(server: ScsServer, collection: str,
                   done: Callable[[list[dict[str, Any]]], bool]) -> int:
    """Poll a paginated list until ``done(items)``; the list's revision then."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    conn = await connect(server)
    try:
        while True:
            items, token, revision = [], "", 0
            while True:
                page = await conn.json("GET", collection + "?limit=500"
                                       + (f"&continue={token}" if token else ""))
                items += page["items"]
                revision = revision or int(page["metadata"]["resourceVersion"])
                token = page["metadata"].get("continue", "")
                if not token:
                    break
            if done(items):
                return revision
            if time.monotonic() > deadline:
                raise RuntimeError(f"{collection} did not settle in {SETTLE_TIMEOUT:g}s")
            await asyncio.sleep(0.2)
    finally:
        conn.close()


def _wait_folded(db: Path, revision: int) -> int:
    """Wait until the accountant folded the log up to ``revision`` (every Server closed);
    the ledger's rows of the namespace. Read from the server's SQLite file."""
    from central_api.store import open_store
    from central_api.store.ledger import Ledger

    ledger = Ledger(open_store(f"sqlite:///{db}"))
    try:
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while ledger.cursor() < revision or ledger.open_states():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the accountant did not reach revision {revision}")
            time.sleep(0.05)
        rows, after = 0, 0
        while page := ledger.rows(namespace=NAMESPACE, after_seq=after, limit=10_000):
            rows, after = rows + len(page), page[-1].seq
        return rows
    finally:
        ledger.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--servers", type=int, default=1000,
                        help="Servers created, resized and deleted for the accounting CPU")
    args = parser.parse_args()

    class Printed:
        details: dict[str, Any] = {}

        def add(self, *row: Any) -> None:
            print(*row, sep="\t")

    bench_metering(args.samples, args.batch, Printed(), Path("."), args.servers)


if __name__ == "__main__":
    main()
