"""The SCS domain manager from Terraform (issue 18, item 5): a tenant's admin — a
ServiceAccount holding ``tenant-admin`` in the tenant's namespace, no cloud-admin right —
manages the tenant's Users, Groups and RoleAssignments with the real terraform binary
(create, update, import, destroy), and the same configuration aimed at another tenant's
namespace, or at a cluster-scoped kind it may not manage, fails with a diagnostic naming
the refusal (403) and changes nothing, as the cloud admin's client sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from central_api.client import Client
from central_api.kinds.iam import Group, RoleAssignment, User
from central_api.kinds.rbac import ClusterRoleBinding, RoleBinding
from central_api.kinds.tenancy import Tenant
from tests.integration.conftest import unique
from tests.server import ScsServer
from tests.terraform.conftest import WorkspaceFactory
from tests.terraform.harness import provider_block
from tests.terraform.scenario import onboard, tenant_admin_kubeconfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tenants(admin: Client) -> tuple[str, str]:
    """(ours, theirs): two onboarded tenants."""
    return onboard(admin, unique("tf-acme")), onboard(admin, unique("tf-globex"))


@pytest.fixture(scope="module")
def manager(admin: Client, scs_server: ScsServer, tenants: tuple[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The kubeconfig and user name of our tenant's admin."""
    path, _ = tenant_admin_kubeconfig(admin, scs_server, tenants[0],
                                      tmp_path_factory.mktemp("manager") / "kubeconfig")
    accounts = [s.name for b in admin.list(RoleBinding, tenants[0]).items
                if b.roleRef.name == "tenant-admin" for s in b.subjects or []
                if s.kind == "ServiceAccount"]
    return path, f"system:serviceaccount:{tenants[0]}:{accounts[0]}"


def people(bob_name: str = "Bob", members: str = "scs_user.bob.metadata.name, "
           "scs_user.carol.metadata.name", carol_role: str = "viewer") -> str:
    """Users bob and carol, group devs, devs as members tenant-wide and carol as ``carol_role``
    in the namespace: examples/iam/team.yaml as Terraform."""
    return f'''
variable "namespace" {{ type = string }}

resource "scs_user" "bob" {{
  metadata = {{ name = "bob", namespace = var.namespace }}
  spec = {{
    name         = "bob@acme.example"
    email        = "bob@acme.example"
    display_name = "{bob_name}"
  }}
}}

resource "scs_user" "carol" {{
  metadata = {{ name = "carol", namespace = var.namespace }}
  spec     = {{ name = "carol@acme.example", email = "carol@acme.example" }}
}}

resource "scs_group" "devs" {{
  metadata = {{ name = "devs", namespace = var.namespace }}
  spec = {{
    description = "Developers of the web shop"
    members     = [{members}]
  }}
}}

resource "scs_role_assignment" "devs_member" {{
  metadata = {{ name = "devs-member", namespace = var.namespace }}
  spec = {{
    subject = {{ kind = "Group", name = scs_group.devs.metadata.name }}
    role    = "member"
    scope   = "tenant"
  }}
}}

resource "scs_role_assignment" "carol" {{
  metadata = {{ name = "carol", namespace = var.namespace }}
  spec = {{
    subject = {{ kind = "User", name = scs_user.carol.metadata.name }}
    role    = "{carol_role}"
  }}
}}
'''


ESCALATION = '''
resource "scs_cluster_role_binding" "me" {
  metadata = { name = "domain-manager-is-cloud-admin" }
  role_ref = { api_group = "rbac.authorization.k8s.io", kind = "ClusterRole",
               name = "cloud-admin" }
  subjects = [{ kind = "User", name = "someone" }]
}

resource "scs_tenant" "mine" {
  metadata = { name = "domain-manager-tenant" }
  spec     = { display_name = "Not mine to make" }
}
'''


