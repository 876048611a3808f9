"""Clusters on the capi provider end to end: the real ``scs serve``, the real kubectl, a
stand-in management cluster, and a simulator of Cluster API.

What is real: the Central API server and its KaaS controller with ``providers.kaas.type:
capi``, the provider's Kubernetes client, and a second ``scs serve`` as the management
cluster serving the upstream Cluster API and cluster-stack CRDs (``standin.py``), checked
with its own kubectl after every step, field by field. What is simulated: what CAPI's and
the cluster-stack operator's controllers would do to those objects (``capi_simulator.py``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from central_api.config import CapiConfig, KubeconfigConfig
from central_api.providers.base import Scope
from central_api.providers.capi import capi_kaas_provider
from central_api.providers.kaas import AdminRequest
from tests.controllers.conftest import Cluster as Harness
from tests.controllers.conftest import Launcher, condition, eventually, unique
from tests.kaas.capi_simulator import CapiSimulator, install_cluster_stacks
from tests.kaas.standin import CAPI_CRDS, ManagementCluster
from tests.kaas.test_clusters import KAAS, apply, cluster, get, patch, pools, settled

pytestmark = pytest.mark.slow

CLASS_NAMESPACE = "cluster-stacks"
RELEASES = {"openstack-scs2-1-33-v4": "v1.33.9", "openstack-scs2-1-33-v5": "v1.33.10",
            "openstack-scs2-1-34-v1": "v1.34.6", "openstack-scs2-1-34-v2": "v1.34.7"}
OWNER = "kaas.scs.community/owner-uid"
WAIT = 45.0


class World:
    """The stand-in management cluster with its simulator, and the Central API."""

    def __init__(self, standin: ManagementCluster, simulator: CapiSimulator,
                 harness: Harness) -> None:
        self.standin = standin
        self.simulator = simulator
        self.harness = harness

    def namespace(self, prefix: str, credentials: bool = True) -> tuple[str, str]:
        """A Central API namespace (no tenant: its own) and its management namespace,
        with the tenant's OpenStack credentials Secret there unless told otherwise."""
        ns = self.harness.create_namespace(prefix)
        mgmt = f"scs-{ns}"
        if credentials:
            self.credentials(mgmt)
        return ns, mgmt

    def credentials(self, mgmt: str) -> None:
        self.standin.kubectl("create", "namespace", mgmt, check=False)
        self.standin.kubectl("create", "secret", "generic", "openstack", "-n", mgmt,
                             "--from-literal=clouds.yaml=clouds: {openstack: {}}")

    def capi(self, uid: str, namespace: str = "") -> list[dict[str, Any]]:
        """The CAPI Clusters made for Central API object ``uid`` (in ``namespace``, or in
        all namespaces)."""
        where = ["-n", namespace] if namespace else ["-A"]
        done = self.standin.kubectl("get", "clusters.cluster.x-k8s.io", *where, "-l",
                                    f"{OWNER}={uid}", "-o", "json")
        return list(json.loads(done.stdout)["items"])

    def one(self, uid: str, namespace: str) -> dict[str, Any]:
        found = self.capi(uid)
        assert len(found) == 1, [(o["metadata"]["namespace"], o["metadata"]["name"])
                                 for o in found]
        assert found[0]["metadata"]["namespace"] == namespace
        return found[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    standin = ManagementCluster(tmp_path_factory.mktemp("standin"), CAPI_CRDS).start()
    launcher = Launcher(tmp_path_factory.mktemp("capi"))
    try:
        install_cluster_stacks(standin, CLASS_NAMESPACE, RELEASES)
        with CapiSimulator(standin) as simulator:
            harness = launcher.start({
                "services": ["tenancy", "iaas", "kaas"], "resyncSeconds": 3,
                "providers": {"iaas": {"type": "sandbox", "speed": 10},
                              "kaas": {"type": "capi", "capi": {
                                  "kubeconfig": str(standin.kubeconfig),
                                  "classNamespace": CLASS_NAMESPACE}}}})
            yield World(standin, simulator, harness)
            assert not simulator.rejected, simulator.rejected[:3]
    finally:
        launcher.cleanup()
        standin.stop()


def workers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["spec"]["topology"]["workers"]["machineDeployments"])


def variables(obj: dict[str, Any]) -> dict[str, Any]:
    return {v["name"]: v["value"] for v in obj["spec"]["topology"].get("variables") or []}


