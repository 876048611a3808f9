"""The sandbox cloud enforces a tenant's quotas across all its namespaces, from the limits
onboarding set on its project in the sandbox identity (the embedded default end to end)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.controllers.conftest import (
    SANDBOX_CONFIG,
    Cluster,
    condition,
    eventually,
    launched,
    server,
    unique,
)

TENANCY = "/apis/tenancy.scs.community/v1alpha1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The fast sandbox cloud with the (default) sandbox identity for onboarding."""
    yield from launched(tmp_path_factory, "tenant-quotas", {
        **SANDBOX_CONFIG, "services": ["tenancy", "iaas", "iam"],
        "identity": {"type": "sandbox"}})


def onboard(cluster: Cluster, name: str, **quotas: int) -> None:
    response = cluster.http.post(f"{TENANCY}/tenants", json={
        "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"displayName": name, "admins": [f"alice@{name}.example"],
                 "quotas": {**quotas, "namespaces": 3}}})
    assert response.status_code == 201, response.text

    def ready() -> bool:
        tenant = cluster.http.get(f"{TENANCY}/tenants/{name}").json()
        return (condition(tenant, "Ready") or {}).get("status") == "True"
    eventually(ready, 30, what=f"tenant {name} Ready")


def second_namespace(cluster: Cluster, tenant: str) -> str:
    name = f"{tenant}-two"
    response = cluster.http.post("/api/v1/namespaces", json={"metadata": {
        "name": name, "labels": {"tenancy.scs.community/tenant": tenant}}})
    assert response.status_code == 201, response.text
    return name


def test_servers_beyond_the_tenant_core_quota_are_refused_in_any_of_its_namespaces(
        cluster: Cluster) -> None:
    tenant = unique("q")
    onboard(cluster, tenant, cores=2)
    other = second_namespace(cluster, tenant)
    cluster.network_with_subnet(tenant)
    cluster.network_with_subnet(other)
    cluster.create(tenant, server("a", "net"))              # SCS-1V-2: one core each
    cluster.create(other, server("b", "net"))
    cluster.wait_ready("servers", tenant, "a")
    cluster.wait_ready("servers", other, "b")

    cluster.create(other, server("c", "net"))

    def refused() -> dict[str, str] | None:
        synced = condition(cluster.get("servers", other, "c"), "Synced")
        return synced if synced and synced["reason"] == "QuotaExceeded" else None
    synced = eventually(refused, 20, what="server c refused by the tenant's quota")
    assert f"tenant {tenant}" in synced["message"] and "cores" in synced["message"]
    assert "simulated" in synced["message"]

    cluster.delete("servers", tenant, "a")                  # room again: c is created
    cluster.wait_ready("servers", other, "c")


def test_a_namespace_outside_any_tenant_has_only_the_namespace_quota(cluster: Cluster) -> None:
    tenant = unique("q")
    onboard(cluster, tenant, cores=1)
    namespace = cluster.create_namespace("free")
    cluster.network_with_subnet(namespace)
    for name in ("a", "b"):
        cluster.create(namespace, server(name, "net"))
    for name in ("a", "b"):
        cluster.wait_ready("servers", namespace, name)