def iam_objects(admin: Client, namespace: str) -> dict[str, list[str]]:
    return {kind.__name__: sorted(o.metadata.name for o in admin.list(kind, namespace).items)
            for kind in (User, Group, RoleAssignment)}


def test_the_tenant_admin_manages_its_people(workspace: WorkspaceFactory, admin: Client,
                                             tenants: tuple[str, str],
                                             manager: tuple[Path, str]) -> None:
    ours, _ = tenants
    ws = workspace(provider_block(manager[0]), env={"TF_VAR_namespace": ours})
    ws.write(people())

    ws.apply()
    assert iam_objects(admin, ours) == {"User": ["bob", "carol"], "Group": ["devs"],
                                        "RoleAssignment": ["carol", "devs-member"]}
    for address in ("scs_user.bob", "scs_group.devs", "scs_role_assignment.devs_member"):
        state = ws.state(address)
        assert {c["type"]: c["status"] for c in state["status"]["conditions"]}["Ready"] \
            == "True", f"{address}: apply waited for the identity backend"
    assert ws.state("scs_user.bob")["status"]["keystone_id"], "mirrored into Keystone"
    binding = admin.get(RoleBinding, "scs:iam:devs-member", ours)
    assert binding.roleRef.name == "member", "the grant reached Central API RBAC too"
    ws.assert_no_changes()

    # -- update in place: a display name, a membership, a role ---------------------------------
    ws.write(people(bob_name="Bob Builder", members="scs_user.bob.metadata.name",
                    carol_role="member"))
    planned = ws.plan()
    assert "3 to change, 0 to destroy" in planned.stdout, planned
    uid = admin.get(User, "bob", ours).metadata.uid
    ws.apply()
    bob = admin.get(User, "bob", ours)
    assert bob.metadata.uid == uid and bob.spec.displayName == "Bob Builder"
    assert admin.get(Group, "devs", ours).spec.members == ["bob"]
    assert admin.get(RoleAssignment, "carol", ours).spec.role == "member"
    ws.assert_no_changes()

    # -- import: a user made with kubectl (here the SDK) comes under Terraform -------------------
    ws.run("state", "rm", "scs_user.bob")
    ws.import_("scs_user.bob", f"{ours}/bob")
    ws.assert_no_changes()

    ws.destroy()
    assert iam_objects(admin, ours) == {"User": [], "Group": [], "RoleAssignment": []}
    assert admin.find(RoleBinding, "scs:iam:devs-member", ours) is None


def test_outside_its_tenant_it_is_refused_and_nothing_changes(
        workspace: WorkspaceFactory, admin: Client, tenants: tuple[str, str],
        manager: tuple[Path, str]) -> None:
    _, theirs = tenants
    config, who = manager
    before = iam_objects(admin, theirs)
    ws = workspace(provider_block(config), env={"TF_VAR_namespace": theirs})
    ws.write(people())

    failed = ws.apply(check=False)
    assert failed.code == 1, failed
    said = " ".join(failed.stderr.split())  # Terraform wraps a diagnostic's detail
    for name in ("bob", "carol"):
        assert f"Forbidden: not allowed to create User {theirs}/{name} (403)" in said, failed
    assert who in said and f'in the namespace "{theirs}"' in said, failed
    assert iam_objects(admin, theirs) == before, "nothing was created in the other tenant"
    assert ws.addresses() == []

    escalation = workspace(provider_block(config)).write(ESCALATION)
    failed = escalation.apply(check=False)
    assert failed.code == 1
    said = " ".join(failed.stderr.split())
    assert "Forbidden: not allowed to create ClusterRoleBinding " \
        "domain-manager-is-cloud-admin (403)" in said, failed
    assert "Forbidden: not allowed to create Tenant domain-manager-tenant (403)" in said
    assert who in said, failed
    assert admin.find(ClusterRoleBinding, "domain-manager-is-cloud-admin") is None
    assert admin.find(Tenant, "domain-manager-tenant") is None
    assert escalation.addresses() == []