def test_the_offer_is_the_cluster_stacks_releases(world: World) -> None:
    profile = eventually(lambda: (r := world.harness.http.get(
        f"{KAAS}/clusterprofiles/default")).status_code == 200 and r.json(), what="profile")
    assert profile["spec"]["provider"] == "capi"
    assert [v["version"] for v in profile["spec"]["kubernetes"]["versions"]] == [
        "1.33.9", "1.33.10", "1.34.6", "1.34.7"]
    assert [(c["name"], c["classification"]) for c in profile["spec"]["clusterClasses"]] == [
        ("openstack-scs2-1-33-v4", "deprecated"), ("openstack-scs2-1-33-v5", "supported"),
        ("openstack-scs2-1-34-v1", "deprecated"), ("openstack-scs2-1-34-v2", "supported")]
    assert profile["spec"]["hostedControlPlanes"] is False


def test_lifecycle_writes_the_capi_cluster_field_by_field(world: World) -> None:
    h = world.harness
    ns, mgmt = world.namespace("life")
    oidc = {"issuerURL": "https://id.example/realms/acme", "clientID": "kubectl"}
    apply(h, ns, cluster("life", "1.33.9", oidc=oidc, nodePools=[
        {"name": "general", "flavor": "SCS-2V-4", "replicas": 2, "zones": ["nova"]}]))
    found = settled(h, ns, "life", WAIT)
    uid = found["metadata"]["uid"]
    obj = world.one(uid, mgmt)
    name = obj["metadata"]["name"]
    assert found["status"]["backendName"] == name == "kc-" + uid.replace("-", "")[:16]
    assert obj["metadata"]["labels"][OWNER] == uid
    assert obj["metadata"]["labels"]["kaas.scs.community/namespace"] == ns
    assert obj["spec"]["clusterNetwork"] == {"pods": {"cidrBlocks": ["172.16.0.0/16"]},
                                             "services": {"cidrBlocks": ["10.96.0.0/12"]}}
    topology = obj["spec"]["topology"]
    assert topology["classRef"] == {"name": "openstack-scs2-1-33-v4",  # installs 1.33.9
                                    "namespace": CLASS_NAMESPACE}
    assert topology["version"] == "v1.33.9"
    assert topology["controlPlane"] == {"replicas": 1}
    assert variables(obj) == {
        "identityRef": {"name": "openstack", "cloudName": "openstack"},
        "oidcConfig": {**oidc, "usernameClaim": "preferred_username", "groupsClaim": "groups",
                       "usernamePrefix": "oidc:", "groupsPrefix": "oidc:"}}
    assert workers(obj) == [{"class": "default-worker", "name": "general", "replicas": 2,
                             "failureDomain": "nova", "variables": {"overrides": [
                                 {"name": "workerFlavor", "value": "SCS-2V-4"}]}}]
    assert found["status"]["apiEndpoint"] == \
        f"https://{name}.{mgmt}.capi-simulator.invalid:6443"
    assert (found["status"]["kubernetesVersion"], found["status"]["clusterClass"],
            found["status"]["provider"]) == ("1.33.9", "openstack-scs2-1-33-v4", "capi")
    assert pools(found) == {"general": (2, 2)}

    patch(h, ns, "life", [{"op": "replace", "path": "/spec/nodePools/0/replicas", "value": 3}])
    assert pools(settled(h, ns, "life", WAIT)) == {"general": (3, 3)}
    assert workers(world.one(uid, mgmt))[0]["replicas"] == 3

    burst = {"name": "burst", "flavor": "SCS-4V-8", "rootDiskGiB": 0,
             "autoscaling": {"min": 1, "max": 3},
             "labels": {"node.cluster.x-k8s.io/pool": "burst"},
             "taints": [{"key": "burst", "value": "yes", "effect": "NoSchedule"}]}
    patch(h, ns, "life", [{"op": "add", "path": "/spec/nodePools/-", "value": burst}])
    assert pools(settled(h, ns, "life", WAIT)) == {"general": (3, 3), "burst": (1, 1)}
    assert workers(world.one(uid, mgmt))[1] == {
        "class": "default-worker", "name": "burst",
        "metadata": {"labels": {"node.cluster.x-k8s.io/pool": "burst"}, "annotations": {
            "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size": "1",
            "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size": "3"}},
        "taints": [{"key": "burst", "value": "yes", "effect": "NoSchedule",
                    "propagation": "Always"}],
        "variables": {"overrides": [{"name": "workerFlavor", "value": "SCS-4V-8"},
                                    {"name": "workerRootDisk", "value": 0}]}}

    patch(h, ns, "life", [{"op": "remove", "path": "/spec/nodePools/0"}])
    assert pools(settled(h, ns, "life", WAIT)) == {"burst": (1, 1)}
    assert [md["name"] for md in workers(world.one(uid, mgmt))] == ["burst"]

    patch(h, ns, "life", [{"op": "replace", "path": "/spec/kubernetesVersion",
                           "value": "1.33.10"}])
    settled(h, ns, "life", WAIT, kubernetesVersion="1.33.10")
    topology = world.one(uid, mgmt)["spec"]["topology"]
    assert (topology["version"], topology["classRef"]["name"]) == (
        "v1.33.10", "openstack-scs2-1-33-v5")

    patch(h, ns, "life", [
        {"op": "replace", "path": "/spec/kubernetesVersion", "value": "1.34.6"},
        {"op": "replace", "path": "/spec/clusterClass", "value": "openstack-scs2-1-34-v1"}])
    settled(h, ns, "life", WAIT, kubernetesVersion="1.34.6",
            clusterClass="openstack-scs2-1-34-v1")
    topology = world.one(uid, mgmt)["spec"]["topology"]
    assert (topology["version"], topology["classRef"]["name"]) == (
        "v1.34.6", "openstack-scs2-1-34-v1")

    patch(h, ns, "life", [
        {"op": "replace", "path": "/spec/kubernetesVersion", "value": "1.34.7"},
        {"op": "replace", "path": "/spec/clusterClass", "value": "openstack-scs2-1-34-v2"}])
    settled(h, ns, "life", WAIT, kubernetesVersion="1.34.7",
            clusterClass="openstack-scs2-1-34-v2")
    last = world.one(uid, mgmt)
    assert (last["spec"]["topology"]["version"], last["spec"]["topology"]["classRef"][
        "name"]) == ("v1.34.7", "openstack-scs2-1-34-v2")
    # seven applies later, what CAPI owns is still CAPI's: the endpoint and its finalizer
    assert last["spec"]["controlPlaneEndpoint"] == {
        "host": f"{name}.{mgmt}.capi-simulator.invalid", "port": 6443}
    assert "cluster.cluster.x-k8s.io" in last["metadata"]["finalizers"]
    assert last["metadata"]["uid"] == obj["metadata"]["uid"]

    h.kubectl("delete", "-n", ns, "clusters.kaas.scs.community", "life", "--wait=false")
    deleting = eventually(lambda: (o := world.capi(uid)) and
                          o[0]["metadata"].get("deletionTimestamp") and o[0], what="deleting")
    assert deleting["metadata"]["uid"] == obj["metadata"]["uid"]
    assert get(h, ns, "life") is not None, "the Cluster went before its CAPI Cluster"
    eventually(lambda: get(h, ns, "life") is None, WAIT, what="life gone")
    assert world.capi(uid) == []
    assert world.standin.get("secret", f"{name}-ca", mgmt) is None


