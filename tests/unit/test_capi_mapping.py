"""The capi provider's pure parts: spec → CAPI v1beta2 Cluster, refusals, the offer, the
status in both CAPI shapes, variable checks, and the short-lived admin certificate."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from central_api.config import CapiConfig
from central_api.kinds.kaas import ClusterSpec
from central_api.providers.base import InvalidRequest, Scope
from central_api.providers.capi import mapping, offer, status, variables
from central_api.providers.capi.access import USER_PREFIX
from central_api.providers.capi.management import Management
from central_api.providers.capi.service import CapiClusters, backend_name
from central_api.providers.certificates import client_certificate

UPSTREAM = Path(__file__).resolve().parents[1] / "kaas" / "upstream"
SETTINGS = CapiConfig(kubeconfig="/dev/null")
TARGET = mapping.Target(name="kc-1", namespace="scs-acme", owner_uid="uid-1",
                        class_name="openstack-scs2-1-34-v2", class_namespace="cluster-stacks",
                        version="1.34.7", source_namespace="acme")


def spec(**fields: Any) -> dict[str, Any]:
    """A spec as the controller passes it: the kind's model, dumped with its defaults."""
    base = {"kubernetesVersion": "1.34", "nodePools": [
        {"name": "general", "flavor": "SCS-4V-8", "replicas": 3}]}
    return ClusterSpec.model_validate({**base, **fields}).model_dump(mode="json")


