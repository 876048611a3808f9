"""A TEST-SIDE SIMULATOR of Cluster API and the cluster-stack operator. Nothing here is CAPI.

No Kubernetes, Cluster API or OpenStack can run on our machines. The capi provider is tested
against the stand-in management cluster (``standin.py``: a second ``scs serve`` serving the
upstream CRDs), and this simulator does to its objects what the real controllers would do,
as far as a client can observe it, through the same Kubernetes API:

- the cluster-stack operator: ClusterClasses and ready ClusterStackReleases in the class
  namespace (:func:`install_cluster_stacks`);
- CAPI's topology controller and webhook: a topology whose variables do not match the
  ClusterClass's schemas (or an unknown class) gets ``TopologyReconciled=False`` with reason
  ``ReconcileFailed`` and the message, nothing is built;
- the infrastructure provider: ``spec.controlPlaneEndpoint`` once the "load balancer" is
  there; a pool whose flavor the "cloud" does not have never gets nodes
  (``WorkersAvailable=False`` with OpenStack's message);
- kubeadm: the ``<name>-ca`` Secret (a real generated CA) and ``<name>-kubeconfig``;
- the Cluster controller: the control plane first, then the workers, upgrades control plane
  first; v1beta2 conditions, the deprecated v1beta1 ones, ``status.phase``,
  ``status.controlPlane/workers``; deletion holds CAPI's finalizer for a while.

Each step takes ``delay`` seconds. It polls the stand-in over HTTPS with the stand-in's admin
token (a thread; a stopped stand-in only makes its polls fail until it is back).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import ssl
import threading
import time
from typing import Any

import httpx
import jsonschema
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.kaas.standin import SCS2_CLASS, ManagementCluster

CAPI = "/apis/cluster.x-k8s.io/v1beta2"
CSO = "/apis/clusterstack.x-k8s.io/v1alpha1"
FINALIZER = "cluster.cluster.x-k8s.io"
CLOUD_FLAVORS = frozenset({"SCS-1V-2", "SCS-2V-4", "SCS-2V-8", "SCS-4V-8", "SCS-4V-16",
                           "SCS-8V-32", "SCS-2V-4-20s", "SCS-4V-16-100s"})
"""The flavors the simulated OpenStack project has."""


def install_cluster_stacks(standin: ManagementCluster, namespace: str,
                           releases: dict[str, str]) -> None:
    """What the CSP's ClusterStacks make the cluster-stack operator install: per name
    (``openstack-scs2-1-34-v2``) the scs2 ClusterClass and a ready ClusterStackRelease
    with that Kubernetes version."""
    standin.kubectl("create", "namespace", namespace, check=False)
    scs2 = yaml.safe_load(SCS2_CLASS.read_text())
    with _client(standin) as http:
        for name, version in releases.items():
            cls = copy.deepcopy(scs2)
            cls["metadata"] = {"name": name, "namespace": namespace}
            standin.apply(cls)
            standin.apply({"apiVersion": "clusterstack.x-k8s.io/v1alpha1",
                           "kind": "ClusterStackRelease",
                           "metadata": {"name": name, "namespace": namespace}, "spec": {}})
            done = http.patch(f"{CSO}/namespaces/{namespace}/clusterstackreleases/{name}/status",
                              json={"status": {"kubernetesVersion": version, "ready": True}},
                              headers={"Content-Type": "application/merge-patch+json"})
            assert done.status_code == 200, done.text


def _client(standin: ManagementCluster) -> httpx.Client:
    server = standin.server
    return httpx.Client(base_url=server.url, timeout=10,
                        verify=ssl.create_default_context(cafile=str(server.ca_file)),
                        headers={"Authorization": f"Bearer {server.token}"})


class CapiSimulator:
    """Polls the stand-in's CAPI Clusters and plays Cluster API's part (see the module)."""

    def __init__(self, standin: ManagementCluster, delay: float = 0.6,
                 poll: float = 0.2) -> None:
        self.standin = standin
        self.delay = delay
        self.poll = poll
        """Seconds between two LISTs of every CAPI Cluster (longer for many clusters)."""
        self.state: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="capi-simulator")
        self.errors: list[str] = []
        """Polls that failed (the stand-in was down)."""
        self.rejected: list[str] = []
        """Writes the stand-in refused: a bug of the simulator (its schema is upstream's)."""

    def __enter__(self) -> CapiSimulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        http = _client(self.standin)
        try:
            while not self._stop.wait(self.poll):
                try:
                    for item in http.get(f"{CAPI}/clusters").raise_for_status().json()["items"]:
                        Reconcile(self, http, item).run()
                except (httpx.HTTPError, OSError) as exc:
                    self.errors.append(str(exc))  # the stand-in is down: try again
        finally:
            http.close()


class Reconcile:
    """One pass over one CAPI Cluster."""

    def __init__(self, sim: CapiSimulator, http: httpx.Client, obj: dict[str, Any]) -> None:
        self.sim, self.http, self.obj = sim, http, obj
        meta = obj["metadata"]
        self.name, self.ns = meta["name"], meta["namespace"]
        self.path = f"{CAPI}/namespaces/{self.ns}/clusters/{self.name}"
        self.st = sim.state.setdefault(meta["uid"], {"born": time.monotonic()})
        self.now = time.monotonic()

    def run(self) -> None:
        meta = self.obj["metadata"]
        if meta.get("deletionTimestamp"):
            self.delete()
            return
        if FINALIZER not in (meta.get("finalizers") or []):
            self._patch(self.path, {"metadata": {"finalizers": [
                *(meta.get("finalizers") or []), FINALIZER]}})
        problems = self.topology_problems()
        if problems:
            self.write_status(self.refused(problems))
            return
        self.provision()

    # -- the topology webhook/controller -----------------------------------------------------
    def topology_problems(self) -> list[str]:
        topology = self.obj["spec"]["topology"]
        ref = topology["classRef"]
        found = self.http.get(f"{CAPI}/namespaces/{ref.get('namespace') or self.ns}/"
                              f"clusterclasses/{ref['name']}")
        if found.status_code == 404:
            return [f"ClusterClass {ref['name']} not found"]
        schemas = {v["name"]: v["schema"]["openAPIV3Schema"]
                   for v in found.json()["spec"].get("variables") or []}
        values = [("spec.topology.variables", v) for v in topology.get("variables") or []]
        for md in (topology.get("workers") or {}).get("machineDeployments") or []:
            values += [(f"spec.topology.workers.machineDeployments[{md['name']}]", v)
                       for v in (md.get("variables") or {}).get("overrides") or []]
        out = []
        for at, var in values:
            if var["name"] not in schemas:
                out.append(f"{at}[{var['name']}]: variable is not defined")
                continue
            for err in jsonschema.Draft7Validator(schemas[var["name"]]).iter_errors(
                    var["value"]):
                out.append(f"{at}[{var['name']}].value: {err.message}")
        return out

    def refused(self, problems: list[str]) -> dict[str, Any]:
        message = "; ".join(problems)
        return {"phase": self.obj.get("status", {}).get("phase") or "Pending",
                "conditions": [_new("TopologyReconciled", False, "ReconcileFailed", message)],
                "deprecated": {"v1beta1": {"conditions": [
                    _old("TopologyReconciled", False, "TopologyReconcileFailed", message)]}}}

    # -- provisioning ------------------------------------------------------------------------
    def provision(self) -> None:
        topology, st = self.obj["spec"]["topology"], self.st
        if st.get("target") != topology["version"]:
            st["target"], st["since"] = topology["version"], self.now
        upgraded = self.now - st["since"] >= self.sim.delay * (1 if st.get("running") else 2)
        if upgraded and st.get("running") != st["target"]:
            st["running"], st["workers_since"] = st["target"], self.now
        if st.get("running") and not self.obj["spec"].get("controlPlaneEndpoint"):
            self._patch(self.path, {"spec": {"controlPlaneEndpoint": {
                "host": f"{self.name}.{self.ns}.capi-simulator.invalid", "port": 6443}}})
        if st.get("running") and not st.get("secrets"):
            self.write_secrets()
            st["secrets"] = True
        self.write_status(self.progress(topology))

    def progress(self, topology: dict[str, Any]) -> dict[str, Any]:
        st = self.st
        pools = {md["name"]: md for md in (topology.get("workers") or {}).get(
            "machineDeployments") or []}
        wanted = {name: _replicas(md) for name, md in pools.items()}
        key = json.dumps([wanted, st.get("running")], sort_keys=True)
        if st.get("workers_key") != key:
            st["workers_key"], st["workers_since"] = key, max(self.now,
                                                              st.get("workers_since", 0))
        bad = {name: _flavor(md) for name, md in pools.items() if _flavor(md) not in
               CLOUD_FLAVORS}
        settled = bool(st.get("running")) and self.now - st["workers_since"] >= self.sim.delay
        if settled:
            st["ready"] = {n: (0 if n in bad else w) for n, w in wanted.items()}
        ready = sum((st.get("ready") or {}).get(n, 0) for n in wanted)
        plane = bool(st.get("running"))
        upgrading = plane and st["running"] != topology["version"]
        workers_ok = settled and not bad
        topo_ok = plane and not upgrading and settled
        message = "; ".join(f"MachineDeployment {n}: OpenStack: flavor {f!r} could not be "
                            "found" for n, f in bad.items())
        reason = "ClusterUpgrading" if upgrading else "ClusterCreating"
        conditions = [
            _new("InfrastructureReady", True, "Ready"),
            _new("ControlPlaneAvailable", plane, "Available" if plane else "NotAvailable"),
            _new("WorkersAvailable", workers_ok, "Available" if workers_ok else "NotAvailable",
                 message),
            _new("TopologyReconciled", topo_ok, "ReconcileSucceeded" if topo_ok else reason),
            _new("Available", plane and workers_ok and topo_ok,
                 "Available" if plane and workers_ok and topo_ok else "NotAvailable")]
        desired_cp = int(topology.get("controlPlane", {}).get("replicas") or 1)
        return {
            "phase": "Provisioned" if plane else "Provisioning",
            "conditions": conditions,
            "deprecated": {"v1beta1": {"conditions": [
                _old("Ready", plane and workers_ok and topo_ok),
                _old("ControlPlaneReady", plane), _old("InfrastructureReady", True),
                _old("TopologyReconciled", topo_ok, "" if topo_ok else reason)]}},
            "initialization": {"infrastructureProvisioned": True,
                               "controlPlaneInitialized": plane},
            "controlPlane": {"desiredReplicas": desired_cp,
                             "readyReplicas": desired_cp if plane else 0,
                             **({"versions": [{"version": st["running"],
                                               "replicas": desired_cp}]} if plane else {})},
            "workers": {"desiredReplicas": sum(wanted.values()), "readyReplicas": ready}}

    def write_status(self, status: dict[str, Any]) -> None:
        status["observedGeneration"] = self.obj["metadata"]["generation"]
        old = self.obj.get("status") or {}
        comparable = {k: v for k, v in old.items() if k in status}
        if _strip_times(comparable) != _strip_times(status):
            self._patch(f"{self.path}/status", {"status": status})

    def write_secrets(self) -> None:
        ca_pem, key_pem = _certificate_authority(self.name)
        endpoint = f"https://{self.name}.{self.ns}.capi-simulator.invalid:6443"
        kubeconfig = {"apiVersion": "v1", "kind": "Config", "clusters": [
            {"name": self.name, "cluster": {"server": endpoint,
                                            "certificate-authority-data": _b64(ca_pem)}}],
            "users": [{"name": f"{self.name}-admin", "user": {"token": "long-lived-admin"}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name,
                                                         "user": f"{self.name}-admin"}}],
            "current-context": self.name}
        labels = {"cluster.x-k8s.io/cluster-name": self.name}
        for name, data in ((f"{self.name}-ca", {"tls.crt": _b64(ca_pem),
                                                "tls.key": _b64(key_pem)}),
                           (f"{self.name}-kubeconfig",
                            {"value": _b64(yaml.safe_dump(kubeconfig).encode())})):
            self.http.post(f"/api/v1/namespaces/{self.ns}/secrets", json={
                "metadata": {"name": name, "labels": labels},
                "type": "cluster.x-k8s.io/secret", "data": data})

    # -- deletion ----------------------------------------------------------------------------
    def delete(self) -> None:
        st = self.st
        if "deleting" not in st:
            st["deleting"] = self.now
            self._patch(f"{self.path}/status", {"status": {"phase": "Deleting"}})
            return
        if self.now - st["deleting"] < self.sim.delay * 2:
            return
        for suffix in ("ca", "kubeconfig"):
            self.http.delete(f"/api/v1/namespaces/{self.ns}/secrets/{self.name}-{suffix}")
        finalizers = [f for f in self.obj["metadata"].get("finalizers") or [] if f != FINALIZER]
        self._patch(self.path, {"metadata": {"finalizers": finalizers}})

    def _patch(self, path: str, body: dict[str, Any]) -> None:
        done = self.http.patch(path, json=body,
                               headers={"Content-Type": "application/merge-patch+json"})
        if done.status_code not in (200, 404, 409):
            self.sim.rejected.append(f"PATCH {path}: {done.status_code} {done.text}")


def _replicas(md: dict[str, Any]) -> int:
    if md.get("replicas") is not None:
        return int(md["replicas"])
    annotations = (md.get("metadata") or {}).get("annotations") or {}
    return int(annotations.get("cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size")
               or 0)


def _flavor(md: dict[str, Any]) -> str:
    overrides = (md.get("variables") or {}).get("overrides") or []
    return str(next((v["value"] for v in overrides if v["name"] == "workerFlavor"),
                    "SCS-4V-8"))


def _new(type_: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason or type_,
            "message": message, "lastTransitionTime": _stamp()}


def _old(type_: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    found = {"type": type_, "status": "True" if ok else "False",
             "lastTransitionTime": _stamp()}
    if not ok:
        found |= {"severity": "Error" if "Failed" in reason else "Info",
                  "reason": reason or "WaitingFor" + type_}
    if message:
        found["message"] = message
    return found


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _strip_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_times(v) for k, v in value.items() if k != "lastTransitionTime"}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _certificate_authority(name: str) -> tuple[bytes, bytes]:
    """A real self-signed CA, as kubeadm makes one per cluster."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-kubernetes")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=False, content_commitment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


__all__ = ["CLOUD_FLAVORS", "CapiSimulator", "install_cluster_stacks"]
