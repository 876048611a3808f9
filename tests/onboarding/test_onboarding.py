"""Onboarding and IAM against the real Keystone, verified with openstacksdk directly.

Each test states one behaviour an operator or tenant admin relies on: a Tenant becomes a
domain, a project, domain managers, unified limits and a working application credential;
IAM objects reach Keystone and RBAC together; offboarding is guarded and complete; a Keystone
outage heals without duplicates; objects deleted in Keystone by hand come back on resync.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openstack
import pytest

from tests.keystone import KeystoneServer
from tests.onboarding.conftest import (
    IAAS,
    IAM,
    RBAC,
    TENANCY,
    Api,
    condition,
    eventually,
    unique,
)

pytestmark = pytest.mark.slow


# -- helpers -----------------------------------------------------------------------------------
def keystone_user(conn: Any, domain_id: str, name: str) -> Any:
    return conn.identity.find_user(name, domain_id=domain_id)


def roles_of(conn: Any, *, user_id: str = "", group_id: str = "", domain_id: str = "",
             project_id: str = "") -> set[str]:
    """Role names assigned directly to the subject on the scope."""
    query: dict[str, Any] = {"include_names": True}
    query.update({k: v for k, v in {"user_id": user_id, "group_id": group_id,
                                    "scope_domain_id": domain_id,
                                    "scope_project_id": project_id}.items() if v})
    return {a.role["name"] for a in conn.identity.role_assignments(**query)}


def limits_of(conn: Any, project_id: str) -> dict[str, int]:
    """Unified limits on the project as ``service-type:resource`` → limit."""
    types = {service.id: service.type for service in conn.identity.services()}
    response = conn.identity.get("/limits", params={"project_id": project_id})
    return {f"{types[item['service_id']]}:{item['resource_name']}": item["resource_limit"]
            for item in response.json()["limits"]}


def onboarded(api: Api, admins: list[str] | None = None, **spec: Any) -> tuple[str, dict]:
    name = unique("t")
    api.onboard(name, admins if admins is not None else [f"alice@{name}.example"], **spec)
    return name, api.wait_ready(name)


def iam_object(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "iam.scs.community/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def confirm(api: Api, name: str, **extra: str) -> None:
    api.patch(f"{TENANCY}/tenants/{name}", {"metadata": {"annotations": {
        "tenancy.scs.community/confirm-deletion": name, **extra}}})


# -- onboarding --------------------------------------------------------------------------------
def test_onboarding_creates_domain_project_managers_and_limits(api: Api, conn: Any) -> None:
    name, tenant = onboarded(api, quotas={"cores": 8, "ramMiB": 16384, "instances": 4,
                                          "namespaces": 3})

    status = tenant["status"]
    domain = conn.identity.find_domain(name)
    assert domain is not None and domain.id == status["domainID"]
    project = conn.identity.find_project(f"{name}-default", domain_id=domain.id)
    assert project is not None and project.id == status["projectID"]
    alice = keystone_user(conn, domain.id, f"alice@{name}.example")
    assert alice is not None
    assert "manager" in roles_of(conn, user_id=alice.id, domain_id=domain.id)
    assert limits_of(conn, project.id) == {"compute:cores": 8, "compute:ram_mib": 16384,
                                           "compute:instances": 4}
    for step in ("NamespaceReady", "DomainReady", "AdminsReady", "QuotasApplied",
                 "CredentialsReady"):
        assert (condition(tenant, step) or {}).get("status") == "True", step


def test_onboarding_creates_namespace_admin_binding_and_a_working_credential(
        api: Api, keystone: KeystoneServer) -> None:
    name, tenant = onboarded(api)

    namespace = api.get(f"/api/v1/namespaces/{name}")
    assert namespace is not None
    assert namespace["metadata"]["labels"]["tenancy.scs.community/tenant"] == name
    binding = eventually(lambda: api.get(f"{RBAC}/namespaces/{name}/rolebindings/"
                                         "scs:tenant-admins"), what="admin RoleBinding")
    assert binding["roleRef"]["name"] == "tenant-admin"
    assert [s["name"] for s in binding["subjects"]] == [f"alice@{name}.example"]

    cloud = api.clouds_yaml(name)["clouds"][name]
    assert cloud["auth_type"] == "v3applicationcredential"
    tenant_conn = openstack.connect(auth_type="v3applicationcredential", auth=cloud["auth"],
                                    region_name=keystone.region, load_yaml_config=False,
                                    load_envvars=False)
    try:
        assert tenant_conn.authorize()
        assert tenant_conn.current_project_id == tenant["status"]["projectID"]
    finally:
        tenant_conn.close()


# -- IAM ---------------------------------------------------------------------------------------
def test_iam_user_group_and_role_assignment_reach_keystone_and_rbac(api: Api,
                                                                     conn: Any) -> None:
    name, tenant = onboarded(api)
    domain_id, project_id = tenant["status"]["domainID"], tenant["status"]["projectID"]
    base = f"{IAM}/namespaces/{name}"
    api.create(f"{base}/users", iam_object("User", "bob", name, {
        "name": f"bob@{name}.example", "email": f"bob@{name}.example"}))
    api.create(f"{base}/groups", iam_object("Group", "devs", name, {"members": ["bob"]}))
    api.create(f"{base}/roleassignments", iam_object("RoleAssignment", "devs-member", name, {
        "subject": {"kind": "Group", "name": "devs"}, "role": "member", "scope": "tenant"}))
    api.create(f"{base}/roleassignments", iam_object("RoleAssignment", "bob-viewer", name, {
        "subject": {"kind": "User", "name": "bob"}, "role": "viewer"}))
    for path in ("users/bob", "groups/devs", "roleassignments/devs-member",
                 "roleassignments/bob-viewer"):
        api.wait_condition(f"{base}/{path}", "Ready")

    bob = keystone_user(conn, domain_id, f"bob@{name}.example")
    devs = conn.identity.find_group("devs", domain_id=domain_id)
    assert bob is not None and devs is not None
    assert [u.id for u in conn.identity.group_users(devs)] == [bob.id]
    assert roles_of(conn, group_id=devs.id, domain_id=domain_id) == {"member"}
    assert roles_of(conn, user_id=bob.id, project_id=project_id) == {"reader"}
    member = api.get(f"{RBAC}/namespaces/{name}/rolebindings/scs:iam:devs-member")
    viewer = api.get(f"{RBAC}/namespaces/{name}/rolebindings/scs:iam:bob-viewer")
    assert member and member["roleRef"]["name"] == "member"
    assert member["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"{name}:devs"},
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"bob@{name}.example"}]
    assert viewer and viewer["subjects"][0]["name"] == f"bob@{name}.example"

    api.delete(f"{base}/roleassignments/devs-member")
    eventually(lambda: not roles_of(conn, group_id=devs.id, domain_id=domain_id),
               what="Keystone assignment revoked")
    eventually(lambda: api.get(f"{RBAC}/namespaces/{name}/rolebindings/scs:iam:devs-member")
               is None, what="RoleBinding removed")


# -- offboarding -------------------------------------------------------------------------------
def test_offboarding_needs_confirmation_refuses_servers_then_removes_everything(
        api: Api, conn: Any) -> None:
    name, tenant = onboarded(api)
    path = f"{TENANCY}/tenants/{name}"
    api.create(f"{IAAS}/namespaces/{name}/servers", {
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Server",
        "metadata": {"name": "web"},
        "spec": {"flavor": "SCS-1V-2", "image": "ubuntu", "networks": [{"name": "net"}]}})

    api.delete(path)
    blocked = api.wait_condition(path, "DeletionBlocked")
    assert (condition(blocked, "DeletionBlocked") or {}).get("reason") == \
        "ConfirmationRequired"
    assert conn.identity.find_domain(name) is not None

    confirm(api, name)
    eventually(lambda: (condition(api.get(path), "DeletionBlocked") or {}).get("reason")
               == "ResourcesRemain", what="refusal while a Server exists")
    assert conn.identity.find_domain(name) is not None

    confirm(api, name, **{"tenancy.scs.community/cascade": "true"})
    eventually(lambda: api.get(path) is None, timeout=90, what="the Tenant to go")
    assert conn.identity.find_domain(name) is None
    assert conn.identity.find_project(tenant["status"]["projectID"]) is None
    eventually(lambda: api.get(f"/api/v1/namespaces/{name}") is None, what="namespace gone")


# -- faults and drift --------------------------------------------------------------------------
def test_keystone_outage_is_reported_and_heals_without_duplicates(
        api: Api, keystone: KeystoneServer, conn: Any) -> None:
    name = unique("t")
    keystone.stop()
    try:
        api.onboard(name, [f"alice@{name}.example"])
        stuck = api.wait_condition(f"{TENANCY}/tenants/{name}", "DomainReady", "False")
        assert (condition(stuck, "Ready") or {}).get("status") == "False"
        assert (condition(stuck, "NamespaceReady") or {}).get("status") == "True"
    finally:
        keystone.start()
    api.wait_ready(name, timeout=120)

    conn = keystone.connection(keystone.system_auth)
    domains = [d for d in conn.identity.domains() if d.name == name]
    assert len(domains) == 1
    users = [u for u in conn.identity.users(domain_id=domains[0].id)
             if u.name == f"alice@{name}.example"]
    assert len(users) == 1
    conn.close()


def test_central_api_restart_mid_onboarding_converges_without_duplicates(
        api: Api, conn: Any) -> None:
    name = unique("t")
    api.onboard(name, [f"alice@{name}.example"])
    api.server.kill()
    api.start()
    api.wait_ready(name)
    domains = [d for d in conn.identity.domains() if d.name == name]
    assert len(domains) == 1
    assert len([p for p in conn.identity.projects(domain_id=domains[0].id)]) == 1


def test_user_deleted_in_keystone_by_hand_is_recreated_on_resync(api: Api,
                                                                  conn: Any) -> None:
    name, tenant = onboarded(api)
    domain_id = tenant["status"]["domainID"]
    alice = keystone_user(conn, domain_id, f"alice@{name}.example")
    conn.identity.delete_user(alice)

    def recreated() -> Any:
        found = keystone_user(conn, domain_id, f"alice@{name}.example")
        return found if found is not None and found.id != alice.id else None

    again = eventually(recreated, timeout=60, what="alice recreated by the resync")
    eventually(lambda: "manager" in roles_of(conn, user_id=again.id, domain_id=domain_id),
               timeout=60, what="manager role back")


def test_separate_scs_controllers_process_onboards_through_the_public_api(
        keystone: KeystoneServer, conn: Any, tmp_path: Path) -> None:
    """``controllers: external``: the server only serves; ``scs controllers`` with the same
    identity configuration onboards the tenant through the public API."""
    external = Api(keystone, tmp_path, controllers="external").start()
    log = (tmp_path / "controllers.log").open("wb")
    proc = None
    try:
        name = unique("t")
        external.onboard(name, [f"alice@{name}.example"])
        time.sleep(2)
        assert condition(external.tenant(name), "Ready") is None, "the server reconciled"
        proc = subprocess.Popen(
            [sys.executable, "-m", "central_api.cli", "controllers", "--kubeconfig",
             str(external.server.kubeconfig), "--config", str(external.config_file),
             "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
        tenant = external.wait_ready(name)
        domain = conn.identity.get_domain(tenant["status"]["domainID"])
        assert domain.name == name
        assert external.clouds_yaml(name)["clouds"], "the credentials Secret is written"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        log.close()
        external.close()


def test_scs_tenant_onboard_follows_the_steps_until_ready(api: Api, conn: Any) -> None:
    name = unique("t")
    done = subprocess.run(
        [sys.executable, "-m", "central_api.cli", "tenant", "onboard", name,
         "--display-name", f"Customer {name}", "--admin", f"alice@{name}.example",
         "--contact", "", "--quota", "cores=4", "--timeout", "120",
         "--kubeconfig", str(api.server.kubeconfig)],
        capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"tenant {name} created" in done.stdout
    for step in ("DomainReady", "AdminsReady", "QuotasApplied", "CredentialsReady"):
        assert step in done.stdout
    tenant = api.tenant(name)
    assert tenant is not None
    assert conn.identity.get_domain(tenant["status"]["domainID"]).name == name
    shown = subprocess.run(
        [sys.executable, "-m", "central_api.cli", "tenant", "show", name,
         "--kubeconfig", str(api.server.kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and tenant["status"]["domainID"] in shown.stdout


def test_federated_tenant_maps_its_idp_into_keystone_and_its_admins_into_rbac(
        api: Api, conn: Any) -> None:
    name = unique("t")
    issuer = f"https://login.{name}.example/realms/{name}"
    tenant = api.onboard(name, ["alice"], federation={
        "issuerURL": issuer, "clientID": "scs", "claimMappings": {"username": "sub"}})
    tenant = api.wait_ready(name)
    domain_id = tenant["status"]["domainID"]
    idp = conn.identity.get_identity_provider(name)
    assert idp.remote_ids == [issuer] and idp.domain_id == domain_id
    rules = conn.identity.get_mapping(f"{name}-openid").rules
    assert rules[0]["remote"] == [{"type": "OIDC-sub", "any_one_of": ["alice"]}]
    admins = conn.identity.find_group("tenant-admins", domain_id=domain_id)
    assert admins is not None and roles_of(conn, group_id=admins.id,
                                           domain_id=domain_id) == {"manager"}
    # the same admin in the Central API: the tenant IdP's user, in the tenant's prefix
    binding = eventually(lambda: api.get(f"{RBAC}/namespaces/{name}/rolebindings/"
                                         "scs:tenant-admins"), what="tenant-admin binding")
    assert [s["name"] for s in binding["subjects"]] == [f"{name}:alice"]

    # a second IdP, registered by the tenant as an IAM object
    corp = f"https://corp.{name}.example"
    api.create(f"{IAM}/namespaces/{name}/identityproviders",
               iam_object("IdentityProvider", "corp", name, {"issuerURL": corp,
                                                             "clientID": "scs"}))
    api.wait_condition(f"{IAM}/namespaces/{name}/identityproviders/corp", "Ready")
    assert conn.identity.get_identity_provider(f"{name}-corp").remote_ids == [corp]
