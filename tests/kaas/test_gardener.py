"""Clusters on the Gardener provider, end to end: a real ``scs serve`` with
``providers.kaas.type: gardener``, the real kubectl, a stand-in Garden.

What is real: the Central API, its KaaS controller and the Gardener provider, the Shoot and
CloudProfile schemas (Gardener v1.149, as CRDs of a second ``scs serve``: the stand-in),
kubectl. What is simulated, by :mod:`tests.kaas.gardener_simulator`, which says so: the
gardenlet (operations, conditions, addresses, the cluster CA), Gardener's admission checks
(deletion confirmation, the name limit) and its ``adminkubeconfig`` subresource, served by
a proxy in front of the stand-in that the provider's kubeconfig points at.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from central_api.config import GardenerConfig, KubeconfigConfig
from central_api.providers.base import InvalidRequest, Scope
from central_api.providers.gardener import gardener_kaas_provider
from central_api.providers.gardener.service import ShootService
from central_api.providers.kaas import AdminRequest
from tests.controllers.conftest import Cluster as Harness
from tests.controllers.conftest import Launcher, condition, eventually, unique
from tests.kaas.gardener_simulator import GardenerSimulator
from tests.kaas.standin import GARDENER_CRDS, ManagementCluster, gardener_cloud_profile
from tests.kaas.test_clusters import ClusterRecorder, apply, cluster, get, patch, pools, settled

pytestmark = pytest.mark.slow

OWNER = "kaas.scs.community/cluster-uid"
VERSIONS = [
    {"version": "1.32.13", "classification": "deprecated",
     "expirationDate": "2026-01-31T00:00:00Z"},
    {"version": "1.33.9", "classification": "supported"},
    {"version": "1.33.10", "classification": "supported"},
    {"version": "1.34.6", "classification": "supported"},
    {"version": "1.34.7", "classification": "supported"},
    {"version": "1.35.0", "classification": "preview"}]
SETTINGS: dict[str, Any] = {
    "cloudProfile": "scs-openstack", "region": "RegionOne",
    "credentialsBindingName": "openstack-credentials", "floatingPoolName": "ext-net",
    "loadBalancerProvider": "ovn", "machineImage": "gardenlinux"}
TENANTS = "/apis/tenancy.scs.community/v1alpha1/tenants"
KAAS = "/apis/kaas.scs.community/v1alpha1"


class Garden:
    """The stand-in Garden, its simulator, and where the provider's kubeconfig is."""

    def __init__(self, standin: ManagementCluster, sim: GardenerSimulator,
                 kubeconfig: Path) -> None:
        self.standin = standin
        self.sim = sim
        self.kubeconfig = kubeconfig

    def shoots(self, namespace: str, uid: str = "") -> list[dict[str, Any]]:
        selector = ["-l", f"{OWNER}={uid}"] if uid else []
        done = self.standin.kubectl("get", "shoots.core.gardener.cloud", "-n", namespace,
                                    *selector, "-o", "json")
        return list(json.loads(done.stdout)["items"])

    def shoot(self, namespace: str, uid: str) -> dict[str, Any]:
        found = self.shoots(namespace, uid)
        assert len(found) == 1, f"expected one Shoot of {uid}, found {len(found)}"
        return found[0]


@pytest.fixture(scope="module")
def garden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Garden]:
    base = tmp_path_factory.mktemp("garden")
    (base / "standin").mkdir()
    standin = ManagementCluster(base / "standin", GARDENER_CRDS).start()
    sim = None
    try:
        standin.apply(gardener_cloud_profile("scs-openstack", "RegionOne",
                                             ["nova-1", "nova-2"], VERSIONS))
        sim = GardenerSimulator(standin, max_seconds=7200).start()
        yield Garden(standin, sim, sim.kubeconfig(base / "provider.kubeconfig"))
    finally:
        if sim is not None:
            sim.stop()
        standin.stop()


