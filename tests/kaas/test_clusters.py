"""Clusters end to end on the sandbox KaaS: the real ``scs serve``, the real kubectl.

The sandbox builds nothing (it is simulated and says so), but it has realistic phases: the
control plane first, then the node pools; scaling and upgrades take time. Faults are
injected through the sandbox's documented path, its fault records in the server's store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from central_api.providers.sandbox import clear_faults, inject_fault
from tests.controllers.conftest import Cluster as Harness
from tests.controllers.conftest import Recorder, condition, eventually, launched, unique

pytestmark = pytest.mark.slow

KAAS = "/apis/kaas.scs.community/v1alpha1"
CONFIG: dict[str, Any] = {"services": ["tenancy", "iaas", "kaas"],
                          "providers": {"iaas": {"type": "sandbox", "speed": 10},
                                        "kaas": {"type": "sandbox", "speed": 2}}}
"""At speed 2 a cluster's control plane takes 3 s and its nodes 2 s more: long enough
to see each phase between two polls (1 s), short enough for a test."""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from launched(tmp_path_factory, "kaas", CONFIG)


class ClusterRecorder(Recorder):
    """Every version of the Clusters of one namespace, as a watch delivers them."""

    def __init__(self, harness: Harness, namespace: str) -> None:
        super().__init__(harness, "clusters", namespace)
        self._path = f"{KAAS}/namespaces/{namespace}/clusters"


def cluster(name: str, version: str = "1.33.9", **spec: Any) -> dict[str, Any]:
    pools = spec.pop("nodePools", [{"name": "general", "flavor": "SCS-2V-4", "replicas": 2}])
    return {"apiVersion": "kaas.scs.community/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name},
            "spec": {"kubernetesVersion": version, "nodePools": pools, **spec}}


def apply(harness: Harness, ns: str, obj: dict[str, Any], check: bool = True) -> str:
    done = harness.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(obj),
                           check=check)
    return done.stdout + done.stderr


def patch(harness: Harness, ns: str, name: str, ops: list[dict[str, Any]],
          check: bool = True) -> str:
    done = harness.kubectl("patch", "-n", ns, "clusters.kaas.scs.community", name,
                           "--type=json", "-p", json.dumps(ops), check=check)
    return done.stdout + done.stderr


def get(harness: Harness, ns: str, name: str) -> dict[str, Any] | None:
    response = harness.http.get(f"{KAAS}/namespaces/{ns}/clusters/{name}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def settled(harness: Harness, ns: str, name: str, timeout: float = 30,
            **expect: Any) -> dict[str, Any]:
    """The cluster once Ready for its current generation, with ``expect`` in its status."""
    def check() -> dict[str, Any] | None:
        found = get(harness, ns, name)
        ready = condition(found, "Ready")
        status = (found or {}).get("status") or {}
        if ready and ready["status"] == "True" and \
                ready.get("observedGeneration") == found["metadata"]["generation"] and \
                all(status.get(k) == v for k, v in expect.items()):
            return found
        return None
    return eventually(check, timeout, what=f"cluster {name} Ready with {expect}")


def pools(found: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {p["name"]: (p["desiredReplicas"], p["readyReplicas"])
            for p in found["status"]["nodePools"]}


def test_a_cluster_comes_up_control_plane_first_then_its_node_pools(harness: Harness) -> None:
    ns = harness.create_namespace("up")
    with ClusterRecorder(harness, ns) as recorder:
        apply(harness, ns, cluster("c1"))
        found = settled(harness, ns, "c1")
    assert found["status"]["kubernetesVersion"] == "1.33.9"
    assert found["status"]["provider"] == "sandbox (simulated)"
    assert found["status"]["clusterClass"] == "openstack-scs2-1-33-v5"
    assert found["status"]["apiEndpoint"].startswith("https://")
    assert found["status"]["backendName"]
    assert pools(found) == {"general": (2, 2)}
    flips = {kind: _became_true(recorder, "c1", kind)
             for kind in ("ControlPlaneReady", "NodePoolsReady", "Ready")}
    assert flips["ControlPlaneReady"] < flips["NodePoolsReady"] <= flips["Ready"], flips
    table = harness.kubectl("get", "-n", ns, "clusters.kaas.scs.community").stdout
    assert "1.33.9" in table and "2/2" in table, table


def _became_true(recorder: Recorder, name: str, kind: str) -> int:
    """The index of the first recorded version in which ``kind`` was True."""
    versions = [item for item in recorder.seen if item["metadata"]["name"] == name]
    before = [i for i, item in enumerate(versions)
              if (condition(item, kind) or {}).get("status") == "False"]
    after = [i for i, item in enumerate(versions)
             if (condition(item, kind) or {}).get("status") == "True"]
    assert before and after, f"{kind} was never False then True: {versions}"
    return after[0]


def test_scaling_adding_and_removing_pools_take_time_and_converge(harness: Harness) -> None:
    ns = harness.create_namespace("scale")
    apply(harness, ns, cluster("c2"))
    settled(harness, ns, "c2")
    patch(harness, ns, "c2", [{"op": "replace", "path": "/spec/nodePools/0/replicas",
                               "value": 4}])
    busy = eventually(lambda: (c := get(harness, ns, "c2")) and
                      condition(c, "Ready")["observedGeneration"] == 2 and c, what="gen 2")
    assert condition(busy, "Ready")["status"] == "False", busy["status"]
    assert pools(settled(harness, ns, "c2")) == {"general": (4, 4)}

    patch(harness, ns, "c2", [{"op": "add", "path": "/spec/nodePools/-", "value": {
        "name": "arm", "flavor": "SCS-2V-4_a", "architecture": "arm64",
        "autoscaling": {"min": 1, "max": 3}, "taints": [
            {"key": "arch", "value": "arm64", "effect": "NoSchedule"}]}}])
    assert pools(settled(harness, ns, "c2")) == {"general": (4, 4), "arm": (1, 1)}
    patch(harness, ns, "c2", [{"op": "remove", "path": "/spec/nodePools/0"}])
    assert pools(settled(harness, ns, "c2")) == {"arm": (1, 1)}


def test_patch_then_minor_upgrade_roll_the_control_plane_first(harness: Harness) -> None:
    ns = harness.create_namespace("upgrade")
    apply(harness, ns, cluster("c3", "1.33.9"))
    settled(harness, ns, "c3")
    patch(harness, ns, "c3", [{"op": "replace", "path": "/spec/kubernetesVersion",
                               "value": "1.33.10"}])
    settled(harness, ns, "c3", kubernetesVersion="1.33.10")
    with ClusterRecorder(harness, ns) as recorder:
        patch(harness, ns, "c3", [{"op": "replace", "path": "/spec/kubernetesVersion",
                                   "value": "1.34"}])
        found = settled(harness, ns, "c3", kubernetesVersion="1.34.7")
    assert found["status"]["clusterClass"] == "openstack-scs2-1-34-v2"
    phases = [item["status"].get("phase", "") for item in recorder.seen if "status" in item]
    assert any(p.startswith("UpgradingControlPlane to 1.34.7") for p in phases), phases


@pytest.mark.parametrize(("start", "change", "field", "message"), [
    ("1.34.7", [{"op": "replace", "path": "/spec/kubernetesVersion", "value": "1.33.10"}],
     "spec.kubernetesVersion", "downgrading from 1.34.7"),
    ("1.32.13", [{"op": "replace", "path": "/spec/kubernetesVersion", "value": "1.34"}],
     "spec.kubernetesVersion", "one minor version at a time"),
    ("1.33.9", [{"op": "replace", "path": "/spec/networking/pods", "value": "10.0.0.0/16"}],
     "spec.networking", "immutable"),
    ("1.33.9", [{"op": "add", "path": "/spec/nodePools/-",
                 "value": {"name": "general", "flavor": "SCS-2V-4", "replicas": 1}}],
     "spec.nodePools[1].name", "Duplicate value"),
    ("1.33.9", [{"op": "add", "path": "/spec/nodePools/0/autoscaling",
                 "value": {"min": 1, "max": 2}}],
     "spec.nodePools[0].replicas", "exactly one of replicas or autoscaling"),
], ids=["downgrade", "minor-skip", "immutable-networking", "duplicate-pool",
        "replicas-and-autoscaling"])
def test_refused_changes_name_the_field_and_store_nothing(
        harness: Harness, start: str, change: list[dict[str, Any]], field: str,
        message: str) -> None:
    ns = harness.create_namespace("refuse")
    apply(harness, ns, cluster("c4", start))
    before = get(harness, ns, "c4")
    response = harness.http.patch(f"{KAAS}/namespaces/{ns}/clusters/c4", json=change,
                                  headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 422, response.text
    causes = response.json()["details"]["causes"]
    assert any(c["field"] == field and message in c["message"] for c in causes), causes
    assert field in patch(harness, ns, "c4", change, check=False)  # kubectl shows it too
    after = get(harness, ns, "c4")
    assert after and before and after["metadata"]["generation"] == \
        before["metadata"]["generation"] and after["spec"] == before["spec"]


def test_a_version_the_profile_does_not_offer_is_refused_at_creation(harness: Harness) -> None:
    ns = harness.create_namespace("offer")
    apply(harness, ns, cluster("seed"))  # the first pass publishes the profile
    eventually(lambda: harness.http.get(f"{KAAS}/clusterprofiles/default").status_code == 200,
               what="the ClusterProfile")
    out = apply(harness, ns, cluster("old", "1.31"), check=False)
    assert "spec.kubernetesVersion" in out and "offered: 1.32.13" in out, out
    assert get(harness, ns, "old") is None


def test_delete_waits_until_the_backend_has_deleted_the_cluster(harness: Harness) -> None:
    ns = harness.create_namespace("delete")
    apply(harness, ns, cluster("c5"))
    uid = settled(harness, ns, "c5")["metadata"]["uid"]
    harness.kubectl("delete", "-n", ns, "clusters.kaas.scs.community", "c5", "--wait=false")
    deleting = eventually(lambda: (c := get(harness, ns, "c5")) and
                          c["metadata"].get("deletionTimestamp") and c, what="deleting")
    assert _backend(harness, uid), "the backend cluster went before the deletion started"
    assert "kaas.scs.community/backend" in deleting["metadata"]["finalizers"]
    eventually(lambda: get(harness, ns, "c5") is None, what="c5 gone")
    assert not _backend(harness, uid), "the Cluster went before its backend cluster"


def _backend(harness: Harness, uid: str) -> list[dict[str, Any]]:
    return [c for c in harness.inventory().get("Cluster", []) if c["ownerUID"] == uid]


def test_an_unavailable_backend_becomes_a_condition_and_heals_without_duplicates(
        harness: Harness) -> None:
    ns = harness.create_namespace("fault")
    store = harness.store()
    fault = unique("kaas-down")
    inject_fault(store, fault, kind="Cluster", operation="create", scope=ns,
                 error="BackendUnavailable", times=3)
    time.sleep(0.7)  # the server re-reads fault records within 0.5 s
    try:
        with ClusterRecorder(harness, ns) as recorder:
            apply(harness, ns, cluster("c6"))
            found = settled(harness, ns, "c6")
        synced = recorder.conditions("c6", "Synced")
    finally:
        clear_faults(store, fault)
    failing = [c for c in synced if c["status"] == "False"]
    assert failing and failing[0]["reason"] == "BackendUnavailable", synced
    assert "sandbox (simulated)" in failing[0]["message"], failing
    assert len(_backend(harness, found["metadata"]["uid"])) == 1


def test_offboarding_refuses_while_the_tenant_has_clusters_and_cascade_deletes_them(
        harness: Harness) -> None:
    tenants = "/apis/tenancy.scs.community/v1alpha1/tenants"
    name = unique("kt")
    created = harness.http.post(tenants, json={
        "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"displayName": name, "admins": [f"alice@{name}.example"]}})
    assert created.status_code == 201, created.text
    eventually(lambda: (condition(harness.http.get(f"{tenants}/{name}").json(), "Ready")
                        or {}).get("status") == "True", what=f"tenant {name} Ready")
    apply(harness, name, cluster("owned"))

    def confirm(**extra: str) -> None:
        response = harness.http.patch(
            f"{tenants}/{name}", headers={"Content-Type": "application/merge-patch+json"},
            json={"metadata": {"annotations": {
                "tenancy.scs.community/confirm-deletion": name, **extra}}})
        assert response.status_code == 200, response.text

    confirm()
    assert harness.http.delete(f"{tenants}/{name}").status_code in (200, 202)

    def blocked() -> dict[str, Any] | None:
        found = condition(harness.http.get(f"{tenants}/{name}").json(), "DeletionBlocked")
        return found if found and found["reason"] == "ResourcesRemain" else None
    assert "1 clusters" in eventually(blocked, what="offboarding refused")["message"]
    assert get(harness, name, "owned") is not None

    confirm(**{"tenancy.scs.community/cascade": "true"})
    eventually(lambda: harness.http.get(f"{tenants}/{name}").status_code == 404,
               timeout=60, what="the tenant gone")
    assert get(harness, name, "owned") is None


def test_scs_serve_says_the_embedded_kaas_is_simulated(harness: Harness) -> None:
    banner = (harness.server.data_dir / "server.log").read_text()
    assert "KaaS provider: sandbox — SIMULATED clusters, nothing real is built" in banner
