"""A stand-in management cluster: a second ``scs serve`` with the upstream CRDs installed.

No Kubernetes, Cluster API or Gardener can run on our machines, so the KaaS providers are
tested against a real Kubernetes-style API server that serves the upstream kinds (Cluster API
Clusters and ClusterClasses, cluster-stack releases, Gardener Shoots and CloudProfiles) from
their real schemas (``tests/kaas/upstream/``). The providers speak only the Kubernetes API to
it, as they would to a real management cluster. What the real controllers would do (advance
conditions, write kubeconfig Secrets, delete) is done by test-side simulators that say so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.server import ScsServer

UPSTREAM = Path(__file__).resolve().parent / "upstream"
CAPI_CRDS = ("cluster.x-k8s.io_clusters.yaml", "cluster.x-k8s.io_clusterclasses.yaml",
             "clusterstack.x-k8s.io_clusterstackreleases.yaml")
GARDENER_CRDS = ("shoots.core.gardener.cloud.crd.yaml",
                 "cloudprofiles.core.gardener.cloud.crd.yaml")
SCS2_CLASS = UPSTREAM / "clusterclass-openstack-scs2-1-34-v2.v1beta2.yaml"
STANDIN_CONFIG: dict[str, Any] = {"services": [], "identity": {"type": "none"}}
"""Only Kubernetes' own groups and the installed CRDs: a management cluster, not a Central
API (no SCS kinds, no controllers, no onboarding)."""


class ManagementCluster:
    """The stand-in's server, its admin kubeconfig, and kubectl against it."""

    def __init__(self, data_dir: Path, crds: tuple[str, ...]) -> None:
        self.server = ScsServer(data_dir=data_dir, config=STANDIN_CONFIG)
        self.crds = crds

    def start(self) -> ManagementCluster:
        self.server.start()
        for name in self.crds:
            self.kubectl("apply", "--server-side", "-f", str(UPSTREAM / name))
        for name in self.crds:
            crd = yaml.safe_load_all((UPSTREAM / name).read_text())
            for doc in crd:
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    self.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                                 f"crd/{doc['metadata']['name']}")
        return self

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> ManagementCluster:
        """Start again after :meth:`stop`: the same port, data directory, token and CA, so
        clients holding its kubeconfig reconnect (an outage, not a new cluster)."""
        self.server.start()
        return self

    @property
    def kubeconfig(self) -> Path:
        return self.server.kubeconfig

    def kubectl(self, *args: str, input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
                              input=input, capture_output=True, text=True, check=check,
                              timeout=60)

    def apply(self, obj: dict[str, Any] | Path) -> None:
        text = obj.read_text() if isinstance(obj, Path) else yaml.safe_dump(obj)
        self.kubectl("apply", "--server-side", "-f", "-", input=text)

    def get(self, resource: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        ns = ["-n", namespace] if namespace else []
        done = self.kubectl("get", resource, name, *ns, "-o", "json", check=False)
        if done.returncode != 0:
            if "NotFound" in done.stderr:
                return None
            raise RuntimeError(done.stderr)
        return dict(yaml.safe_load(done.stdout))


def gardener_cloud_profile(name: str, region: str, zones: list[str],
                           versions: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``core.gardener.cloud/v1beta1`` CloudProfile for OpenStack (the fields its schema
    requires, SCS flavors as machine types)."""
    return {"apiVersion": "core.gardener.cloud/v1beta1", "kind": "CloudProfile",
            "metadata": {"name": name},
            "spec": {"type": "openstack", "kubernetes": {"versions": versions},
                     "regions": [{"name": region, "zones": [{"name": z} for z in zones]}],
                     "machineImages": [{"name": "gardenlinux", "versions": [
                         {"version": "1877.3.0", "architectures": ["amd64", "arm64"]}]}],
                     "machineTypes": [
                         {"name": flavor, "cpu": cpu, "gpu": 0, "memory": memory,
                          "architecture": arch, "usable": True}
                         for flavor, cpu, memory, arch in (
                             ("SCS-2V-4", 2, "4Gi", "amd64"),
                             ("SCS-4V-16", 4, "16Gi", "amd64"),
                             ("SCS-2V-4_a", 2, "4Gi", "arm64"))]}}