def test_drift_is_repaired_and_a_cluster_deleted_by_hand_is_recreated(world: World) -> None:
    h = world.harness
    ns, mgmt = world.namespace("drift")
    apply(h, ns, cluster("drift", "1.34"))
    uid = settled(h, ns, "drift", WAIT)["metadata"]["uid"]
    name = world.one(uid, mgmt)["metadata"]["name"]
    world.standin.kubectl("patch", "clusters.cluster.x-k8s.io", name, "-n", mgmt,
                          "--type=json", "-p", json.dumps([
                              {"op": "replace", "value": 7, "path":
                               "/spec/topology/workers/machineDeployments/0/replicas"},
                              {"op": "replace", "path": "/spec/topology/controlPlane/replicas",
                               "value": 3}]))
    repaired = eventually(lambda: (o := world.one(uid, mgmt)) and
                          o["spec"]["topology"]["controlPlane"]["replicas"] == 1 and o,
                          WAIT, what="drift repaired")
    assert workers(repaired)[0]["replicas"] == 2

    world.standin.kubectl("label", "clusters.cluster.x-k8s.io", name, "-n", mgmt, f"{OWNER}-")
    relabelled = eventually(lambda: world.capi(uid), WAIT, what="owner label back")
    assert relabelled[0]["metadata"]["uid"] == repaired["metadata"]["uid"]  # adopted, not new

    first = repaired["metadata"]["uid"]
    world.standin.kubectl("delete", "clusters.cluster.x-k8s.io", name, "-n", mgmt,
                          "--wait=false")
    again = eventually(lambda: (o := world.capi(uid)) and o[0]["metadata"]["uid"] != first
                       and o[0], WAIT, what="recreated")
    assert again["metadata"]["name"] == name and len(world.capi(uid)) == 1
    assert workers(again)[0]["replicas"] == 2
    settled(h, ns, "drift", WAIT)


