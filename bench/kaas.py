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

import yaml

from tests.kaas.capi_simulator import CapiSimulator, install_cluster_stacks
from tests.kaas.standin import CAPI_CRDS, ManagementCluster

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


CLASS_NAMESPACE = "cluster-stacks"
RELEASES = {"openstack-scs2-1-34-v2": "v1.34.7"}
SIMULATOR_DELAY = 0.5
"""Seconds per simulated CAPI step (control plane, then workers): the management side's
time, the same for every cluster, so the rate shows what the Central API adds to it."""


def bench_kaas(clusters: int, capi_clusters: int, timeout: float, report: Any,
               work: Path) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="scs-bench-kaas-", dir=work))
    server = start_server(data_dir=data_dir, config=SANDBOX_CONFIG)
    try:
        result = asyncio.run(_clusters_to_ready(server, clusters, timeout))
    finally:
        stop_server(server)
    _report(report, "sandbox", f"kaas: {clusters} Clusters, sandbox", result, timeout)
    _report(report, "capi", f"kaas: {capi_clusters} Clusters, capi on the stand-in",
            _capi(capi_clusters, timeout, work), timeout)


def _capi(clusters: int, timeout: float, work: Path) -> dict[str, Any]:
    standin = ManagementCluster(Path(tempfile.mkdtemp(dir=work)), CAPI_CRDS).start()
    try:
        install_cluster_stacks(standin, CLASS_NAMESPACE, RELEASES)
        standin.kubectl("create", "namespace", "scs-kaas")  # the namespace's own "tenant"
        standin.kubectl("create", "secret", "generic", "openstack", "-n", "scs-kaas",
                        "--from-literal=clouds.yaml=clouds: {openstack: {}}")
        config = yaml.safe_dump({
            "services": ["tenancy", "iaas", "kaas"], "controllers": "in-process",
            "providers": {"iaas": {"type": "sandbox", "speed": 0},
                          "kaas": {"type": "capi", "capi": {
                              "kubeconfig": str(standin.kubeconfig),
                              "classNamespace": CLASS_NAMESPACE}}}})
        server = start_server(data_dir=Path(tempfile.mkdtemp(dir=work)), config=config)
        try:
            with CapiSimulator(standin, delay=SIMULATOR_DELAY, poll=max(0.2, clusters / 500)):
                pids = (standin.server.proc.pid,) if standin.server.proc else ()
                return asyncio.run(_clusters_to_ready(server, clusters, timeout, pids))
        finally:
            stop_server(server)
    finally:
        standin.stop()


def _report(report: Any, key: str, label: str, result: dict[str, Any],
            timeout: float) -> None:
    report.details[f"kaas_{key}"] = result
    report.add(label, "create -> Ready clusters/s", result["ready_rate"])
    report.add(label, "created / Ready within the time limit",
               f"{result['applied']} / {result['ready']} of {result['objects']} in "
               f"{timeout:g}s")
    report.add(label, "server CPU ms per Cluster (create to Ready)",
               result["cpu_ms_per_object"])
    if key == "capi":
        report.add(label, "stand-in management cluster CPU ms per Cluster",
                   result["other_cpu_ms_per_object"])
    report.add(label, "server peak RSS MiB", result["peak_rss_mib"])


async def _clusters_to_ready(server: Any, clusters: int, timeout: float,
                             pids: tuple[int, ...] = ()) -> dict[str, Any]:
    conn = await connect(server)
    await conn.json("POST", NAMESPACES, {"metadata": {"name": "kaas"}})
    conn.close()
    return await to_ready(server, CLUSTERS.format(ns="kaas"), cluster, clusters, timeout,
                          pids)