def v1beta2_schema() -> dict[str, Any]:
    crd = yaml.safe_load((UPSTREAM / "cluster.x-k8s.io_clusters.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta2")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_a_spec_renders_the_reference_mapping_and_validates_against_the_crd() -> None:
    body = mapping.render(spec(
        controlPlane={"replicas": 3},
        oidc={"issuerURL": "https://id.example/realms/acme", "clientID": "kubectl"},
        nodePools=[
            {"name": "general", "flavor": "SCS-4V-8", "replicas": 3, "zones": ["nova"]},
            {"name": "gpu", "flavor": "SCS-8V-32-100s", "rootDiskGiB": 0,
             "autoscaling": {"min": 1, "max": 4},
             "labels": {"node.cluster.x-k8s.io/pool": "gpu"},
             "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]}]),
        TARGET, SETTINGS)
    jsonschema.validate(body, v1beta2_schema())
    topology = body["spec"]["topology"]
    assert body["metadata"]["labels"] == {mapping.OWNER_LABEL: "uid-1",
                                          mapping.NAMESPACE_LABEL: "acme"}
    assert topology["classRef"] == {"name": "openstack-scs2-1-34-v2",
                                    "namespace": "cluster-stacks"}
    assert topology["version"] == "v1.34.7"
    assert topology["controlPlane"] == {"replicas": 3}
    assert body["spec"]["clusterNetwork"] == {"pods": {"cidrBlocks": ["172.16.0.0/16"]},
                                              "services": {"cidrBlocks": ["10.96.0.0/12"]}}
    assert {v["name"]: v["value"] for v in topology["variables"]} == {
        "identityRef": {"name": "openstack", "cloudName": "openstack"},
        "oidcConfig": {"issuerURL": "https://id.example/realms/acme", "clientID": "kubectl",
                       "usernameClaim": "preferred_username", "groupsClaim": "groups",
                       "usernamePrefix": "oidc:", "groupsPrefix": "oidc:"}}
    general, gpu = topology["workers"]["machineDeployments"]
    assert general == {"class": "default-worker", "name": "general", "replicas": 3,
                       "failureDomain": "nova", "variables": {"overrides": [
                           {"name": "workerFlavor", "value": "SCS-4V-8"}]}}
    assert "replicas" not in gpu
    assert gpu["metadata"] == {
        "labels": {"node.cluster.x-k8s.io/pool": "gpu"},
        "annotations": {mapping.MIN_SIZE: "1", mapping.MAX_SIZE: "4"}}
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "true",
                              "effect": "NoSchedule", "propagation": "Always"}]
    assert gpu["variables"]["overrides"] == [{"name": "workerFlavor", "value": "SCS-8V-32-100s"},
                                             {"name": "workerRootDisk", "value": 0}]


def test_operator_variables_and_labels_and_arm64_images() -> None:
    settings = CapiConfig(kubeconfig="x", variables={"networkExternalID": "e"},
                          clusterLabels={"managed-secret": "clouds-yaml"},
                          identitySecret="", arm64ImageName="ubuntu-capi-image-arm64")
    body = mapping.render(spec(nodePools=[{"name": "arm", "flavor": "SCS-2V-4_a",
                                           "architecture": "arm64", "replicas": 1}]),
                          TARGET, settings)
    assert body["metadata"]["labels"]["managed-secret"] == "clouds-yaml"
    assert body["spec"]["topology"]["variables"] == [{"name": "networkExternalID",
                                                      "value": "e"}]
    overrides = body["spec"]["topology"]["workers"]["machineDeployments"][0]["variables"]
    assert {"name": "imageName", "value": "ubuntu-capi-image-arm64"} in overrides["overrides"]


@pytest.mark.parametrize(("fields", "settings", "expected"), [
    ({"controlPlane": {"hosted": True}}, {}, "spec.controlPlane.hosted"),
    ({"nodePools": [{"name": "a", "flavor": "f", "replicas": 1, "zones": ["z1", "z2"]}]}, {},
     "spec.nodePools[0].zones"),
    ({"nodePools": [{"name": "a", "flavor": "f", "replicas": 1, "architecture": "arm64"}]},
     {}, "spec.nodePools[0].architecture"),
    ({"nodePools": [{"name": "a", "flavor": "f", "replicas": 1, "labels": {"role": "db"}}]},
     {}, "spec.nodePools[0].labels: 'role' would not reach the nodes"),
    ({"nodePools": [{"name": "a", "flavor": "f", "replicas": 1, "taints": [
        {"key": "k", "effect": "NoSchedule"}]}]}, {"machineTaints": False},
     "spec.nodePools[0].taints"),
], ids=["hosted", "zones", "arm64", "labels", "taints-without-gate"])
def test_what_capi_cannot_build_is_refused_with_its_field(
        fields: dict[str, Any], settings: dict[str, Any], expected: str) -> None:
    found = mapping.refusals(spec(**fields), CapiConfig(kubeconfig="x", **settings))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_labels_the_operator_syncs_and_maintenance_are_accepted() -> None:
    settings = CapiConfig(kubeconfig="x", additionalSyncMachineLabels=["example.com/.*"])
    assert mapping.refusals(spec(
        maintenance={"timeWindow": {"begin": "220000+0100", "end": "230000+0100"}},
        nodePools=[{"name": "a", "flavor": "f", "replicas": 1, "labels": {
            "example.com/tier": "db", "node-role.kubernetes.io/db": ""}}]), settings) == []


def test_names_in_the_management_cluster() -> None:
    management = Management(SETTINGS)
    assert management.namespace(Scope("team-a", "acme")) == "scs-acme"
    assert management.namespace(Scope("loose")) == "scs-loose"  # no tenant: its own
    long = management.namespace(Scope("x", "t" * 63))
    assert len(long) == 63 and long.startswith("scs-ttt") and long != \
        management.namespace(Scope("x", "t" * 62 + "u"))
    assert backend_name("0b9c2a51-7d0e-4a7b-9f1e-2c3d4e5f6a7b") == "kc-0b9c2a517d0e4a7b"


@pytest.mark.parametrize("record", [
    {"spec": {"kubernetesVersion": "1.34", "nodePools": [{"name": "a"}]}},  # no flavor
    {"spec": ["not", "a", "spec"]},
    {"spec": {"kubernetesVersion": "1.34"}, "class": ["x"]},
])
def test_a_desired_annotation_edited_by_hand_is_drift_not_a_crash(
        record: dict[str, Any]) -> None:
    clusters = CapiClusters(Management(SETTINGS))
    body = mapping.render(spec(), TARGET, SETTINGS)
    annotation = {"class": TARGET.class_name, "version": TARGET.version,
                  "owner": TARGET.owner_uid, **record}
    body["metadata"]["annotations"] = {mapping.DESIRED_ANNOTATION: json.dumps(annotation)}
    assert clusters._desired(Scope("acme", "acme"), body) == {}
    body["metadata"]["annotations"][mapping.DESIRED_ANNOTATION] = json.dumps(
        {"spec": spec(), "class": TARGET.class_name, "version": TARGET.version,
         "owner": TARGET.owner_uid})
    assert clusters._desired(Scope("acme", "acme"), body) == spec()


def test_contains_ignores_what_others_added_but_sees_changed_values() -> None:
    wanted = mapping.render(spec(), TARGET, SETTINGS)
    actual = yaml.safe_load(yaml.safe_dump(wanted))
    actual["spec"]["controlPlaneEndpoint"] = {"host": "h", "port": 6443}
    actual["metadata"]["uid"] = "x"
    assert mapping.contains(actual, wanted)
    actual["spec"]["topology"]["workers"]["machineDeployments"][0]["replicas"] = 9
    assert not mapping.contains(actual, wanted)
    del actual["spec"]["topology"]["workers"]
    assert not mapping.contains(actual, wanted)


def test_variables_capis_webhook_defaulted_are_not_drift_but_a_changed_one_is() -> None:
    # CAPI's Cluster webhook adds each class variable with a default to topology.variables
    wanted = mapping.render(spec(), TARGET, SETTINGS)
    actual = yaml.safe_load(yaml.safe_dump(wanted))
    topology = actual["spec"]["topology"]
    topology["variables"] = [{"name": "apiServerLoadBalancer", "value": "octavia-ovn"},
                             *topology["variables"], {"name": "imageAddVersion", "value": True}]
    topology["workers"]["machineDeployments"][0]["variables"]["overrides"].insert(
        0, {"name": "workerRootDisk", "value": 50})
    assert mapping.contains(actual, wanted)
    topology["variables"] = [v for v in topology["variables"] if v["name"] != "identityRef"]
    assert not mapping.contains(actual, wanted)
    topology["variables"].append({"name": "identityRef", "value": {"name": "other"}})
    assert not mapping.contains(actual, wanted)


# -- the offer -----------------------------------------------------------------------------------
def release(name: str, version: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"kubernetesVersion": version, "ready": ready}}


def klass(name: str, versions: list[str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"kubernetesVersions": versions or []}}


NAMES = {"openstack-scs2-1-33-v4": "v1.33.9", "openstack-scs2-1-33-v5": "v1.33.10",
         "openstack-scs2-1-34-v1": "v1.34.6", "openstack-scs2-1-34-v2": "v1.34.7",
         "openstack-scs2-1-35-v1-alpha-1": "v1.35.0", "openstack-scs-1-32-v1": "v1.32.5"}
CLASSES = offer.stack_classes(
    [release(n, v) for n, v in NAMES.items()] + [release("openstack-scs2-1-34-v3", "1.34.8",
                                                         ready=False)],
    [klass(n) for n in [*NAMES, "openstack-scs2-1-34-v3"]], "openstack-scs2")


def test_the_offer_lists_ready_releases_of_the_stack_with_a_class() -> None:
    spec_ = offer.offer_spec(CLASSES, "capi")
    assert [(c["name"], c["kubernetesVersion"], c["classification"])
            for c in spec_["clusterClasses"]] == [
        ("openstack-scs2-1-33-v4", "1.33.9", "deprecated"),
        ("openstack-scs2-1-33-v5", "1.33.10", "supported"),
        ("openstack-scs2-1-34-v1", "1.34.6", "deprecated"),
        ("openstack-scs2-1-34-v2", "1.34.7", "supported"),
        ("openstack-scs2-1-35-v1-alpha-1", "1.35.0", "preview")]
    assert [v["version"] for v in spec_["kubernetes"]["versions"]] == [
        "1.33.9", "1.33.10", "1.34.6", "1.34.7", "1.35.0"]
    assert spec_["hostedControlPlanes"] is False


def test_without_releases_classes_with_kubernetes_versions_stand_in() -> None:
    found = offer.stack_classes(None, [klass("openstack-scs2-1-34-v2", ["v1.34.6", "v1.34.7"]),
                                       klass("openstack-scs2-1-33-v1")], "openstack-scs2")
    assert [(c.name, c.kubernetes_version) for c in found] == [
        ("openstack-scs2-1-34-v2", "1.34.7")]


@pytest.mark.parametrize(("version", "override", "expected"), [
    ("1.34", "", ("openstack-scs2-1-34-v2", "1.34.7")),
    ("1.34.6", "", ("openstack-scs2-1-34-v1", "1.34.6")),  # the class installing it
    ("1.34.6", "openstack-scs2-1-34-v1", ("openstack-scs2-1-34-v1", "1.34.6")),
    ("1.34", "openstack-scs2-1-34-v1", ("openstack-scs2-1-34-v1", "1.34.6")),
    ("1.35", "", ("openstack-scs2-1-35-v1-alpha-1", "1.35.0")),
])
def test_resolve_pairs_each_class_with_the_patch_it_installs(
        version: str, override: str, expected: tuple[str, str]) -> None:
    assert offer.resolve(CLASSES, version, override) == expected


@pytest.mark.parametrize(("version", "override", "message"), [
    ("1.31", "", "spec.kubernetesVersion: no class of cluster stack installs Kubernetes 1.31"),
    ("1.34.9", "", "spec.kubernetesVersion: Kubernetes 1.34.9 is not installed"),
    ("1.34", "openstack-scs2-1-33-v5", "spec.clusterClass: 'openstack-scs2-1-33-v5'"),
    ("1.34.7", "openstack-scs2-1-34-v1",
     "spec.clusterClass: 'openstack-scs2-1-34-v1' installs Kubernetes 1.34.6, not 1.34.7"),
])
def test_resolve_refuses_what_the_stack_does_not_offer(version: str, override: str,
                                                       message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace(".", r"\.")):
        offer.resolve(CLASSES, version, override)


# -- status ----------------------------------------------------------------------------------------
def capi(status_: dict[str, Any], api_version: str = mapping.CAPI, **meta: Any) -> dict[str, Any]:
    body = mapping.render(spec(nodePools=[
        {"name": "a", "flavor": "f", "replicas": 2},
        {"name": "b", "flavor": "f", "autoscaling": {"min": 1, "max": 3}}]), TARGET, SETTINGS)
    body["apiVersion"] = api_version
    body["metadata"] |= {"generation": 2, **meta}
    body["spec"]["controlPlaneEndpoint"] = {"host": "10.0.0.5", "port": 6443}
    return {**body, "status": {"observedGeneration": 2, **status_}}


def cond(type_: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason or type_,
            "message": message}


def test_a_ready_v1beta2_cluster_is_active_with_per_pool_counts() -> None:
    obj = capi({"phase": "Provisioned", "conditions": [
        cond("Available", True), cond("ControlPlaneAvailable", True),
        cond("WorkersAvailable", True), cond("TopologyReconciled", True)],
        "controlPlane": {"versions": [{"version": "v1.34.7", "replicas": 3}]},
        "workers": {"readyReplicas": 3, "desiredReplicas": 3}})
    found = status.view(obj, None, {"x": 1})
    assert (found.state, found.id, found.owner_uid) == ("ACTIVE", "kc-1", "uid-1")
    assert found.observed == {
        "controlPlaneReady": True, "kubernetesVersion": "1.34.7",
        "clusterClass": "openstack-scs2-1-34-v2", "apiEndpoint": "https://10.0.0.5:6443",
        "phase": "Provisioned", "nodePools": [
            {"name": "a", "desiredReplicas": 2, "readyReplicas": 2},
            {"name": "b", "desiredReplicas": 1, "readyReplicas": 1}]}


def test_machine_deployments_give_each_pool_its_own_count() -> None:
    obj = capi({"phase": "Provisioned", "conditions": [cond("Available", True)]})
    mds = [{"metadata": {"labels": {status.POOL_LABEL: "a"}}, "status": {"readyReplicas": 1}},
           {"metadata": {"labels": {status.POOL_LABEL: "b"}}, "spec": {"replicas": 3},
            "status": {"readyReplicas": 3}}]
    found = status.view(obj, mds, {})
    assert found.observed["nodePools"] == [
        {"name": "a", "desiredReplicas": 2, "readyReplicas": 1},
        {"name": "b", "desiredReplicas": 3, "readyReplicas": 3}]  # the autoscaler's choice
    assert found.state == "PENDING"


def test_a_v1beta1_shaped_status_reads_the_same() -> None:
    obj = capi({"phase": "Provisioned", "controlPlaneReady": True,
                "conditions": [cond("Ready", True), cond("ControlPlaneReady", True),
                               cond("TopologyReconciled", True)],
                "v1beta2": {"workers": {"readyReplicas": 3}}},
               api_version="cluster.x-k8s.io/v1beta1")
    found = status.view(obj, None, {})
    assert found.state == "ACTIVE"
    assert found.observed["controlPlaneReady"] is True
    assert found.observed["kubernetesVersion"] == "1.34.7"


def test_upgrading_pending_and_failing_topologies() -> None:
    upgrading = status.view(capi({"phase": "Provisioned", "conditions": [
        cond("Available", True), cond("ControlPlaneAvailable", True),
        cond("TopologyReconciled", False, "ClusterUpgrading", "upgrading to v1.34.7")],
        "controlPlane": {"versions": [{"version": "v1.33.10"}, {"version": "v1.34.7"}]}}),
        None, {})
    assert upgrading.state == "PENDING"
    assert upgrading.observed["phase"] == "ClusterUpgrading"
    assert upgrading.observed["kubernetesVersion"] == "1.33.10"
    assert "upgrading to v1.34.7" in upgrading.message
    refused = status.view(capi({"conditions": [cond("TopologyReconciled", False,
                                                    "ReconcileFailed", "bad variable")]}),
                          None, {})
    assert (refused.state, refused.message) == (
        "ERROR", "Cluster API refuses the topology: bad variable")
    stale = status.view(capi({"conditions": [cond("Available", True)]}, generation=3), None, {})
    assert stale.state == "PENDING" and "not seen the change" in stale.message
    old_refused = status.view(capi({"conditions": [cond("TopologyReconciled", False,
                                                        "TopologyReconcileFailed", "no")],
                                    "v1beta2": {}}, api_version="cluster.x-k8s.io/v1beta1"),
                              None, {})
    assert old_refused.state == "ERROR"


def test_deleting_and_failed_clusters() -> None:
    assert status.view(capi({}, deletionTimestamp="2026-01-01T00:00:00Z"), None, {}).state \
        == "DELETING"
    failed = status.view(capi({"phase": "Failed", "deprecated": {"v1beta1": {
        "failureMessage": "quota"}}}), None, {})
    assert (failed.state, failed.message) == ("ERROR", "the cluster failed: quota")


# -- variables -------------------------------------------------------------------------------------
def test_variables_are_checked_against_the_class_schemas() -> None:
    scs2 = yaml.safe_load((UPSTREAM / "clusterclass-openstack-scs2-1-34-v2.v1beta2.yaml")
                          .read_text())
    defs = variables.definitions(scs2)
    good = mapping.render(spec(rootDiskGiB=None), TARGET, SETTINGS)["spec"]["topology"]
    assert variables.problems(good, defs) == []
    bad = {"variables": [{"name": "workerRootDisk", "value": -1},
                         {"name": "nodeLabels", "value": {}}],
           "workers": {"machineDeployments": [{"name": "p", "variables": {"overrides": [
               {"name": "workerFlavor", "value": 4}]}}]}}
    assert variables.problems(bad, defs) == [
        "spec.topology.variables[workerRootDisk]: Invalid value: -1: should be greater than "
        "or equal to 0",
        "spec.topology.variables[nodeLabels]: the class declares no variable 'nodeLabels'",
        "spec.topology.workers.machineDeployments[p].variables.overrides[workerFlavor]: "
        'Invalid value: "integer": must be of type string: "integer"']
    assert variables.missing_worker_class(scs2, "default-worker") == ""
    assert variables.missing_worker_class(scs2, "gpu-worker") == \
        "the class has no worker class 'gpu-worker' (it has: default-worker)"
    status_defs = variables.definitions({"status": {"variables": [{"name": "only", "definitions": [
        {"schema": {"openAPIV3Schema": {"type": "string"}}}]}]}, **scs2})
    assert list(status_defs) == ["only"]


# -- access ----------------------------------------------------------------------------------------
def test_the_admin_certificate_is_short_lived_and_signed_by_the_cluster_ca() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
          .public_key(key.public_key()).serial_number(1).not_valid_before(now)
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    signed = client_certificate(ca_pem, key_pem, USER_PREFIX + "alice@acme" + "x" * 80,
                                "kubeadm:cluster-admins", 600, now=now)
    cert, client_key, expires = (x509.load_pem_x509_certificate(signed.certificate),
                                 signed.key, signed.not_after)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "scs:alice@acme" + "x" * 80  # longer than X.509's 64: Kubernetes takes it all
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "kubeadm:cluster-admins"
    assert cert.not_valid_after_utc == expires.replace(microsecond=0) == \
        (now + dt.timedelta(seconds=600)).replace(microsecond=0)
    cert.verify_directly_issued_by(ca)
    assert serialization.load_pem_private_key(client_key, None).public_key().public_numbers() \
        == cert.public_key().public_numbers()  # type: ignore[union-attr]
