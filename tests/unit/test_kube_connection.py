"""The KaaS providers' lazy client of their management cluster or Garden: one per event loop,
kept for it, and errors of an unusable kubeconfig as BackendUnavailable."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from central_api.config import CapiConfig, GardenerConfig
from central_api.providers import kube as kube_module
from central_api.providers.base import BackendUnavailable, QuotaExceeded
from central_api.providers.capi.management import Management
from central_api.providers.gardener.garden import Garden
from central_api.providers.kube import KubeClient


def kubeconfig(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "m", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "m", "user": "u"}}]}))
    return path


@pytest.mark.parametrize("kind", ["capi", "gardener"])
def test_each_event_loop_keeps_its_own_client(kind: str, tmp_path: Path) -> None:
    """The controllers' loop and another (the server's, a test's) alternate without a new
    client per switch: the old code of one provider replaced the other loop's client
    without closing it, leaking an HTTP session on every switch."""
    path = str(kubeconfig(tmp_path / "kubeconfig"))
    if kind == "capi":
        management = Management(CapiConfig(kubeconfig=path))
        connect = management.kube
    else:
        connect = Garden(GardenerConfig(kubeconfig=path)).client
    loops = [asyncio.new_event_loop(), asyncio.new_event_loop()]
    try:
        seen: list[KubeClient] = [loop.run_until_complete(connect())
                                  for loop in (*loops, *loops)]
        assert seen[0] is seen[2] and seen[1] is seen[3] and seen[0] is not seen[1]

        async def both_at_once() -> tuple[KubeClient, KubeClient]:
            first, second = await asyncio.gather(connect(), connect())
            return first, second
        fresh = asyncio.new_event_loop()
        try:
            first, second = fresh.run_until_complete(both_at_once())
            assert first is second
        finally:
            fresh.run_until_complete(first.close())
            fresh.close()
    finally:
        for loop, client in zip(loops, seen, strict=False):
            loop.run_until_complete(client.close())
            loop.close()


def test_an_unusable_kubeconfig_is_backend_unavailable(tmp_path: Path) -> None:
    garden = Garden(GardenerConfig(kubeconfig=str(tmp_path / "missing")))
    with pytest.raises(BackendUnavailable, match="cannot load the Garden's kubeconfig"):
        asyncio.run(garden.client())


class Answer:
    def __init__(self, status: int, text: str) -> None:
        self.status, self._text = status, text

    async def text(self) -> str:
        return self._text


class FakeApi:
    """Stands in for kubernetes_asyncio's ApiClient: one canned answer."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.configuration = SimpleNamespace(api_key={"BearerToken": "Bearer t"})

    async def call_api(self, *args: object, **kwargs: object) -> Answer:
        return self.answer


@pytest.mark.parametrize("text", ["<html>login</html>", "[1, 2]"])
def test_an_answer_that_is_no_kubernetes_object_is_backend_unavailable(text: str) -> None:
    kube = KubeClient(FakeApi(Answer(200, text)), "https://mgmt.example")  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailable, match="mgmt.example answered HTTP 200 with no "
                                                 "Kubernetes object"):
        asyncio.run(kube.get("v1", "namespaces", "", "x"))


def test_a_projects_resource_quota_is_quota_exceeded_and_retried() -> None:
    message = ('shoots.core.gardener.cloud "k1" is forbidden: exceeded quota: shoots, '
               "requested: count/shoots.core.gardener.cloud=1, used: "
               "count/shoots.core.gardener.cloud=2, limited: count/shoots.core.gardener.cloud=2")
    body = json.dumps({"kind": "Status", "code": 403, "reason": "Forbidden", "message": message})
    kube = KubeClient(FakeApi(Answer(403, body)), "https://garden.example")  # type: ignore[arg-type]
    with pytest.raises(QuotaExceeded, match="exceeded quota: shoots") as raised:
        asyncio.run(kube.get("v1", "namespaces", "", "x"))
    assert raised.value.retryable


def test_revoked_credentials_read_the_kubeconfig_again_only_now_and_then(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = CapiConfig(kubeconfig=str(kubeconfig(tmp_path / "kubeconfig")))
    loads: list[str] = []
    real = kube_module._load

    async def counted(settings: CapiConfig) -> object:
        loads.append(settings.kubeconfig)
        return await real(settings)

    monkeypatch.setattr(kube_module, "_load", counted)
    denied = json.dumps({"kind": "Status", "code": 401, "message": "Unauthorized"})
    kube = KubeClient(FakeApi(Answer(401, denied)), "https://mgmt.example", settings)  # type: ignore[arg-type]

    async def three() -> None:
        for _ in range(3):
            with pytest.raises(BackendUnavailable, match="denied the provider's credentials"):
                await kube.get("v1", "namespaces", "", "x")
    asyncio.run(three())
    assert len(loads) == 1, "one read per RELOAD_SECONDS, not one per request"