def test_an_unreachable_management_cluster_is_a_condition_and_heals_once(world: World) -> None:
    h = world.harness
    ns, mgmt = world.namespace("down")
    world.standin.stop()
    try:
        apply(h, ns, cluster("down", "1.34"))
        synced = eventually(lambda: (c := condition(get(h, ns, "down"), "Synced")) and
                            c["status"] == "False" and c, WAIT, what="Synced False")
    finally:
        world.standin.restart()
    assert synced["reason"] == "BackendUnavailable", synced
    assert synced["message"].startswith("capi: ") and "unreachable" in synced["message"]
    found = settled(h, ns, "down", 90)
    assert len(world.capi(found["metadata"]["uid"], mgmt)) == 1


def test_a_restart_of_the_central_api_mid_create_makes_no_duplicate(world: World) -> None:
    h = world.harness
    ns, mgmt = world.namespace("restart")
    apply(h, ns, cluster("restart", "1.34"))
    uid = eventually(lambda: (c := get(h, ns, "restart")) and c["metadata"]["uid"],
                     what="stored")
    eventually(lambda: world.capi(uid), WAIT, what="the CAPI Cluster")
    ready = condition(get(h, ns, "restart"), "Ready")
    assert not ready or ready["status"] != "True", "Ready before the restart: not mid-create"
    h.server.kill()
    h.server.start()
    h.reconnect()
    settled(h, ns, "restart", 90)
    assert len(world.capi(uid)) == 1


def test_what_the_backend_refuses_is_a_condition_with_its_message(world: World) -> None:
    h = world.harness
    ns, _ = world.namespace("refuse")
    out = apply(h, ns, cluster("old", "1.31"), check=False)
    assert "spec.kubernetesVersion" in out and "offered: 1.33.9" in out, out

    apply(h, ns, cluster("zones", "1.34", nodePools=[
        {"name": "p", "flavor": "SCS-2V-4", "replicas": 1, "zones": ["a", "b"]}]))
    synced = eventually(lambda: (c := condition(get(h, ns, "zones"), "Synced")) and
                        c["status"] == "False" and c, WAIT, what="refused")
    assert synced["reason"] == "InvalidRequest"
    assert synced["message"].startswith("capi: Cluster API cannot build spec.nodePools[0]"
                                        ".zones"), synced

    apply(h, ns, cluster("flavor", "1.34", nodePools=[
        {"name": "p", "flavor": "SCS-64V-512", "replicas": 1}]))
    ready = eventually(lambda: (c := condition(get(h, ns, "flavor"), "Ready")) and
                       "could not be found" in c["message"] and c, WAIT, what="flavor refused")
    assert ready["status"] == "False"
    assert "MachineDeployment p: OpenStack: flavor 'SCS-64V-512' could not be found" in \
        ready["message"]


def test_the_simulated_capi_refuses_variables_outside_the_class_schema(world: World) -> None:
    mgmt = f"scs-{unique('hand')}"
    world.standin.kubectl("create", "namespace", mgmt)
    world.standin.apply({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": "hand", "namespace": mgmt},
        "spec": {"topology": {"classRef": {"name": "openstack-scs2-1-34-v2",
                                           "namespace": CLASS_NAMESPACE},
                              "version": "v1.34.7",
                              "variables": [{"name": "workerRootDisk", "value": -1}]}}})

    def refused() -> dict[str, Any] | None:
        found = world.standin.get("clusters.cluster.x-k8s.io", "hand", mgmt) or {}
        return next((c for c in (found.get("status") or {}).get("conditions") or []
                     if c["type"] == "TopologyReconciled" and c["status"] == "False"), None)
    found = eventually(refused, WAIT, what="TopologyReconciled False")
    assert found["reason"] == "ReconcileFailed"
    assert "workerRootDisk" in found["message"] and "minimum" in found["message"]


def test_missing_tenant_credentials_wait_for_the_operator(world: World) -> None:
    h = world.harness
    ns, mgmt = world.namespace("creds", credentials=False)
    apply(h, ns, cluster("creds", "1.34"))
    synced = eventually(lambda: (c := condition(get(h, ns, "creds"), "Synced")) and
                        c["status"] == "False" and c, WAIT, what="credentials missing")
    assert synced["reason"] == "CredentialsMissing"
    assert f"Secret {mgmt}/openstack" in synced["message"]
    namespace = world.standin.get("namespace", mgmt)
    assert namespace and namespace["metadata"]["labels"][
        "kaas.scs.community/managed-by"] == "scs-central-api"
    world.credentials(mgmt)
    settled(h, ns, "creds", 90)


