"""Onboarding and IAM against each identity backend, verified through its own view.

Each test runs against the real Keystone (checked with openstacksdk) and the sandbox identity
(checked in its records), and states one behaviour an operator or tenant admin relies on: a
Tenant becomes a domain, a project, domain managers, limits and a working application
credential; IAM objects reach the backend and RBAC together; offboarding is guarded and
complete; a backend outage heals without duplicates; objects deleted behind the API's back
come back on resync.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.onboarding.conftest import (
    IAAS,
    IAM,
    RBAC,
    TENANCY,
    Api,
    condition,
    eventually,
    identity_view,
    unique,
)

pytestmark = pytest.mark.slow


# -- helpers -----------------------------------------------------------------------------------
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
def test_onboarding_creates_domain_project_managers_and_limits(api: Api) -> None:
    name, tenant = onboarded(api, quotas={"cores": 8, "ramMiB": 16384, "instances": 4,
                                          "namespaces": 3})

    status, view = tenant["status"], api.view
    assert status["identity"] == view.label
    assert view.domains_named(name) == [status["domainID"]]
    assert view.projects_in(status["domainID"]) == {f"{name}-default": status["projectID"]}
    alice = view.user_id(status["domainID"], f"alice@{name}.example")
    assert alice is not None
    assert "manager" in view.roles_of(user_id=alice, domain_id=status["domainID"])
    assert view.limits_of(status["projectID"]) == {
        "compute:cores": 8, "compute:ram_mib": 16384, "compute:instances": 4}
    for step in ("NamespaceReady", "DomainReady", "AdminsReady", "QuotasApplied",
                 "CredentialsReady"):
        assert (condition(tenant, step) or {}).get("status") == "True", step


def test_onboarding_creates_namespace_admin_binding_and_a_working_credential(
        api: Api) -> None:
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
    assert api.view.credential_works(cloud["auth"], tenant["status"]["projectID"])


# -- IAM ---------------------------------------------------------------------------------------
def test_iam_user_group_and_role_assignment_reach_the_backend_and_rbac(api: Api) -> None:
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

    view = api.view
    bob = view.user_id(domain_id, f"bob@{name}.example")
    devs = view.group(domain_id, "devs")
    assert bob is not None and devs is not None
    assert devs[1] == [bob]
    assert view.roles_of(group_id=devs[0], domain_id=domain_id) == {"member"}
    assert view.roles_of(user_id=bob, project_id=project_id) == {"reader"}
    member = api.get(f"{RBAC}/namespaces/{name}/rolebindings/scs:iam:devs-member")
    viewer = api.get(f"{RBAC}/namespaces/{name}/rolebindings/scs:iam:bob-viewer")
    assert member and member["roleRef"]["name"] == "member"
    assert member["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"{name}:devs"},
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"bob@{name}.example"}]
    assert viewer and viewer["subjects"][0]["name"] == f"bob@{name}.example"

    api.delete(f"{base}/roleassignments/devs-member")
    eventually(lambda: not view.roles_of(group_id=devs[0], domain_id=domain_id),
               what="backend assignment revoked")
    eventually(lambda: api.get(f"{RBAC}/namespaces/{name}/rolebindings/scs:iam:devs-member")
               is None, what="RoleBinding removed")


# -- offboarding -------------------------------------------------------------------------------
def test_offboarding_needs_confirmation_refuses_servers_then_removes_everything(
        api: Api) -> None:
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
    assert api.view.domains_named(name)

    confirm(api, name)
    eventually(lambda: (condition(api.get(path), "DeletionBlocked") or {}).get("reason")
               == "ResourcesRemain", what="refusal while a Server exists")
    assert api.view.domains_named(name)

    confirm(api, name, **{"tenancy.scs.community/cascade": "true"})
    eventually(lambda: api.get(path) is None, timeout=90, what="the Tenant to go")
    assert api.view.domains_named(name) == []
    assert not api.view.project_exists(tenant["status"]["projectID"])
    eventually(lambda: api.get(f"/api/v1/namespaces/{name}") is None, what="namespace gone")


# -- faults and drift --------------------------------------------------------------------------
def test_backend_outage_is_reported_and_heals_without_duplicates(api: Api) -> None:
    name = unique("t")
    api.view.break_backend()
    try:
        api.onboard(name, [f"alice@{name}.example"])
        stuck = api.wait_condition(f"{TENANCY}/tenants/{name}", "DomainReady", "False")
        assert (condition(stuck, "Ready") or {}).get("status") == "False"
        assert (condition(stuck, "NamespaceReady") or {}).get("status") == "True"
    finally:
        api.view.heal_backend()
    api.wait_ready(name, timeout=120)

    domains = api.view.domains_named(name)
    assert len(domains) == 1
    assert api.view.users_named(domains[0], f"alice@{name}.example") == 1


def test_central_api_restart_mid_onboarding_converges_without_duplicates(api: Api) -> None:
    name = unique("t")
    api.onboard(name, [f"alice@{name}.example"])
    api.server.kill()
    api.start()
    api.wait_ready(name)
    domains = api.view.domains_named(name)
    assert len(domains) == 1
    assert len(api.view.projects_in(domains[0])) == 1


def test_user_deleted_in_the_backend_by_hand_is_recreated_on_resync(api: Api) -> None:
    name, tenant = onboarded(api)
    domain_id, view = tenant["status"]["domainID"], api.view
    alice = view.user_id(domain_id, f"alice@{name}.example")
    assert alice is not None
    view.delete_user(alice)

    def recreated() -> str | None:
        found = view.user_id(domain_id, f"alice@{name}.example")
        return found if found is not None and found != alice else None

    again = eventually(recreated, timeout=60, what="alice recreated by the resync")
    eventually(lambda: "manager" in view.roles_of(user_id=again, domain_id=domain_id),
               timeout=60, what="manager role back")


def test_separate_scs_controllers_process_onboards_through_the_public_api(
        api: Api, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """``controllers: external``: the server only serves; ``scs controllers`` with the same
    identity configuration onboards the tenant through the public API."""
    view = identity_view(api.view.name, request, tmp_path)
    external = Api(view, tmp_path, controllers="external").start()
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
        assert view.domains_named(name) == [tenant["status"]["domainID"]]
        assert external.clouds_yaml(name)["clouds"], "the credentials Secret is written"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        log.close()
        external.close()


def test_scs_tenant_onboard_follows_the_steps_until_ready(api: Api) -> None:
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
    assert api.view.domains_named(name) == [tenant["status"]["domainID"]]
    shown = subprocess.run(
        [sys.executable, "-m", "central_api.cli", "tenant", "show", name,
         "--kubeconfig", str(api.server.kubeconfig)],
        capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and tenant["status"]["domainID"] in shown.stdout
    assert ("SIMULATED" in shown.stdout) == (api.view.name == "sandbox")


def test_federated_tenant_maps_its_idp_into_the_backend_and_its_admins_into_rbac(
        api: Api) -> None:
    name = unique("t")
    issuer = f"https://login.{name}.example/realms/{name}"
    tenant = api.onboard(name, ["alice"], federation={
        "issuerURL": issuer, "clientID": "scs", "claimMappings": {"username": "sub"}})
    tenant = api.wait_ready(name)
    domain_id = tenant["status"]["domainID"]
    view = api.view
    remote_ids, idp_domain, rules = view.federation(name)
    assert remote_ids == [issuer] and idp_domain == domain_id
    assert rules[0]["remote"] == [{"type": "OIDC-sub", "any_one_of": ["alice"]}]
    admins = view.group(domain_id, "tenant-admins")
    assert admins is not None and view.roles_of(group_id=admins[0],
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
    assert view.federation(f"{name}-corp")[0] == [corp]
