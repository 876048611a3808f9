"""The pure parts of the Gardener provider: Cluster spec → Shoot, Shoot status → state, the
offer from a CloudProfile, and reading an admin kubeconfig. The Shoots built here are
checked against Gardener's Shoot schema (``tests/kaas/upstream/``), unknown fields refused."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
import yaml

from central_api.config import GardenerConfig
from central_api.kinds.kaas import ClusterSpec
from central_api.providers.base import BackendUnavailable, InvalidRequest, ProviderError
from central_api.providers.gardener.access import parse_kubeconfig
from central_api.providers.gardener.mapping import (
    APPLIED_ANNOTATION,
    OWNER_LABEL,
    RUNNING_ANNOTATION,
    SPEC_ANNOTATION,
    Profile,
    Refused,
    Target,
    drift,
    observe,
    oidc_config_map,
    project_name,
    refusals,
    resolve_version,
    shoot,
    shoot_name,
    written_spec,
)
from central_api.providers.gardener.offer import offer, profile
from central_api.providers.kube import KubeClient

UPSTREAM = Path(__file__).resolve().parents[1] / "kaas" / "upstream"
SETTINGS = GardenerConfig(kubeconfig="/k", cloudProfile="openstack", region="RegionOne",
                          credentialsBindingName="openstack-creds", floatingPoolName="ext",
                          loadBalancerProvider="ovn", machineImage="gardenlinux")
PROFILE = Profile({"1.32.13": "expired", "1.33.9": "supported", "1.33.10": "supported",
                   "1.34.6": "supported", "1.34.7": "preview"}, ("nova-1", "nova-2"))
UID = "5b0e8d52-4a0e-4d6b-9a3f-2f1c1d9e0a11"


def spec(**fields: Any) -> ClusterSpec:
    base: dict[str, Any] = {"kubernetesVersion": "1.33.9", "nodePools": [
        {"name": "general", "flavor": "SCS-2V-4", "replicas": 2}]}
    return ClusterSpec.model_validate({**base, **fields})


def built(cluster: ClusterSpec, **target: Any) -> dict[str, Any]:
    where = {"namespace": "garden-acme", "name": "k1234", "owner_uid": UID,
             "version": "1.33.9", **target}
    return shoot(SETTINGS, Target(**where), cluster, PROFILE)


def shoot_schema() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((UPSTREAM / "shoots.core.gardener.cloud.crd.yaml")
                                          .read_text()) if d]
    schema: dict[str, Any] = docs[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return _closed(schema)


def _closed(node: Any) -> Any:
    """The schema with unknown fields refused where it lists properties (as the API
    server prunes/refuses them), so a misspelt field name fails the test."""
    if isinstance(node, dict):
        out = {k: _closed(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_closed(v) for v in node]
    return node


# -- names ---------------------------------------------------------------------------------
def test_shoot_names_are_stable_short_and_within_gardeners_limit() -> None:
    name = shoot_name("acme", UID)
    assert name == shoot_name("acme", UID), "the same on every retry"
    assert name[0].isalpha() and name.isalnum() and name.islower()
    assert len("acme") + len(name) <= 21
    assert len(shoot_name("a-long-project", UID)) == 21 - len("a-long-project")
    assert shoot_name("acme", UID, 1) != name
    assert shoot_name("acme", "another-uid") != name
    with pytest.raises(Refused, match="21 characters"):
        shoot_name("a-very-long-project1", UID)
    assert project_name("garden-acme") == "acme"


# -- the Shoot -----------------------------------------------------------------------------
def test_a_cluster_becomes_a_shoot_field_by_field() -> None:
    cluster = spec(kubernetesVersion="1.33", nodePools=[
        {"name": "general", "flavor": "SCS-4V-16", "replicas": 3, "zones": ["nova-2"],
         "labels": {"tier": "web"}, "rootDiskGiB": 50},
        {"name": "arm", "flavor": "SCS-2V-4_a", "architecture": "arm64",
         "autoscaling": {"min": 1, "max": 5},
         "taints": [{"key": "arch", "value": "arm64", "effect": "NoSchedule"},
                    {"key": "dedicated", "effect": "NoExecute"}], "rootDiskGiB": 0}],
        networking={"pods": "100.64.0.0/12", "services": "100.104.0.0/13"},
        maintenance={"timeWindow": {"begin": "220000+0100", "end": "230000+0100"},
                     "autoUpdate": {"kubernetesVersion": False}})
    body = built(cluster, version="1.33.10")
    jsonschema.validate(body, shoot_schema())
    meta, s = body["metadata"], body["spec"]
    assert meta["name"] == "k1234" and meta["namespace"] == "garden-acme"
    assert meta["labels"][OWNER_LABEL] == UID
    assert json.loads(meta["annotations"][SPEC_ANNOTATION]) == cluster.model_dump(mode="json")
    assert json.loads(meta["annotations"][APPLIED_ANNOTATION]) == s
    assert s["cloudProfile"] == {"kind": "CloudProfile", "name": "openstack"}
    assert s["region"] == "RegionOne" and s["credentialsBindingName"] == "openstack-creds"
    assert s["provider"]["type"] == "openstack"
    assert s["provider"]["infrastructureConfig"]["floatingPoolName"] == "ext"
    assert s["provider"]["controlPlaneConfig"]["loadBalancerProvider"] == "ovn"
    assert s["networking"] == {"type": "calico", "pods": "100.64.0.0/12",
                               "services": "100.104.0.0/13", "nodes": "10.250.0.0/16"}
    assert s["kubernetes"] == {"version": "1.33.10"}
    assert s["maintenance"] == {"autoUpdate": {"kubernetesVersion": False},
                                "timeWindow": {"begin": "220000+0100", "end": "230000+0100"}}
    assert "controlPlane" not in s
    general, arm = s["provider"]["workers"]
    assert general == {"name": "general", "minimum": 3, "maximum": 3,
                       "machine": {"type": "SCS-4V-16", "architecture": "amd64",
                                   "image": {"name": "gardenlinux"}},
                       "cri": {"name": "containerd"}, "zones": ["nova-2"],
                       "labels": {"tier": "web"}, "volume": {"size": "50Gi"}}
    assert arm["minimum"] == 1 and arm["maximum"] == 5
    assert arm["machine"]["architecture"] == "arm64"
    assert arm["zones"] == ["nova-1"], "a pool without zones gets the region's first"
    assert arm["taints"] == [{"key": "arch", "value": "arm64", "effect": "NoSchedule"},
                             {"key": "dedicated", "effect": "NoExecute"}]
    assert "volume" not in arm, "rootDiskGiB 0: the flavor's own disk"


@pytest.mark.parametrize(("zones", "current", "expected"), [
    ([["nova-1"]], "", "node"), ([["nova-1"], ["nova-2"]], "", "zone"),
    ([["nova-1", "nova-2"]], "", "zone"), ([["nova-1", "nova-2"]], "node", "node")])
def test_three_control_plane_replicas_become_high_availability(
        zones: list[list[str]], current: str, expected: str) -> None:
    pools = [{"name": f"p{i}", "flavor": "SCS-2V-4", "replicas": 1, "zones": z}
             for i, z in enumerate(zones)]
    body = built(spec(controlPlane={"replicas": 3}, nodePools=pools),
                 failure_tolerance=current)
    jsonschema.validate(body, shoot_schema())
    assert body["spec"]["controlPlane"] == {
        "highAvailability": {"failureTolerance": {"type": expected}}}


def test_oidc_is_structured_authentication_in_a_config_map() -> None:
    cluster = spec(oidc={"issuerURL": "https://id.example/realms/acme", "clientID": "k8s"})
    body = built(cluster)
    jsonschema.validate(body, shoot_schema())
    name = body["spec"]["kubernetes"]["kubeAPIServer"]["structuredAuthentication"][
        "configMapName"]
    owner = {"metadata": {"name": "k1234", "uid": "shoot-uid"}}
    cm = oidc_config_map("garden-acme", UID, cluster, owner)
    assert cm is not None and cm["metadata"]["name"] == name
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "shoot-uid"
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert config["apiVersion"] == "apiserver.config.k8s.io/v1beta1"
    assert config["kind"] == "AuthenticationConfiguration"
    assert config["jwt"] == [{
        "issuer": {"url": "https://id.example/realms/acme", "audiences": ["k8s"]},
        "claimMappings": {"username": {"claim": "preferred_username", "prefix": "oidc:"},
                          "groups": {"claim": "groups", "prefix": "oidc:"}}}]
    assert oidc_config_map("garden-acme", UID, spec()) is None


def test_what_gardener_cannot_build_is_refused_naming_the_field() -> None:
    assert refusals(spec()) == []
    found = refusals(spec(controlPlane={"hosted": True}, clusterClass="openstack-scs2-1-33-v5",
                          nodePools=[]))
    assert [f.split(":")[0] for f in found] == [
        "spec.controlPlane.hosted", "spec.clusterClass", "spec.nodePools"]
    assert all("Gardener" in f for f in found)


@pytest.mark.parametrize(("wanted", "live", "expected"), [
    ("1.33", "", "1.33.10"), ("1.33.9", "", "1.33.9"), ("1.34", "", "1.34.6"),
    ("1.33.9", "1.33.10", "1.33.10"), ("1.33", "1.33.9", "1.33.9"),
    ("1.34", "1.33.10", "1.34.6"), ("1.33.10", "1.33.9", "1.33.10")],
    ids=["minor-newest-supported", "patch", "supported-before-preview",
         "maintenance-raised-patch-kept", "minor-keeps-running-patch", "minor-upgrade",
         "patch-upgrade"])
def test_versions_resolve_to_a_patch_and_never_go_down(wanted: str, live: str,
                                                         expected: str) -> None:
    assert resolve_version(wanted, PROFILE, live) == expected


def test_versions_the_cloud_profile_does_not_offer_are_refused() -> None:
    for wanted in ("1.32.13", "1.31", "1.33.8"):
        with pytest.raises(Refused, match=r"spec.kubernetesVersion.*offered: 1.33.9"):
            resolve_version(wanted, PROFILE)


# -- reading the Shoot back ----------------------------------------------------------------
def live(cluster: ClusterSpec | None = None, generation: int = 1, **status: Any
         ) -> dict[str, Any]:
    body = built(cluster or spec())
    body["metadata"].update(generation=generation, uid="shoot-uid")
    body["status"] = status
    return body


def healthy(*false: str, progressing: str = "") -> list[dict[str, str]]:
    kinds = ("APIServerAvailable", "ControlPlaneHealthy", "EveryNodeReady",
             "SystemComponentsHealthy", "ObservabilityComponentsHealthy")
    return [{"type": t, "status": "False" if t in false else
             "Progressing" if t == progressing else "True", "message": f"{t} says so"}
            for t in kinds]


def test_a_new_shoot_is_pending_with_gardeners_progress_as_phase() -> None:
    assert observe(live()).state == "PENDING"
    assert observe(live()).observed["phase"] == "Create Pending"
    seen = observe(live(observedGeneration=1, lastOperation={
        "type": "Create", "state": "Processing", "progress": 40,
        "description": "Waiting for the infrastructure"}))
    assert seen.state == "PENDING"
    assert seen.observed["phase"] == "Create Processing 40%"
    assert "Waiting for the infrastructure" in seen.message
    assert seen.observed["nodePools"] == [
        {"name": "general", "desiredReplicas": 2, "readyReplicas": 0}]
    assert seen.observed["controlPlaneReady"] is False
    assert seen.observed["kubernetesVersion"] == ""


def test_a_succeeded_healthy_shoot_is_active_with_its_endpoint_and_pools() -> None:
    seen = observe(live(observedGeneration=1, technicalID="shoot--acme--k1234",
                        lastOperation={"type": "Create", "state": "Succeeded",
                                       "progress": 100, "description": "done"},
                        conditions=healthy(), advertisedAddresses=[
                            {"name": "internal", "url": "https://internal.example"},
                            {"name": "external", "url": "https://api.k1234.example"}]))
    assert seen.state == "ACTIVE" and seen.message == ""
    assert seen.observed["phase"] == "Running"
    assert seen.observed["apiEndpoint"] == "https://api.k1234.example"
    assert seen.observed["controlPlaneReady"] is True
    assert seen.observed["kubernetesVersion"] == "1.33.9"
    assert seen.observed["technicalID"] == "shoot--acme--k1234"
    assert seen.observed["nodePools"] == [
        {"name": "general", "desiredReplicas": 2, "readyReplicas": 2}]


def test_a_shoot_restored_on_another_seed_is_active_and_migrating_is_pending() -> None:
    restored = observe(live(observedGeneration=1, conditions=healthy(), lastOperation={
        "type": "Restore", "state": "Succeeded", "progress": 100, "description": "done"}))
    assert restored.state == "ACTIVE" and restored.observed["phase"] == "Running"
    assert restored.observed["kubernetesVersion"] == "1.33.9"
    migrating = observe(live(observedGeneration=1, conditions=healthy(), lastOperation={
        "type": "Migrate", "state": "Succeeded", "progress": 100, "description": "done"}))
    assert migrating.state == "PENDING"


def test_unhealthy_failed_and_deleting_shoots() -> None:
    done = {"type": "Reconcile", "state": "Succeeded", "progress": 100, "description": ""}
    sick = observe(live(observedGeneration=1, lastOperation=done,
                        conditions=healthy("EveryNodeReady")))
    assert sick.state == "ERROR" and "EveryNodeReady says so" in sick.message
    assert sick.observed["nodePools"][0]["readyReplicas"] == 0
    waiting = observe(live(observedGeneration=1, lastOperation=done,
                           conditions=healthy(progressing="SystemComponentsHealthy")))
    assert waiting.state == "PENDING" and "SystemComponentsHealthy" in waiting.message
    failed = observe(live(observedGeneration=1, lastOperation={
        "type": "Create", "state": "Error", "progress": 20, "description": "infra"},
        lastErrors=[{"description": "quota exceeded", "codes": ["ERR_INFRA_QUOTA_EXCEEDED"]}]))
    assert failed.state == "ERROR"
    assert "Gardener retries" in failed.message and "quota exceeded" in failed.message
    gone = live(observedGeneration=1, lastOperation={
        "type": "Delete", "state": "Processing", "progress": 10, "description": ""})
    assert observe(gone).state == "DELETING"
    assert observe(gone).observed["phase"] == "Delete Processing 10%"
    noted = observe(live(observedGeneration=1, lastOperation=done, conditions=healthy(),
                         constraints=[{"type": "MaintenancePreconditionsSatisfied",
                                       "status": "False", "message": "webhooks"}]))
    assert noted.state == "ACTIVE" and "MaintenancePreconditionsSatisfied" in noted.message


def test_during_a_change_the_running_version_is_the_one_before_it() -> None:
    body = live(spec(kubernetesVersion="1.34.6"), generation=2, observedGeneration=1,
                lastOperation={"type": "Reconcile", "state": "Succeeded", "progress": 100,
                               "description": ""}, conditions=healthy())
    body["metadata"]["annotations"][RUNNING_ANNOTATION] = "1.33.10"
    seen = observe(body)
    assert seen.state == "PENDING" and seen.observed["phase"] == "Reconcile Pending"
    assert seen.observed["kubernetesVersion"] == "1.33.10"


def test_hand_changes_are_drift_but_gardeners_own_additions_are_not() -> None:
    body = live()
    assert written_spec(body) == spec().model_dump(mode="json")
    body["spec"]["provider"]["workers"][0]["machine"]["image"]["version"] = "1877.1"
    body["spec"]["provider"]["workers"][0]["maxSurge"] = 1
    body["spec"]["kubernetes"]["version"] = "1.33.10"  # maintenance raised the patch
    assert drift(body) == []
    body["spec"]["provider"]["workers"][0]["maximum"] = 7
    body["spec"]["region"] = "elsewhere"
    assert sorted(drift(body)) == ["spec.provider.workers[0].maximum", "spec.region"]
    body["spec"]["provider"]["workers"].append({"name": "extra"})
    assert "spec.provider.workers" in drift(body)


# -- the offer ---------------------------------------------------------------------------------
CLOUD_PROFILE: dict[str, Any] = {
    "metadata": {"name": "openstack"},
    "spec": {"type": "openstack", "kubernetes": {"versions": [
        {"version": "1.34.1", "classification": "preview"},
        {"version": "1.32.5", "classification": "deprecated",
         "expirationDate": "2026-01-01T00:00:00Z"},
        {"version": "1.33.9", "classification": "deprecated",
         "expirationDate": "2027-06-30T00:00:00Z"},
        {"version": "1.33.10"},
        {"version": "1.35.0", "lifecycle": [
            {"classification": "preview", "startTime": "2026-01-01T00:00:00Z"},
            {"classification": "supported", "startTime": "2026-11-01T00:00:00Z"},
            {"classification": "deprecated", "startTime": "2027-11-01T00:00:00Z"}]}]},
        "regions": [{"name": "RegionOne", "zones": [{"name": "nova-1"}, {"name": "nova-2"}]}],
        "machineImages": [], "machineTypes": []}}
NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


def test_the_offer_is_the_cloud_profiles_versions_and_says_there_are_no_classes() -> None:
    found = offer(CLOUD_PROFILE, NOW)
    assert found["kubernetes"]["versions"] == [
        {"version": "1.32.5", "classification": "expired",
         "expirationDate": "2026-01-01T00:00:00Z"},
        {"version": "1.33.9", "classification": "deprecated",
         "expirationDate": "2027-06-30T00:00:00Z"},
        {"version": "1.33.10", "classification": "supported"},
        {"version": "1.34.1", "classification": "preview"},
        {"version": "1.35.0", "classification": "supported"}]
    assert found["clusterClasses"] == [] and found["hostedControlPlanes"] is False
    assert "no cluster classes" in found["provider"] and "openstack" in found["provider"]
    mapped = profile(CLOUD_PROFILE, "RegionOne", NOW)
    assert mapped.zones == ("nova-1", "nova-2")
    assert mapped.versions["1.32.5"] == "expired"


# -- admin kubeconfigs -----------------------------------------------------------------------
def test_an_admin_kubeconfig_is_read_for_server_ca_and_client_certificate() -> None:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "external",
              "clusters": [{"name": "internal", "cluster": {"server": "https://in"}},
                           {"name": "external", "cluster": {
                               "server": "https://api.k1234.example",
                               "certificate-authority-data": b64(b"CA PEM")}}],
              "users": [{"name": "admin", "user": {"client-certificate-data": b64(b"CERT"),
                                                   "client-key-data": b64(b"KEY")}}],
              "contexts": [{"name": "external", "context": {"cluster": "external",
                                                            "user": "admin"}}]}
    found = parse_kubeconfig(b64(yaml.safe_dump(config).encode()))
    assert found == {"server": "https://api.k1234.example", "certificate_authority": b"CA PEM",
                     "client_certificate": b"CERT", "client_key": b"KEY", "token": ""}
    with pytest.raises(ProviderError, match="without contexts/nowhere") as refused:
        parse_kubeconfig(b64(yaml.safe_dump({**config, "current-context": "nowhere"})
                             .encode()))
    assert "KEY" not in str(refused.value)
    with pytest.raises(ProviderError, match="unreadable") as unreadable:
        parse_kubeconfig(b64(b"client-key-data: SECRET: [unbalanced"))
    assert "SECRET" not in str(unreadable.value)


def test_gardeners_admission_refusals_are_invalid_requests_not_denied_credentials() -> None:
    """Gardener's ShootValidator answers 403 Forbidden for a Shoot it refuses; only an
    authorization denial means the provider's credentials are wrong."""
    garden = KubeClient(cast(Any, None), "https://garden.example")
    refused = garden._error(403, json.dumps({"message": 'shoots.core.gardener.cloud "k1" is '
                                             "forbidden: [spec.provider.workers[0].machine."
                                             'type: Unsupported value: "SCS-8V-32"]'}))
    assert isinstance(refused, InvalidRequest) and "Unsupported value" in str(refused)
    denied = garden._error(403, json.dumps({"message": 'shoots.core.gardener.cloud is '
                                            'forbidden: User "system:serviceaccount:garden-'
                                            'ops:scs" cannot create resource "shoots"'}))
    assert isinstance(denied, BackendUnavailable) and "credentials" in str(denied)
