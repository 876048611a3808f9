"""The management-cluster client against a real Kubernetes-style API (the stand-in)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import yaml

from central_api.config import CapiConfig
from central_api.providers import kube as kube_module
from central_api.providers.base import BackendUnavailable, Conflict, InvalidRequest
from central_api.providers.kube import KubeClient, resource_path
from tests.kaas.standin import CAPI_CRDS, ManagementCluster

pytestmark = pytest.mark.slow
CAPI = "cluster.x-k8s.io/v1beta2"


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagementCluster]:
    cluster = ManagementCluster(tmp_path_factory.mktemp("standin"), CAPI_CRDS).start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def connected(standin: ManagementCluster,
                    test: Callable[[KubeClient], Awaitable[None]]) -> None:
    kube = await KubeClient.connect(CapiConfig(kubeconfig=str(standin.kubeconfig)))
    try:
        await asyncio.wait_for(test(kube), 60)
    finally:
        await kube.close()


def capi_cluster(name: str, version: object = "v1.34.7") -> dict[str, object]:
    return {"apiVersion": CAPI, "kind": "Cluster", "metadata": {"name": name},
            "spec": {"topology": {"version": version, "classRef": {"name": "scs2"}}}}


def test_paths_follow_the_api_layout() -> None:
    assert resource_path("v1", "secrets", "ns", "a-kubeconfig") == \
        "/api/v1/namespaces/ns/secrets/a-kubeconfig"
    assert resource_path("core.gardener.cloud/v1beta1", "shoots", "garden-a", "s",
                         "adminkubeconfig") == \
        "/apis/core.gardener.cloud/v1beta1/namespaces/garden-a/shoots/s/adminkubeconfig"


def test_verbs_and_errors(standin: ManagementCluster) -> None:
    asyncio.run(connected(standin, verbs_and_errors))


async def verbs_and_errors(client: KubeClient) -> None:
    assert await client.get("v1", "namespaces", "", "scs-verbs") is None
    await client.create("v1", "namespaces", "", {"metadata": {"name": "scs-verbs"}})
    with pytest.raises(Conflict, match="already exists"):
        await client.create("v1", "namespaces", "", {"metadata": {"name": "scs-verbs"}})
    with pytest.raises(InvalidRequest, match="spec.topology.version"):
        await client.create(CAPI, "clusters", "scs-verbs", capi_cluster("bad", version=5))

    applied = await client.apply(CAPI, "clusters", "scs-verbs",
                                 {**capi_cluster("a"), "metadata": {"name": "a",
                                                                    "labels": {"t": "1"}}},
                                 field_manager="scs")
    assert applied["spec"]["topology"]["version"] == "v1.34.7"
    assert [o["metadata"]["name"] for o in
            await client.items(CAPI, "clusters", "scs-verbs", "t=1")] == ["a"]
    patched = await client.merge_patch(CAPI, "clusters", "scs-verbs", "a",
                                       {"metadata": {"labels": {"t": "2"}}})
    assert patched["metadata"]["labels"] == {"t": "2"}

    with pytest.raises(Conflict, match="Precondition failed"):
        await client.delete(CAPI, "clusters", "scs-verbs", "a", uid="not-this-one")
    assert await client.delete(CAPI, "clusters", "scs-verbs", "a",
                               uid=applied["metadata"]["uid"]) is True
    assert await client.delete(CAPI, "clusters", "scs-verbs", "a") is False


def test_unreachable_is_backend_unavailable(tmp_path_factory: pytest.TempPathFactory) -> None:
    stopped = ManagementCluster(tmp_path_factory.mktemp("stopped"), ()).start()
    stopped.stop()

    async def unreachable(kube: KubeClient) -> None:
        with pytest.raises(BackendUnavailable, match="unreachable"):
            await kube.get("v1", "namespaces", "", "x")

    asyncio.run(connected(stopped, unreachable))


def test_a_rotated_token_is_read_again_after_a_401(standin: ManagementCluster,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_module, "RELOAD_SECONDS", 0.0)  # no waiting between reads
    config = yaml.safe_load(standin.kubeconfig.read_text())
    good = config["users"][0]["user"]["token"]
    config["users"][0]["user"]["token"] = "expired-token"
    kubeconfig = tmp_path / "management.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))

    async def rotated() -> None:
        kube = await KubeClient.connect(CapiConfig(kubeconfig=str(kubeconfig)))
        try:
            with pytest.raises(BackendUnavailable, match="denied the provider's credentials"):
                await kube.get("v1", "namespaces", "", "default")
            config["users"][0]["user"]["token"] = good  # what the kubelet or operator does
            kubeconfig.write_text(yaml.safe_dump(config))
            assert await kube.get("v1", "namespaces", "", "default") is not None
        finally:
            await kube.close()

    asyncio.run(asyncio.wait_for(rotated(), 60))
