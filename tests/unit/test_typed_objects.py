"""A kind's declaration is its run-time type: controllers get model instances, references and
cross-field rules come from the declaration, status goes back as the reconciler set it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from central_api.controllers.client import LocalClient
from central_api.controllers.runtime import Result, reconcile_once
from central_api.controllers.typed import InvalidObject, kind_of, load
from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.kinds.common import local_references
from central_api.kinds.iaas import NETWORK, SERVER, LoadBalancerSpec, Network, Server, Subnet
from central_api.machinery.errors import ApiError
from central_api.registry.resources import Resources, WriteOptions
from central_api.store.sqlite import SqliteStore

NETWORKS = kind_of(NETWORK)


@pytest.fixture
def resources(tmp_path: Path) -> Resources:
    registry = Resources(SqliteStore(tmp_path / "state.db"), Catalog(builtin_kinds()))
    namespaces = registry.catalog.require("", "v1", "namespaces")
    registry.create(namespaces, "", {"metadata": {"name": "default"}}, WriteOptions())
    return registry


class MarksReady:
    """A reconciler that only reports: what the runtime hands it and writes back."""

    kind, model, finalizer = NETWORKS, Network, "test/finalizer"

    def __init__(self) -> None:
        self.seen: list[Network] = []

    async def reconcile(self, obj: Network) -> Result:
        self.seen.append(obj)
        obj.status.backendID = "net-1"
        obj.set_condition("Ready", True, "Active", "the resource is ready")
        return Result()

    async def finalize(self, obj: Network) -> bool:
        return True


def test_a_reconciler_gets_the_declared_model_and_its_status_is_written_back(
        resources: Resources) -> None:
    client = LocalClient(resources, hub=None)  # type: ignore[arg-type]
    stored = resources.create(resources.catalog.require("iaas.scs.community", "v1alpha1",
                                                        "networks"), "default",
                              {"metadata": {"name": "net"}, "spec": {"mtu": 1400}},
                              WriteOptions())
    reconciler = MarksReady()

    asyncio.run(reconcile_once(client, reconciler, stored))

    assert isinstance(reconciler.seen[0], Network) and reconciler.seen[0].spec.mtu == 1400
    written = _get(client, "net")
    assert written["status"]["backendID"] == "net-1"
    ready = written["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["observedGeneration"]) == \
        ("Ready", "True", written["metadata"]["generation"])


def test_a_pass_that_changes_nothing_writes_nothing(resources: Resources) -> None:
    client = LocalClient(resources, hub=None)  # type: ignore[arg-type]
    resources.create(resources.catalog.require("iaas.scs.community", "v1alpha1", "networks"),
                     "default", {"metadata": {"name": "net"}}, WriteOptions())
    asyncio.run(reconcile_once(client, MarksReady(), _get(client, "net")))
    settled = _get(client, "net")

    asyncio.run(reconcile_once(client, MarksReady(), settled))

    assert _get(client, "net")["metadata"]["resourceVersion"] == \
        settled["metadata"]["resourceVersion"]


def test_references_are_found_where_the_spec_declares_them() -> None:
    spec = LoadBalancerSpec.model_validate({
        "subnetRef": {"name": "sub"},
        "pools": [{"name": "web", "members": [{"serverRef": {"name": "a"}, "port": 80},
                                              {"serverRef": {"name": "b"}, "port": 80}]}]})

    found = [(path, ref.target, ref.key) for path, ref, _ in local_references(spec)]

    assert found == [(("subnetRef",), Subnet, "subnetID"),
                     (("pools", 0, "members", 0, "serverRef"), Server, "serverID"),
                     (("pools", 0, "members", 1, "serverRef"), Server, "serverID")]


def test_the_spec_models_rules_are_the_kinds_admission(resources: Resources) -> None:
    servers = resources.catalog.require("iaas.scs.community", "v1alpha1", "servers")
    assert SERVER.strategy.validate({"spec": {"image": "x", "networks": [{"name": "n"}]}},
                                    None, resources.catalog)[0].field == "spec.flavor"

    with pytest.raises(ApiError) as refused:
        resources.create(servers, "default", {"metadata": {"name": "both"}, "spec": {
            "flavor": "SCS-2V-4", "resources": {"cpu": 2, "memoryMiB": 4096}, "image": "x",
            "networks": [{"name": "n"}]}}, WriteOptions())

    assert refused.value.code == 422
    assert "exactly one of flavor or resources" in str(refused.value.status())


def test_an_object_that_does_not_match_its_declaration_is_refused_by_name() -> None:
    with pytest.raises(InvalidObject, match="Subnet default/sub"):
        load(Subnet, {"metadata": {"name": "sub", "namespace": "default"}, "spec": {}})


def _get(client: LocalClient, name: str) -> dict[str, Any]:
    found = asyncio.run(client.get(NETWORKS, "default", name))
    assert found is not None
    return found
