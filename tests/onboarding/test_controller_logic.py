"""The onboarding and IAM reconcilers' own logic, in-process on a real store and registry.

The identity backend here is the in-memory double (``memory_identity.py``), so these tests
pin down what the controllers decide — steps, conditions, idempotency, the offboarding
safeguards, RoleBindings — in milliseconds. Keystone's real behaviour is tested in
``test_keystone.py``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from central_api.controllers.client import Kind, LocalClient
from central_api.controllers.iam import (
    GROUPS,
    ROLE_ASSIGNMENTS,
    ROLEBINDINGS,
    USERS,
    iam_reconcilers,
)
from central_api.controllers.runtime import finalize_once, reconcile_once
from central_api.controllers.tenants import (
    CASCADE,
    CONFIRM,
    NAMESPACES,
    SECRETS,
    SERVERS,
    TENANTS,
    TenantReconciler,
)
from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.providers.identity import RoleGrant
from central_api.registry.resources import Resources
from central_api.store import open_store
from tests.onboarding.memory_identity import MemoryIdentity

IAM = "iam.scs.community/v1alpha1"


class Env:
    def __init__(self, path: Path) -> None:
        self.store = open_store(f"sqlite:///{path / 'state.db'}")
        self.resources = Resources(self.store, Catalog(builtin_kinds()))
        self.client = LocalClient(self.resources, hub=None)  # type: ignore[arg-type]
        self.identity = MemoryIdentity()
        self.tenants = TenantReconciler(self.client, self.identity, "RegionOne")
        self.iam = {r.kind.plural: r for r in iam_reconcilers(self.client, self.identity)}

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any]:
        found = self.run(self.client.get(kind, namespace, name))
        assert found is not None, f"{kind.plural} {namespace}/{name} missing"
        return dict(found)

    def onboard(self, name: str = "acme", **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
                "metadata": {"name": name},
                "spec": {"displayName": "ACME", "admins": ["alice@acme.example"], **spec}}
        self.run(self.client.create(TENANTS, body))
        self.run(reconcile_once(self.client, self.tenants, self.get(TENANTS, "", name)))
        return self.get(TENANTS, "", name)

    def reconcile_iam(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        reconciler = self.iam[plural]
        stored = self.get(reconciler.kind, namespace, name)
        self.run(reconcile_once(self.client, reconciler, stored))
        return self.get(reconciler.kind, namespace, name)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    created = Env(tmp_path)
    yield created
    created.store.close()


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj["status"]["conditions"]}


def test_onboarding_reports_each_step_and_creates_everything(env: Env) -> None:
    tenant = env.onboard(quotas={"cores": 8, "ramMiB": 16384, "namespaces": 3})

    assert conditions(tenant) == {"NamespaceReady": "True", "DomainReady": "True",
                                  "AdminsReady": "True", "QuotasApplied": "True",
                                  "CredentialsReady": "True", "Ready": "True"}
    status = tenant["status"]
    assert status["domainID"] in env.identity.domains
    assert env.identity.projects[status["projectID"]].name == "acme-default"
    assert status["namespaces"] == ["acme"]
    ns = env.get(NAMESPACES, "", "acme")
    assert ns["metadata"]["labels"]["tenancy.scs.community/tenant"] == "acme"
    alice = next(u for u in env.identity.users.values() if u.name == "alice@acme.example")
    assert RoleGrant("manager", user_id=alice.id, domain_id=status["domainID"]) \
        in env.identity.assignments
    assert env.identity.limits_by_project[status["projectID"]] == {
        "compute:cores": 8, "compute:ram_mib": 16384}
    clouds = yaml.safe_load(base64.b64decode(
        env.get(SECRETS, "acme", "openstack-credentials")["data"]["clouds.yaml"]))
    auth = clouds["clouds"]["acme"]["auth"]
    assert auth["application_credential_secret"].startswith("secret-")
    assert clouds["clouds"]["acme"]["auth_type"] == "v3applicationcredential"


def test_reconciling_again_creates_no_duplicates_and_keeps_the_credential(env: Env) -> None:
    tenant = env.onboard()
    secret = env.get(SECRETS, "acme", "openstack-credentials")
    counts = (len(env.identity.domains), len(env.identity.users), len(env.identity.projects))

    env.run(reconcile_once(env.client, env.tenants, tenant))
    env.run(reconcile_once(env.client, env.tenants, env.get(TENANTS, "", "acme")))

    assert (len(env.identity.domains), len(env.identity.users),
            len(env.identity.projects)) == counts
    assert env.get(SECRETS, "acme", "openstack-credentials")["data"] == secret["data"]


def test_a_lost_credentials_secret_is_replaced_by_a_new_credential(env: Env) -> None:
    env.onboard()
    old = env.get(SECRETS, "acme", "openstack-credentials")
    env.run(env.client.delete(SECRETS, "acme", "openstack-credentials"))

    env.run(reconcile_once(env.client, env.tenants, env.get(TENANTS, "", "acme")))

    new = env.get(SECRETS, "acme", "openstack-credentials")
    assert new["data"] != old["data"]
    assert len(env.identity.credentials) == 1


def test_backend_down_is_a_condition_and_the_next_pass_converges(env: Env) -> None:
    env.identity.down = True
    with pytest.raises(Exception, match="unreachable"):
        env.onboard()
    tenant = env.get(TENANTS, "", "acme")
    found = conditions(tenant)
    assert found["NamespaceReady"] == "True" and found["DomainReady"] == "False"
    assert found["Ready"] == "False"
    reason = next(c for c in tenant["status"]["conditions"] if c["type"] == "DomainReady")
    assert reason["reason"] == "BackendUnavailable" and "unreachable" in reason["message"]

    env.identity.down = False
    env.run(reconcile_once(env.client, env.tenants, tenant))
    assert conditions(env.get(TENANTS, "", "acme"))["Ready"] == "True"
    assert len(env.identity.domains) == 1


def test_removed_admin_loses_the_manager_role(env: Env) -> None:
    tenant = env.onboard(admins=["alice@acme.example", "bob@acme.example"])
    tenant["spec"]["admins"] = ["alice@acme.example"]
    env.run(reconcile_once(env.client, env.tenants, env.run(env.client.update(TENANTS, tenant))))

    managers = {env.identity.users[g.user_id].name for g in env.identity.assignments
                if g.role == "manager" and g.user_id}
    assert managers == {"alice@acme.example"}


def test_federation_maps_admins_into_a_manager_group(env: Env) -> None:
    tenant = env.onboard(federation={"issuerURL": "https://idp.acme.example",
                                     "clientID": "scs"})
    domain_id = tenant["status"]["domainID"]
    group = next(g for g in env.identity.groups.values() if g.name == "tenant-admins")
    assert RoleGrant("manager", group_id=group.id, domain_id=domain_id) \
        in env.identity.assignments
    assert env.identity.federations["acme"][1] == "https://idp.acme.example"
    assert not any(u.name == "alice@acme.example" for u in env.identity.users.values())


def _delete(env: Env, annotations: dict[str, str] | None = None) -> bool:
    tenant = env.get(TENANTS, "", "acme")
    if annotations:
        tenant["metadata"]["annotations"] = annotations
        tenant = env.run(env.client.update(TENANTS, tenant))
    return bool(env.run(finalize_once(env.client, env.tenants, tenant)))


def test_offboarding_needs_the_confirmation_annotation(env: Env) -> None:
    env.onboard()
    assert _delete(env) is False
    blocked = next(c for c in env.get(TENANTS, "", "acme")["status"]["conditions"]
                   if c["type"] == "DeletionBlocked")
    assert blocked["reason"] == "ConfirmationRequired" and CONFIRM in blocked["message"]
    assert env.identity.domains, "nothing may be removed without confirmation"


def test_offboarding_refuses_while_servers_exist_unless_cascade(env: Env) -> None:
    env.onboard()
    env.run(env.client.create(SERVERS, {
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Server",
        "metadata": {"name": "web", "namespace": "acme"},
        "spec": {"flavor": "SCS-1V-2", "image": "ubuntu", "networks": [{"name": "n"}]}}))

    assert _delete(env, {CONFIRM: "acme"}) is False
    blocked = next(c for c in env.get(TENANTS, "", "acme")["status"]["conditions"]
                   if c["type"] == "DeletionBlocked")
    assert blocked["reason"] == "ResourcesRemain" and "1 servers in acme" in blocked["message"]
    assert env.identity.domains

    assert _delete(env, {CONFIRM: "acme", CASCADE: "true"}) is False
    assert env.run(env.client.get(SERVERS, "acme", "web")) is None


def test_offboarding_deletes_other_iaas_objects_before_the_project(env: Env) -> None:
    env.onboard()
    networks = Kind("iaas.scs.community", "v1alpha1", "networks")
    env.run(env.client.create(networks, {
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Network",
        "metadata": {"name": "private", "namespace": "acme"}, "spec": {}}))

    assert _delete(env, {CONFIRM: "acme"}) is False
    progress = next(c for c in env.get(TENANTS, "", "acme")["status"]["conditions"]
                    if c["type"] == "DeletionBlocked")
    assert progress["reason"] == "DeletingResources" and "networks" in progress["message"]
    assert env.run(env.client.get(networks, "acme", "private")) is None
    assert env.identity.projects, "the project (and its credentials) wait for the networks"
    assert env.run(env.client.get(SECRETS, "acme", "openstack-credentials")) is not None


def test_confirmed_offboarding_removes_the_backend_then_the_namespaces(env: Env) -> None:
    env.onboard()
    _delete(env, {CONFIRM: "acme"})
    assert env.identity.domains == {} and env.identity.projects == {}
    assert env.run(env.client.get(SECRETS, "acme", "openstack-credentials")) is None
    ns = env.run(env.client.get(NAMESPACES, "", "acme"))
    assert ns is None or ns["metadata"].get("deletionTimestamp")


def _iam(env: Env, kind: str, name: str, spec: dict[str, Any]) -> None:
    plural = {"User": USERS, "Group": GROUPS, "RoleAssignment": ROLE_ASSIGNMENTS}[kind]
    env.run(env.client.create(plural, {"apiVersion": IAM, "kind": kind,
                                       "metadata": {"name": name, "namespace": "acme"},
                                       "spec": spec}))


def test_iam_objects_wait_for_their_tenant(env: Env) -> None:
    env.run(env.client.create(NAMESPACES, {"metadata": {"name": "acme", "labels": {
        "tenancy.scs.community/tenant": "acme"}}}))
    _iam(env, "User", "bob", {"name": "bob@acme.example"})
    user = env.reconcile_iam("users", "acme", "bob")
    assert conditions(user)["TenantReady"] == "False"


def test_user_group_and_tenant_wide_assignment_reach_keystone_and_rbac(env: Env) -> None:
    tenant = env.onboard()
    env.run(env.client.create(NAMESPACES, {"metadata": {"name": "acme-dev", "labels": {
        "tenancy.scs.community/tenant": "acme"}}}))
    _iam(env, "User", "bob", {"name": "bob@acme.example", "email": "bob@acme.example"})
    _iam(env, "Group", "devs", {"members": ["bob"]})
    _iam(env, "RoleAssignment", "devs-member", {"subject": {"kind": "Group", "name": "devs"},
                                                "role": "member", "scope": "tenant"})
    _iam(env, "RoleAssignment", "bob-viewer", {"subject": {"kind": "User", "name": "bob"},
                                               "role": "viewer"})
    user = env.reconcile_iam("users", "acme", "bob")
    group = env.reconcile_iam("groups", "acme", "devs")
    tenant_wide = env.reconcile_iam("roleassignments", "acme", "devs-member")
    local = env.reconcile_iam("roleassignments", "acme", "bob-viewer")

    assert conditions(tenant_wide)["Ready"] == "True", tenant_wide["status"]
    assert env.identity.groups[group["status"]["keystoneID"]].members == \
        (user["status"]["keystoneID"],)
    assert RoleGrant("member", group_id=group["status"]["keystoneID"],
                     domain_id=tenant["status"]["domainID"]) in env.identity.assignments
    assert RoleGrant("reader", user_id=user["status"]["keystoneID"],
                     project_id=tenant["status"]["projectID"]) in env.identity.assignments
    assert tenant_wide["status"]["bindings"] == ["acme", "acme-dev"]
    assert local["status"]["bindings"] == ["acme"]
    binding = env.get(ROLEBINDINGS, "acme-dev", "scs:iam:acme.devs-member")
    assert binding["roleRef"]["name"] == "member"
    # the tenant IdP's group (prefixed: no other tenant's IdP can assert it) and the members
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "acme:devs"},
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob@acme.example"}]
    assert env.get(ROLEBINDINGS, "acme", "scs:iam:bob-viewer")["subjects"][0]["name"] == \
        "bob@acme.example"

    env.run(finalize_once(env.client, env.iam["roleassignments"], tenant_wide))
    assert env.run(env.client.get(ROLEBINDINGS, "acme-dev", "scs:iam:acme.devs-member")) \
        is None
    assert not any(g.group_id for g in env.identity.assignments if g.role == "member")