@pytest.fixture(scope="module")
def harness(garden: Garden, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    launcher = Launcher(tmp_path_factory.mktemp("central"))
    config = {"services": ["tenancy", "iaas", "kaas"], "resyncSeconds": 3,
              "providers": {"iaas": {"type": "sandbox", "speed": 10},
                            "kaas": {"type": "gardener", "gardener": {
                                "kubeconfig": str(garden.kubeconfig), **SETTINGS}}}}
    try:
        yield launcher.start(config)
    finally:
        launcher.cleanup()


def tenant(harness: Harness, garden: Garden, project: bool = True) -> str:
    """A Ready Tenant (its namespace holds its Clusters) and, as its operator would create
    it, its Gardener project namespace."""
    name = unique("gt")
    created = harness.http.post(TENANTS, json={
        "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"displayName": name, "admins": [f"alice@{name}.example"]}})
    assert created.status_code == 201, created.text
    eventually(lambda: (condition(harness.http.get(f"{TENANTS}/{name}").json(), "Ready")
                        or {}).get("status") == "True", timeout=30, what=f"tenant {name}")
    if project:
        garden.standin.kubectl("create", "namespace", f"garden-{name}")
    return name


def ready(harness: Harness, ns: str, name: str, **expect: Any) -> dict[str, Any]:
    try:
        return settled(harness, ns, name, timeout=45, **expect)
    except pytest.fail.Exception:
        found = get(harness, ns, name) or {}
        pytest.fail(f"{name} not Ready with {expect}: {json.dumps(found.get('status'))}\n"
                    f"{harness.server.log_tail(20)}")


def synced_false(harness: Harness, ns: str, name: str, reason: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = condition(get(harness, ns, name), "Synced")
        return found if found and found["status"] == "False" and \
            found["reason"] == reason else None
    return eventually(check, 30, what=f"{name} Synced False {reason}")


def workers(shoot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in shoot["spec"]["provider"]["workers"]}


# -- the lifecycle -------------------------------------------------------------------------
def test_create_scale_pools_upgrade_and_delete_a_shoot(harness: Harness,
                                                        garden: Garden) -> None:
    ns = tenant(harness, garden)
    project = f"garden-{ns}"
    with ClusterRecorder(harness, ns) as recorder:
        apply(harness, ns, cluster("web", maintenance={
            "timeWindow": {"begin": "220000+0100", "end": "230000+0100"}}))
        found = ready(harness, ns, "web")
    uid = found["metadata"]["uid"]
    shoot = garden.shoot(project, uid)
    name, spec = shoot["metadata"]["name"], shoot["spec"]
    assert len(ns) + len(name) <= 21, "Gardener's name limit"
    assert spec["provider"]["type"] == "openstack"
    assert spec["cloudProfile"] == {"kind": "CloudProfile", "name": "scs-openstack"}
    assert spec["region"] == "RegionOne"
    assert spec["credentialsBindingName"] == "openstack-credentials"
    assert spec["provider"]["infrastructureConfig"]["floatingPoolName"] == "ext-net"
    assert spec["networking"] == {"type": "calico", "pods": "172.16.0.0/16",
                                  "services": "10.96.0.0/12", "nodes": "10.250.0.0/16"}
    assert spec["kubernetes"]["version"] == "1.33.9"
    assert spec["maintenance"] == {"autoUpdate": {"kubernetesVersion": True}, "timeWindow": {
        "begin": "220000+0100", "end": "230000+0100"}}
    assert workers(shoot) == {"general": {
        "name": "general", "minimum": 2, "maximum": 2, "zones": ["nova-1"],
        "machine": {"type": "SCS-2V-4", "architecture": "amd64",
                    "image": {"name": "gardenlinux"}}, "cri": {"name": "containerd"}}}
    status = found["status"]
    assert status["backendName"] == name and status["provider"] == "gardener"
    assert status["apiEndpoint"] == f"https://api.{name}.{ns}.shoot.gardener.invalid"
    assert status["kubernetesVersion"] == "1.33.9" and status["phase"] == "Running"
    assert pools(found) == {"general": (2, 2)}
    phases = [i["status"].get("phase", "") for i in recorder.seen if "status" in i]
    assert any(p.startswith("Create Processing") and p.endswith("%") for p in phases), phases

    patch(harness, ns, "web", [{"op": "replace", "path": "/spec/nodePools/0/replicas",
                                "value": 3}])
    assert pools(ready(harness, ns, "web")) == {"general": (3, 3)}
    general = workers(garden.shoot(project, uid))["general"]
    assert (general["minimum"], general["maximum"]) == (3, 3)

    patch(harness, ns, "web", [{"op": "add", "path": "/spec/nodePools/-", "value": {
        "name": "arm", "flavor": "SCS-2V-4_a", "architecture": "arm64", "zones": ["nova-2"],
        "autoscaling": {"min": 1, "max": 4}, "labels": {"pool": "arm"}, "rootDiskGiB": 40,
        "taints": [{"key": "arch", "value": "arm64", "effect": "NoSchedule"}]}}])
    assert pools(ready(harness, ns, "web")) == {"general": (3, 3), "arm": (1, 1)}
    arm = workers(garden.shoot(project, uid))["arm"]
    assert (arm["minimum"], arm["maximum"], arm["zones"]) == (1, 4, ["nova-2"])
    assert arm["machine"]["type"] == "SCS-2V-4_a"
    assert arm["machine"]["architecture"] == "arm64"
    assert arm["labels"] == {"pool": "arm"} and arm["volume"] == {"size": "40Gi"}
    assert arm["taints"] == [{"key": "arch", "value": "arm64", "effect": "NoSchedule"}]

    patch(harness, ns, "web", [{"op": "remove", "path": "/spec/nodePools/0"}])
    assert pools(ready(harness, ns, "web")) == {"arm": (1, 1)}
    assert list(workers(garden.shoot(project, uid))) == ["arm"]

    patch(harness, ns, "web", [{"op": "replace", "path": "/spec/kubernetesVersion",
                                "value": "1.33.10"}])
    ready(harness, ns, "web", kubernetesVersion="1.33.10")
    assert garden.shoot(project, uid)["spec"]["kubernetes"]["version"] == "1.33.10"
    with ClusterRecorder(harness, ns) as recorder:
        patch(harness, ns, "web", [{"op": "replace", "path": "/spec/kubernetesVersion",
                                    "value": "1.34"}])
        ready(harness, ns, "web", kubernetesVersion="1.34.7")  # a minor: its newest patch
    upgraded = garden.shoot(project, uid)
    assert upgraded["spec"]["kubernetes"]["version"] == "1.34.7"
    assert upgraded["metadata"]["name"] == name, "the same Shoot, changed in place"
    during = [i["status"] for i in recorder.seen if i.get("status", {}).get("phase", "")
              .startswith("Reconcile")]
    assert during and all(s["kubernetesVersion"] == "1.33.10" for s in during), during

    harness.kubectl("delete", "-n", ns, "clusters.kaas.scs.community", "web", "--wait=false")
    deleting = eventually(lambda: (s := garden.shoots(project, uid)) and
                          s[0]["metadata"].get("deletionTimestamp") and s[0],
                          what="the Shoot deleting")
    assert deleting["metadata"]["annotations"][
        "confirmation.gardener.cloud/deletion"] == "true"
    assert get(harness, ns, "web") is not None, "the Cluster waits for its Shoot"
    eventually(lambda: get(harness, ns, "web") is None, timeout=30, what="web gone")
    assert garden.shoots(project, uid) == []
    assert name not in garden.sim.refused_deletions


# -- access ------------------------------------------------------------------------------------
def test_endpoint_and_ca_without_a_credential_and_short_lived_admin_certificates(
        harness: Harness, garden: Garden) -> None:
    ns = tenant(harness, garden)
    apply(harness, ns, cluster("acc"))
    found = ready(harness, ns, "acc")
    provider = gardener_kaas_provider(
        GardenerConfig(kubeconfig=str(garden.kubeconfig), **SETTINGS), KubeconfigConfig())
    scope = Scope(ns, ns)

    async def run() -> None:
        backend = await provider.clusters.find(scope, found["metadata"]["uid"])
        assert backend is not None and backend.id == found["status"]["backendName"]
        issued = len(garden.sim.issued)
        plain = await provider.access(scope, backend, None)
        assert plain.server == found["status"]["apiEndpoint"]
        assert not plain.client_certificate and not plain.client_key and not plain.token
        assert len(garden.sim.issued) == issued, "no credential minted for endpoint and CA"
        ca = x509.load_pem_x509_certificate(plain.certificate_authority)

        admin = await provider.access(scope, backend, AdminRequest("alice", 1200))
        assert admin.server == plain.server
        assert admin.certificate_authority == plain.certificate_authority
        cert = x509.load_pem_x509_certificate(admin.client_certificate)
        cert.verify_directly_issued_by(ca)
        assert cert.subject.rfc4514_string() == \
            "O=gardener.cloud:project:admins,CN=gardener.cloud:admin:scs:bootstrap-admin"
        assert b"PRIVATE KEY" in admin.client_key
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert admin.expires is not None
        left = (admin.expires - dt.datetime.now(dt.UTC)).total_seconds()
        assert 1100 < left <= 1200 and admin.expires == cert.not_valid_after_utc
        capped = await provider.access(scope, backend, AdminRequest("alice", 86400))
        assert capped.expires is not None and \
            (capped.expires - dt.datetime.now(dt.UTC)).total_seconds() <= 7200
        with pytest.raises(InvalidRequest, match="less than 10 minutes"):
            await provider.access(scope, backend, AdminRequest("alice", 300))
        service = provider.clusters
        assert isinstance(service, ShootService)
        await service.garden.close()

    asyncio.run(run())
    assert garden.sim.issued[-1]["seconds"] == 7200

    response = harness.http.post(f"{KAAS}/namespaces/{ns}/clusters/acc/adminkubeconfig", json={
        "apiVersion": "kaas.scs.community/v1alpha1", "kind": "AdminKubeconfigRequest",
        "spec": {"expirationSeconds": 1800}})
    assert response.status_code == 201, response.text
    config = yaml.safe_load(base64.b64decode(response.json()["status"]["kubeconfig"]))
    assert config["clusters"][0]["cluster"]["server"] == found["status"]["apiEndpoint"]
    user = config["users"][0]["user"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "gardener.cloud:admin:scs:bootstrap-admin", "minted by the Garden for the provider"
    assert garden.sim.issued[-1] == {"shoot": f"garden-{ns}/{found['status']['backendName']}",
                                     "caller": "scs:bootstrap-admin", "seconds": 1800}


# -- faults ------------------------------------------------------------------------------------
def test_an_unreachable_garden_mid_create_converges_without_duplicates(
        harness: Harness, garden: Garden) -> None:
    ns = tenant(harness, garden)
    with garden.sim.unreachable():
        apply(harness, ns, cluster("flaky"))
        failed = synced_false(harness, ns, "flaky", "BackendUnavailable")
    assert failed["message"].startswith("gardener: ") and "unreachable" in failed["message"]
    found = ready(harness, ns, "flaky")
    assert len(garden.shoots(f"garden-{ns}", found["metadata"]["uid"])) == 1


def test_drift_is_repaired_an_unlabelled_shoot_adopted_a_deleted_one_recreated(
        harness: Harness, garden: Garden) -> None:
    ns = tenant(harness, garden)
    project = f"garden-{ns}"
    apply(harness, ns, cluster("handy"))
    uid = ready(harness, ns, "handy")["metadata"]["uid"]
    first = garden.shoot(project, uid)
    name = first["metadata"]["name"]
    garden.standin.kubectl("patch", "-n", project, "shoots.core.gardener.cloud", name,
                           "--type=json", "-p", json.dumps([
                               {"op": "replace", "path": "/spec/provider/workers/0/maximum",
                                "value": 9},
                               {"op": "replace", "path": "/spec/region", "value": "Other"}]))
    repaired = eventually(lambda: (s := garden.shoot(project, uid)) and
                          s["spec"]["region"] == "RegionOne" and s, timeout=30,
                          what="drift repaired")
    assert workers(repaired)["general"]["maximum"] == 2

    garden.standin.kubectl("label", "-n", project, "shoots.core.gardener.cloud", name,
                           f"{OWNER}-")
    adopted = eventually(lambda: garden.shoots(project, uid), timeout=30,
                         what="the unlabelled Shoot adopted")
    assert [s["metadata"]["uid"] for s in adopted] == [first["metadata"]["uid"]]
    assert len(garden.shoots(project)) == 1, "adopted, not duplicated"

    garden.standin.kubectl("annotate", "-n", project, "shoots.core.gardener.cloud", name,
                           "confirmation.gardener.cloud/deletion=true")
    garden.standin.kubectl("delete", "-n", project, "shoots.core.gardener.cloud", name,
                           "--wait=false")
    again = eventually(lambda: (s := garden.shoots(project, uid)) and
                       s[0]["metadata"]["uid"] != first["metadata"]["uid"] and s[0],
                       timeout=40, what="the Shoot recreated")
    assert again["metadata"]["name"] == name, "the same stable name"
    ready(harness, ns, "handy")
    assert len(garden.shoots(project, uid)) == 1


def test_an_unconfirmed_deletion_is_refused_as_gardener_does(garden: Garden) -> None:
    ns = f"garden-{unique('nc')}"
    garden.standin.kubectl("create", "namespace", ns)
    garden.standin.apply({"apiVersion": "core.gardener.cloud/v1beta1", "kind": "Shoot",
                          "metadata": {"name": "manual", "namespace": ns},
                          "spec": {"provider": {"type": "openstack"}, "region": "RegionOne"}})
    eventually(lambda: "gardener" in (garden.standin.get(
        "shoots.core.gardener.cloud", "manual", ns) or {}).get("metadata", {}).get(
        "finalizers", []), what="the simulator's finalizer")
    proxied = garden.sim.http.delete(
        f"{garden.sim.proxy.url}/apis/core.gardener.cloud/v1beta1/namespaces/{ns}/shoots/"
        "manual")
    assert proxied.status_code == 403 and "confirmation.gardener.cloud/deletion" in \
        proxied.json()["message"]
    garden.standin.kubectl("delete", "-n", ns, "shoots.core.gardener.cloud", "manual",
                           "--wait=false")
    stuck = eventually(lambda: (s := garden.standin.get("shoots.core.gardener.cloud",
                                                        "manual", ns)) and
                       (s.get("status") or {}).get("lastOperation", {}).get("state") ==
                       "Error" and s, what="the deletion refused")
    assert "annotate" in stuck["status"]["lastOperation"]["description"]
    garden.standin.kubectl("annotate", "-n", ns, "shoots.core.gardener.cloud", "manual",
                           "confirmation.gardener.cloud/deletion=true")
    eventually(lambda: garden.standin.get("shoots.core.gardener.cloud", "manual", ns) is None,
               what="deleted once confirmed")


def test_versions_come_from_the_cloud_profile_and_refused_fields_are_named(
        harness: Harness, garden: Garden) -> None:
    ns = tenant(harness, garden)
    profile = eventually(lambda: (r := harness.http.get(
        "/apis/kaas.scs.community/v1alpha1/clusterprofiles/default")).status_code == 200
        and r.json(), what="the ClusterProfile")
    assert profile["spec"]["kubernetes"]["versions"][0] == {
        "version": "1.32.13", "classification": "expired",
        "expirationDate": "2026-01-31T00:00:00Z"}
    assert profile["spec"]["clusterClasses"] == []
    assert profile["spec"]["hostedControlPlanes"] is False
    assert "no cluster classes" in profile["spec"]["provider"]
    out = apply(harness, ns, cluster("old", "1.31"), check=False)
    assert "spec.kubernetesVersion" in out and "offered: 1.33.9" in out, out
    assert "1.32.13" not in out.split("offered:")[1], "expired versions are not offered"
    out = apply(harness, ns, cluster("hosted", controlPlane={"hosted": True}), check=False)
    assert "spec.controlPlane.hosted" in out and "no hosted control planes" in out, out
    out = apply(harness, ns, cluster("classy", clusterClass="openstack-scs2-1-33-v5"),
                check=False)
    assert "spec.clusterClass" in out, out
    assert all(get(harness, ns, n) is None for n in ("old", "hosted", "classy"))

    apply(harness, ns, cluster("empty", nodePools=[]))
    refused = synced_false(harness, ns, "empty", "InvalidRequest")
    assert refused["message"].startswith("gardener: spec.nodePools: "), refused
    assert garden.shoots(f"garden-{ns}") == []


def test_a_flavor_the_cloud_profile_lacks_is_gardeners_refusal_as_a_condition(
        harness: Harness, garden: Garden) -> None:
    ns = tenant(harness, garden)
    apply(harness, ns, cluster("big", nodePools=[
        {"name": "big", "flavor": "SCS-8V-32", "replicas": 1}]))
    refused = synced_false(harness, ns, "big", "InvalidRequest")
    assert refused["message"].startswith("gardener: "), refused
    assert 'spec.provider.workers[0].machine.type: Unsupported value: "SCS-8V-32"' in \
        refused["message"], refused
    assert garden.shoots(f"garden-{ns}") == []
    patch(harness, ns, "big", [{"op": "replace", "path": "/spec/nodePools/0/flavor",
                                "value": "SCS-4V-16"}])
    found = ready(harness, ns, "big")
    shoot = garden.shoot(f"garden-{ns}", found["metadata"]["uid"])
    assert workers(shoot)["big"]["machine"]["type"] == "SCS-4V-16"


def test_a_refused_shoot_leaves_no_oidc_config_map_behind(harness: Harness,
                                                          garden: Garden) -> None:
    ns = tenant(harness, garden)
    apply(harness, ns, cluster("leak", oidc={"issuerURL": "https://id.example/r/a",
                                             "clientID": "kube"}, nodePools=[
        {"name": "big", "flavor": "SCS-8V-32", "replicas": 1}]))
    refused = synced_false(harness, ns, "leak", "InvalidRequest")
    assert "SCS-8V-32" in refused["message"], refused
    uid = get(harness, ns, "leak")["metadata"]["uid"]
    assert garden.shoots(f"garden-{ns}") == []
    assert (f"garden-{ns}", f"scs-oidc-{uid}") not in garden.sim.config_maps, \
        "no Shoot owns it, so nothing would delete it with the Cluster"


def test_oidc_is_a_structured_authentication_config_map_and_ha_spans_zones(
        harness: Harness, garden: Garden) -> None:
    ns = tenant(harness, garden)
    project = f"garden-{ns}"
    oidc = {"issuerURL": "https://id.example/realms/acme", "clientID": "kube"}
    apply(harness, ns, cluster("ha", controlPlane={"replicas": 3}, oidc=oidc, nodePools=[
        {"name": "a", "flavor": "SCS-2V-4", "replicas": 1, "zones": ["nova-1"]},
        {"name": "b", "flavor": "SCS-2V-4", "replicas": 1, "zones": ["nova-2"]}]))
    found = ready(harness, ns, "ha")
    uid = found["metadata"]["uid"]
    shoot = garden.shoot(project, uid)
    assert shoot["spec"]["controlPlane"] == {
        "highAvailability": {"failureTolerance": {"type": "zone"}}}
    name = shoot["spec"]["kubernetes"]["kubeAPIServer"]["structuredAuthentication"][
        "configMapName"]
    config_map = garden.sim.config_maps[(project, name)]
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == shoot["metadata"]["uid"]
    jwt = yaml.safe_load(config_map["data"]["config.yaml"])["jwt"]
    assert jwt[0]["issuer"] == {"url": oidc["issuerURL"], "audiences": ["kube"]}

    response = harness.http.post(f"{KAAS}/namespaces/{ns}/clusters/ha/kubeconfig", json={
        "apiVersion": "kaas.scs.community/v1alpha1", "kind": "KubeconfigRequest"})
    assert response.status_code == 201, response.text
    config = yaml.safe_load(base64.b64decode(response.json()["status"]["kubeconfig"]))
    cluster_entry = config["clusters"][0]["cluster"]
    assert cluster_entry["server"] == found["status"]["apiEndpoint"]
    ca = garden.sim.config_maps[(project, f"{shoot['metadata']['name']}.ca-cluster")]
    assert base64.b64decode(cluster_entry["certificate-authority-data"]).decode() == \
        ca["data"]["ca.crt"], "the Shoot's CA, read from <shoot>.ca-cluster"

    patch(harness, ns, "ha", [{"op": "replace", "path": "/spec/oidc/clientID",
                               "value": "kube2"}])
    eventually(lambda: "kube2" in garden.sim.config_maps[(project, name)]["data"][
        "config.yaml"], what="the ConfigMap changed")
    eventually(lambda: shoot["metadata"]["name"] in garden.sim.reconcile_requests,
               what="a Gardener reconcile asked for")
    ready(harness, ns, "ha")
    patch(harness, ns, "ha", [{"op": "remove", "path": "/spec/oidc"}])
    eventually(lambda: (project, name) not in garden.sim.config_maps,
               what="the ConfigMap deleted with spec.oidc")
    assert "kubeAPIServer" not in garden.shoot(project, uid)["spec"]["kubernetes"], \
        "the Shoot stops naming the ConfigMap before it is deleted"


def test_a_restart_mid_create_finds_the_shoot_it_created(harness: Harness,
                                                         garden: Garden) -> None:
    ns = tenant(harness, garden)
    garden.sim.paused.set()  # the Shoot stays mid-create while the Central API restarts
    try:
        apply(harness, ns, cluster("restart"))
        eventually(lambda: garden.shoots(f"garden-{ns}"), what="the Shoot created")
        harness.server.kill()
        harness.server.start()
        harness.reconnect()
    finally:
        garden.sim.paused.clear()
    found = ready(harness, ns, "restart")
    assert len(garden.shoots(f"garden-{ns}")) == 1
    assert garden.shoot(f"garden-{ns}", found["metadata"]["uid"])["metadata"]["name"] == \
        found["status"]["backendName"]


# -- tenants -----------------------------------------------------------------------------------
def test_each_tenants_shoots_land_only_in_its_own_project(harness: Harness,
                                                            garden: Garden) -> None:
    a, b = tenant(harness, garden), tenant(harness, garden)
    for ns in (a, b):
        apply(harness, ns, cluster("same-name"))
    uid = {ns: ready(harness, ns, "same-name")["metadata"]["uid"] for ns in (a, b)}
    for ns, other in ((a, b), (b, a)):
        assert [s["metadata"]["labels"][OWNER] for s in garden.shoots(f"garden-{ns}")] == \
            [uid[ns]]
        assert garden.shoots(f"garden-{other}", uid[ns]) == []

    lone = tenant(harness, garden, project=False)
    apply(harness, lone, cluster("waiting"))
    missing = synced_false(harness, lone, "waiting", "ProjectMissing")
    assert f"garden-{lone} does not exist" in missing["message"], missing
    garden.standin.kubectl("create", "namespace", f"garden-{lone}")
    ready(harness, lone, "waiting")
