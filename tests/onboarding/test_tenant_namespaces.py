"""A Tenant's ``status.namespaces`` follows its namespaces as they come and go, without
waiting for the tenant's resync (the console's namespace switcher and usage page read it).

The resync is set to ten minutes here, so only the controller's watch of namespaces can
make the status change within the test's timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.onboarding.conftest import TENANCY, condition, eventually, unique
from tests.server import ScsServer

pytestmark = pytest.mark.slow
TENANT_LABEL = "tenancy.scs.community/tenant"


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    config = tmp_path_factory.mktemp("tenant-ns") / "config.yaml"
    config.write_text(yaml.safe_dump({
        "services": ["tenancy", "iaas", "iam"], "providers": {"iaas": {"type": "none"}},
        "identity": {"type": "sandbox", "resyncSeconds": 600}}))
    server = ScsServer(extra_args=["--config", str(config)])
    try:
        server.start()
        with httpx.Client(base_url=server.url, verify=str(server.ca_file), timeout=30,
                          headers={"Authorization": f"Bearer {server.token}"}) as client:
            yield client
    finally:
        server.cleanup()


def tenant_namespaces(admin: httpx.Client, tenant: str) -> list[str]:
    found: dict[str, Any] = admin.get(f"{TENANCY}/tenants/{tenant}").json()
    return list((found.get("status") or {}).get("namespaces") or [])


def test_namespaces_joining_and_leaving_show_in_the_status(admin: httpx.Client) -> None:
    tenant = unique("t")
    created = admin.post(f"{TENANCY}/tenants", json={
        "metadata": {"name": tenant}, "spec": {"displayName": "Customer", "admins": []}})
    assert created.status_code == 201, created.text

    def ready() -> bool | None:
        current = admin.get(f"{TENANCY}/tenants/{tenant}").json()
        found = condition(current, "Ready")
        return True if found and found["status"] == "True" else None

    eventually(ready, timeout=60, what="tenant Ready")
    assert tenant_namespaces(admin, tenant) == [tenant]

    extra = f"{tenant}-dev"
    made = admin.post("/api/v1/namespaces", json={
        "metadata": {"name": extra, "labels": {TENANT_LABEL: tenant}}})
    assert made.status_code == 201, made.text
    eventually(lambda: tenant_namespaces(admin, tenant) == sorted([tenant, extra]) or None,
               timeout=30, what="the new namespace in the tenant's status")

    assert admin.delete(f"/api/v1/namespaces/{extra}").status_code in (200, 202)
    eventually(lambda: tenant_namespaces(admin, tenant) == [tenant] or None,
               timeout=30, what="the deleted namespace gone from the tenant's status")
