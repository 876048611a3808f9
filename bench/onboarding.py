"""Benchmark 6 (issue 5): onboard N tenants through the Central API against a real Keystone.

What is measured: N ``Tenant`` objects are created at once and the clock stops when the last
one is Ready — domain, default project, admin user with ``manager`` on the domain, unified
limits, service user with ``member`` and an application credential, namespace and RBAC.

Baseline, in the same run and against the same Keystone: the *minimum* Keystone API calls
for the same Keystone objects, sent one after another over one keep-alive connection with
one admin token — no lookups, no idempotency checks, no retries. The ratio says what the
Central API's declarative, crash-safe reconciliation costs over a hand-written script.
Keystone itself (one uwsgi process on SQLite, as the tests run it) serialises requests, so
both sides are bound by it; the Keystone request counts are reported side by side.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import httpx

from tests.keystone import KeystoneServer, ensure_services

from .common import Conn, connect, start_server, stop_server, summary

TENANTS = "/apis/tenancy.scs.community/v1alpha1/tenants"
QUOTAS = {"cores": 16, "ramMiB": 32768, "instances": 8}
LIMITS = {"cores": 16, "ram_mib": 32768, "instances": 8}  # the same, as Keystone resources


def bench_onboarding(tenants: int, report: Any, work: Path) -> None:
    keystone = KeystoneServer(data_dir=work / "keystone").start()
    try:
        services = _registered_limits(keystone)
        central = _central_api(keystone, tenants, work)
        calls_central = _requests(keystone)
        baseline = _baseline(keystone, tenants, services["compute"])
        calls_baseline = _requests(keystone) - calls_central
    finally:
        keystone.cleanup()
    per_tenant = central["seconds"] / tenants
    per_tenant_base = baseline["seconds"] / tenants
    report.details["onboarding"] = {"tenants": tenants, "central_api": central,
                                    "baseline": baseline,
                                    "keystone_requests": {"central_api": calls_central,
                                                          "baseline": calls_baseline}}
    report.add("onboarding", f"{tenants} tenants to Ready, s", round(central["seconds"], 1),
               round(baseline["seconds"], 1), round(central["seconds"] / baseline["seconds"],
                                                    2))
    report.add("onboarding", "seconds per tenant", round(per_tenant, 2),
               round(per_tenant_base, 2))
    report.add("onboarding", "time to Ready p50 / p99 s",
               f"{central['ready']['p50_ms'] / 1000:.1f} / "
               f"{central['ready']['p99_ms'] / 1000:.1f}")
    report.add("onboarding", "Keystone requests per tenant", round(calls_central / tenants, 1),
               round(calls_baseline / tenants, 1),
               round(calls_central / calls_baseline, 2) if calls_baseline else "")


def _requests(keystone: KeystoneServer) -> int:
    """Requests Keystone answered so far (one line each in uwsgi's request log)."""
    return sum(1 for line in keystone.uwsgi_log.read_text(errors="replace").splitlines()
               if " => generated " in line)


def _registered_limits(keystone: KeystoneServer) -> dict[str, str]:
    """Setup for both sides, not timed: catalog services and registered limits exist in a
    real cloud before any tenant is onboarded."""
    conn = keystone.connection(keystone.system_auth)
    try:
        services = ensure_services(conn, keystone.region)
        for resource in LIMITS:
            conn.identity.create_registered_limit(
                service_id=services["compute"], resource_name=resource,
                region_id=keystone.region, default_limit=0)
        return services
    finally:
        conn.close()


# -- the Central API -------------------------------------------------------------------------
def _central_api(keystone: KeystoneServer, tenants: int, work: Path) -> dict[str, Any]:
    config = (f"services: [tenancy, iam]\nresyncSeconds: 600\n"
              f"identity: {{type: keystone, authURL: '{keystone.auth_url}', username: admin, "
              f"password: '{keystone.admin_password}', systemScope: true, "
              f"region: {keystone.region}}}\n")
    server = start_server(data_dir=work / "scs", config=config)
    try:
        return asyncio.run(_onboard_all(server, tenants))
    finally:
        stop_server(server)


async def _onboard_all(server: Any, tenants: int) -> dict[str, Any]:
    conn: Conn = await connect(server)
    names = [f"bench-{i:04d}-{secrets.token_hex(2)}" for i in range(tenants)]
    began = time.monotonic()
    for name in names:
        await conn.json("POST", TENANTS, {
            "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {"displayName": f"Benchmark {name}", "admins": [f"admin@{name}.example"],
                     "quotas": QUOTAS}})
    ready: dict[str, float] = {}
    deadline = began + 60 + 30 * tenants
    while len(ready) < tenants:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ready)} of {tenants} tenants Ready in time")
        listing = await conn.json("GET", TENANTS)
        now = time.monotonic()
        for item in listing["items"]:
            conditions = (item.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                ready.setdefault(item["metadata"]["name"], now)
        await asyncio.sleep(0.5)
    conn.close()
    return {"seconds": max(ready.values()) - began,
            "ready": summary([at - began for at in ready.values()])}


# -- the baseline: the minimum Keystone calls, one after another -----------------------------
def _baseline(keystone: KeystoneServer, tenants: int, compute: str) -> dict[str, Any]:
    with httpx.Client(base_url=keystone.auth_url.rstrip("/"), timeout=60) as http:
        token = _token(http, {"password": {"user": {
            "name": "admin", "domain": {"name": "Default"},
            "password": keystone.admin_password}}}, {"system": {"all": True}})
        admin = {"X-Auth-Token": token}
        roles = {r["name"]: r["id"] for r in http.get("/roles", headers=admin).json()["roles"]}
        began = time.monotonic()
        for i in range(tenants):
            _onboard_directly(http, admin, roles, compute, keystone.region,
                              f"base-{i:04d}-{secrets.token_hex(2)}")
        return {"seconds": time.monotonic() - began}


def _onboard_directly(http: httpx.Client, admin: dict[str, str], roles: dict[str, str],
                      compute: str, region: str, name: str) -> None:
    def post(path: str, body: dict[str, Any], headers: dict[str, str] = admin) -> Any:
        response = http.post(path, json=body, headers=headers)
        response.raise_for_status()
        return response.json()

    def put(path: str) -> None:
        http.put(path, headers=admin).raise_for_status()

    domain = post("/domains", {"domain": {"name": name}})["domain"]["id"]
    project = post("/projects", {"project": {"name": f"{name}-default",
                                             "domain_id": domain}})["project"]["id"]
    user = post("/users", {"user": {"name": f"admin@{name}.example",
                                    "domain_id": domain}})["user"]["id"]
    put(f"/domains/{domain}/users/{user}/roles/{roles['manager']}")
    post("/limits", {"limits": [{"project_id": project, "service_id": compute,
                                 "region_id": region, "resource_name": resource,
                                 "resource_limit": value}
                                for resource, value in LIMITS.items()]})
    password = secrets.token_urlsafe(24)
    service_user = post("/users", {"user": {"name": "scs-provider", "domain_id": domain,
                                            "password": password}})["user"]["id"]
    put(f"/projects/{project}/users/{service_user}/roles/{roles['member']}")
    as_user = _token(http, {"password": {"user": {"id": service_user, "password": password}}},
                     {"project": {"id": project}})
    post(f"/users/{service_user}/application_credentials",
         {"application_credential": {"name": "scs-central-api"}},
         headers={"X-Auth-Token": as_user})


def _token(http: httpx.Client, identity: dict[str, Any], scope: dict[str, Any]) -> str:
    response = http.post("/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], **identity}, "scope": scope}})
    response.raise_for_status()
    return response.headers["X-Subject-Token"]
