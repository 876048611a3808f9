"""Benchmark ``kaas`` (issue 14): N Clusters to Ready, on the sandbox and on the CAPI path.

- **sandbox**: the embedded simulated backend at speed 0 (no simulated delays), so the
  figures are the Central API's own cost per cluster: admission, the KaaS controller's
  passes and status writes, the sandbox's records.
- **capi**: the Cluster API provider against the stand-in management cluster (a second
  ``scs serve`` with the upstream CRDs, ``tests/kaas/standin.py``) with the test-side CAPI
  simulator playing Cluster API's controllers. The stand-in's and the simulator's CPU are
  reported apart from the Central API's.

Reported: clusters/s to Ready, server CPU per cluster (API and in-process controllers),
peak RSS of the server.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from .common import NAMESPACES, connect, start_server, stop_server
from .ready import to_ready

CLUSTERS = "/apis/kaas.scs.community/v1alpha1/namespaces/{ns}/clusters"
SANDBOX_CONFIG = """\
services: [tenancy, iaas, kaas]
controllers: in-process
providers:
  iaas: {type: sandbox, speed: 0}
  kaas: {type: sandbox, speed: 0}
"""


def cluster(i: int) -> dict[str, Any]:
    return {"apiVersion": "kaas.scs.community/v1alpha1", "kind": "Cluster",
            "metadata": {"name": f"k-{i:05d}"},
            "spec": {"kubernetesVersion": "1.34",
                     "nodePools": [{"name": "general", "flavor": "SCS-2V-4", "replicas": 3}]}}


def bench_kaas(clusters: int, timeout: float, report: Any, work: Path) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="scs-bench-kaas-", dir=work))
    server = start_server(data_dir=data_dir, config=SANDBOX_CONFIG)
    try:
        result = asyncio.run(_sandbox(server, clusters, timeout))
    finally:
        stop_server(server)
    report.details["kaas_sandbox"] = result
    label = f"kaas: {clusters} Clusters, sandbox"
    report.add(label, "create -> Ready clusters/s", result["ready_rate"])
    report.add(label, "created / Ready within the time limit",
               f"{result['applied']} / {result['ready']} of {clusters} in {timeout:g}s")
    report.add(label, "server CPU ms per Cluster (create to Ready)",
               result["cpu_ms_per_object"])
    report.add(label, "server peak RSS MiB", result["peak_rss_mib"])


async def _sandbox(server: Any, clusters: int, timeout: float) -> dict[str, Any]:
    conn = await connect(server)
    await conn.json("POST", NAMESPACES, {"metadata": {"name": "kaas"}})
    conn.close()
    return await to_ready(server, CLUSTERS.format(ns="kaas"), cluster, clusters, timeout)
