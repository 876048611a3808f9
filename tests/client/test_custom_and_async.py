"""Custom resources as dicts (found by discovery), and the AsyncClient doing what the
synchronous one does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from central_api.client import ApiError, ApiResource, AsyncClient, Client, Conflict, NotFound
from central_api.kinds.apiextensions import CRD
from central_api.kinds.common import LocalRef
from central_api.kinds.iaas import Network, Server, ServerSpec, Subnet, SubnetSpec
from tests.integration.conftest import unique
from tests.server import ScsServer

pytestmark = pytest.mark.slow

GADGETS = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.sdk.example.com"},
    "spec": {"group": "sdk.example.com", "scope": "Namespaced",
             "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {
                                   "size": {"type": "integer", "minimum": 1}}},
                               "status": {"type": "object", "properties": {
                                   "phase": {"type": "string"}}}}}}}]}}


def established(crd: dict[str, Any] | None) -> bool:
    return crd is not None and any(c.get("type") == "Established" and c.get("status") == "True"
                                   for c in (crd.get("status") or {}).get("conditions") or [])


@pytest.fixture(scope="module")
def gadgets(client: Client) -> ApiResource:
    client.apply(GADGETS, field_manager="sdk-tests")
    client.wait_for(ApiResource.of(CRD).as_dicts(), "gadgets.sdk.example.com", established,
                    timeout=30, what="Established")
    return client.discover("sdk.example.com/v1", "Gadget")


def gadget(name: str, size: int) -> dict[str, Any]:
    return {"apiVersion": "sdk.example.com/v1", "kind": "Gadget", "metadata": {"name": name},
            "spec": {"size": size}}


def test_discovery_finds_a_custom_kind(gadgets: ApiResource) -> None:
    assert gadgets == ApiResource("sdk.example.com", "v1", "gadgets", True, "Gadget")


def test_custom_resources_are_dicts_through_every_call(client: Client, tenant: str,
                                                       gadgets: ApiResource) -> None:
    name = unique("g")
    created = client.create(gadget(name, 1), namespace=tenant)  # discovery from the dict
    patched = client.patch(gadgets, name, {"spec": {"size": 3}}, tenant)
    created_status = {**patched, "status": {"phase": "Built"}}
    with_status = client.update_status(created_status)
    listed = client.list(gadgets, tenant)

    assert isinstance(created, dict) and created["spec"] == {"size": 1}
    assert patched["spec"]["size"] == 3 and with_status["status"] == {"phase": "Built"}
    assert name in {g["metadata"]["name"] for g in listed.items}


def test_a_custom_resource_refuses_strategic_merge(client: Client, tenant: str,
                                                   gadgets: ApiResource) -> None:
    name = unique("g")
    client.create(gadget(name, 1), namespace=tenant)

    with pytest.raises(ApiError) as caught:
        client.patch(gadgets, name, {"spec": {"size": 2}}, tenant, type="strategic")

    assert caught.value.code == 415


def test_a_custom_resource_is_validated_by_its_schema(client: Client, tenant: str,
                                                      gadgets: ApiResource) -> None:
    with pytest.raises(ApiError) as caught:
        client.create(gadget(unique("g"), 0), namespace=tenant)

    assert caught.value.code == 422 and "spec.size" in caught.value.fields


def test_the_async_client_creates_waits_watches_and_deletes(server: ScsServer,
                                                            tenant: str) -> None:
    async def scenario() -> tuple[Server, list[str], bool]:
        async with AsyncClient(kubeconfig=server.kubeconfig) as client:
            net = unique("anet")
            await client.create(Network(metadata={"name": net, "namespace": tenant}))
            await client.create(Subnet(metadata={"name": net, "namespace": tenant},
                                       spec=SubnetSpec(networkRef=LocalRef(name=net),
                                                       cidr="10.9.0.0/24")))
            created = await client.create(Server(
                metadata={"name": unique("avm"), "namespace": tenant},
                spec=ServerSpec(flavor="SCS-1V-2", image="ubuntu-24.04",
                                networks=[LocalRef(name=net)])))
            ready = await client.wait_ready(created, timeout=30)
            seen = [e.type async for e in client.watch(
                Server, tenant, field_selector=f"metadata.name={created.metadata.name}",
                timeout=1)]
            await client.delete(Server, created.metadata.name, tenant, wait=True, timeout=30)
            gone = await client.find(Server, created.metadata.name, tenant) is None
            return ready, seen, gone

    ready, seen, gone = asyncio.run(scenario())

    assert isinstance(ready, Server) and ready.status.is_true("Ready")
    assert seen[0] == "ADDED" and gone


def test_the_async_client_raises_the_same_exceptions(server: ScsServer, tenant: str) -> None:
    async def scenario() -> tuple[type[Exception], type[Exception]]:
        async with AsyncClient(kubeconfig=server.kubeconfig) as client:
            try:
                await client.get(Network, "absent", tenant)
            except NotFound as exc:
                missing: type[Exception] = type(exc)
            created = await client.create(Network(metadata={"name": unique("c"),
                                                            "namespace": tenant}))
            await client.patch(Network, created.metadata.name,
                               {"spec": {"description": "x"}}, tenant)
            try:
                await client.update(created)
            except Conflict as exc:
                stale: type[Exception] = type(exc)
            return missing, stale

    assert asyncio.run(scenario()) == (NotFound, Conflict)