def test_tenants_clusters_land_only_in_their_management_namespace(world: World) -> None:
    h = world.harness
    tenants = []
    for _ in range(2):
        name = unique("kt")
        created = h.http.post("/apis/tenancy.scs.community/v1alpha1/tenants", json={
            "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {"displayName": name, "admins": [f"alice@{name}.example"]}})
        assert created.status_code == 201, created.text
        world.credentials(f"scs-{name}")
        tenants.append(name)
    for name in tenants:
        eventually(lambda n=name: (condition(h.http.get(  # type: ignore[misc]
            f"/apis/tenancy.scs.community/v1alpha1/tenants/{n}").json(), "Ready") or {}
        ).get("status") == "True", WAIT, what=f"tenant {name} Ready")
        apply(h, name, cluster("same-name", "1.34"))
    uids = {name: settled(h, name, "same-name", WAIT)["metadata"]["uid"] for name in tenants}
    for name, uid in uids.items():
        world.one(uid, f"scs-{name}")
    a, b = tenants
    mine = world.standin.kubectl("get", "clusters.cluster.x-k8s.io", "-n", f"scs-{a}",
                                 "-o", "json").stdout
    assert [o["metadata"]["labels"][OWNER] for o in json.loads(mine)["items"]] == [uids[a]]
    label = world.standin.get("namespace", f"scs-{b}")
    assert label and label["metadata"]["labels"]["kaas.scs.community/tenant"] == b


def test_access_gives_the_endpoint_ca_and_a_short_lived_admin_certificate(
        world: World, tmp_path: Path) -> None:
    h = world.harness
    ns, mgmt = world.namespace("access")
    apply(h, ns, cluster("access", "1.34"))
    found = settled(h, ns, "access", WAIT)
    provider = capi_kaas_provider(
        CapiConfig(kubeconfig=str(world.standin.kubeconfig), classNamespace=CLASS_NAMESPACE),
        KubeconfigConfig())

    async def ask() -> tuple[Any, Any]:
        backend = await provider.clusters.find(Scope(ns), found["metadata"]["uid"])
        assert backend is not None
        plain = await provider.access(Scope(ns), backend, None)
        admin = await provider.access(Scope(ns), backend, AdminRequest("alice", 900))
        return plain, admin
    started = time.time()
    plain, admin = asyncio.run(ask())
    name = found["status"]["backendName"]
    secret = world.standin.get("secret", f"{name}-ca", mgmt)
    assert secret is not None
    ca_pem = base64.b64decode(secret["data"]["tls.crt"])
    assert plain.server == admin.server == found["status"]["apiEndpoint"]
    assert plain.certificate_authority == admin.certificate_authority == ca_pem
    assert plain.client_certificate == b"" and plain.client_key == b""
    cert = x509.load_pem_x509_certificate(admin.client_certificate)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "scs:alice"
    assert abs(cert.not_valid_after_utc.timestamp() - (started + 900)) < 30
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "kubeadm:cluster-admins"
    kubeconfig = world.standin.get("secret", f"{name}-kubeconfig", mgmt)
    assert kubeconfig is not None
    long_lived = base64.b64decode(kubeconfig["data"]["value"])
    assert b"long-lived-admin" in long_lived
    assert all(b"long-lived-admin" not in part for part in (
        admin.client_certificate, admin.client_key, admin.token.encode()))

    answer = h.http.post(f"{KAAS}/namespaces/{ns}/clusters/access/adminkubeconfig", json={
        "apiVersion": "kaas.scs.community/v1alpha1", "kind": "AdminKubeconfigRequest",
        "spec": {"expirationSeconds": 900}})
    assert answer.status_code == 201, answer.text
    issued = yaml.safe_load(base64.b64decode(answer.json()["status"]["kubeconfig"]))
    assert issued["clusters"][0]["cluster"]["server"] == found["status"]["apiEndpoint"]
    assert base64.b64decode(issued["clusters"][0]["cluster"][
        "certificate-authority-data"]) == ca_pem
    served = x509.load_pem_x509_certificate(base64.b64decode(
        issued["users"][0]["user"]["client-certificate-data"]))
    served.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    assert b"long-lived-admin" not in answer.content
