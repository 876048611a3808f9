"""Benchmark ``metering`` (issue 16): the ingest rate of Ceilometer samples.

``POST /webhooks/ceilometer`` with batches of samples shaped exactly as Ceilometer 19's HTTP
publisher sends them (``tests/metering_ingest/captured_ceilometer19.json``, new message ids
per sample), from ``CLIENTS`` concurrent publishers, with a token bound to
``metering-ingest`` sent as basic credentials (as the publisher sends it). Reported: samples
stored per second, POST latency p50/p99, server CPU per sample; and the same batches
re-posted (every sample a duplicate: the publisher's retries). Summary latency over a
million usage rows is ``bench/ledger_summary.py``.

    .venv/bin/python -m bench.metering [--samples 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from .common import cpu_seconds, percentile, start_server, stop_server

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


def bench_metering(samples: int, batch: int, report: Any, work: Path) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    class Printed:
        details: dict[str, Any] = {}

        def add(self, *row: Any) -> None:
            print(*row, sep="\t")

    bench_metering(args.samples, args.batch, Printed(), Path("."))


if __name__ == "__main__":
    main()
