"""A Tenant managed with the real terraform binary: the whole life cycle, drift, import, and
the server's refusals (422, 403, 409) as diagnostics naming the field or the reason."""

from __future__ import annotations

import subprocess

import pytest

from central_api.client import Client
from central_api.kinds.tenancy import Tenant, TenantSpec
from tests.client.conftest import service_account_token
from tests.integration.conftest import unique
from tests.server import ScsServer
from tests.terraform.conftest import WorkspaceFactory
from tests.terraform.harness import provider_block

pytestmark = pytest.mark.slow


CONFIRM = "tenancy.scs.community/confirm-deletion"


def tenant_hcl(name: str, display: str = "ACME", cores: int = 8, label: str = "test",
               address: str = "acme", confirm: bool = True) -> str:
    """A Tenant; ``confirm``: it carries the annotation that lets offboarding proceed."""
    annotations = f'{{ "{CONFIRM}" = "{name}" }}' if confirm else "{}"
    return f'''
resource "scs_tenant" "{address}" {{
  metadata = {{
    name        = "{name}"
    labels      = {{ env = "{label}" }}
    annotations = {annotations}
  }}
  spec = {{
    display_name = "{display}"
    admins       = ["alice@acme.example"]
    quotas       = {{ cores = {cores} }}
  }}
  timeouts = {{ create = "2m" }}
}}
'''


def test_tenant_create_update_replace_destroy(workspace: WorkspaceFactory, admin: Client
                                              ) -> None:
    name, renamed = unique("tf"), unique("tf-new")
    ws = workspace().write(tenant_hcl(name))

    planned = ws.plan()
    assert planned.code == 2 and "1 to add" in planned.stdout, planned
    ws.apply()
    created = admin.get(Tenant, name)
    assert created.spec.displayName == "ACME" and created.spec.quotas.cores == 8
    assert created.metadata.labels == {"env": "test"}
    state = ws.state("scs_tenant.acme")
    assert state["id"] == name and state["metadata"]["uid"] == created.metadata.uid
    ready = [c for c in state["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True", "create waited for Ready"
    assert state["spec"]["enabled_services"], "server-side defaults land in state"
    ws.assert_no_changes()

    ws.write(tenant_hcl(name, display="ACME Corp", cores=16, label="prod"))
    planned = ws.plan()
    assert "updated in-place" in planned.stdout and "1 to change" in planned.stdout, planned
    ws.apply()
    updated = admin.get(Tenant, name)
    assert updated.metadata.uid == created.metadata.uid, "updated in place, not recreated"
    assert (updated.spec.displayName, updated.spec.quotas.cores) == ("ACME Corp", 16)
    assert updated.metadata.labels == {"env": "prod"}
    ws.assert_no_changes()

    ws.write(tenant_hcl(renamed, display="ACME Corp", cores=16, label="prod"))
    planned = ws.plan()
    assert "must be replaced" in planned.stdout and "forces replacement" in planned.stdout
    ws.apply()
    assert admin.find(Tenant, name) is None, "the old tenant is gone (finalizers ran)"
    assert admin.get(Tenant, renamed).spec.displayName == "ACME Corp"
    ws.assert_no_changes()

    ws.destroy()
    assert admin.find(Tenant, renamed) is None, "destroy waits until the object is gone"
    assert ws.addresses() == []


def test_drift_made_with_kubectl_shows_in_the_next_plan(workspace: WorkspaceFactory,
                                                        admin: Client,
                                                        scs_server: ScsServer) -> None:
    name = unique("tf-drift")
    ws = workspace().write(tenant_hcl(name))
    ws.apply()
    kubectl = ["kubectl", "--kubeconfig", str(scs_server.kubeconfig)]
    subprocess.run([*kubectl, "patch", "tenant", name, "--type=merge", "-p",
                    '{"spec":{"displayName":"edited by hand"}}'], check=True,
                   capture_output=True)
    subprocess.run([*kubectl, "label", "tenant", name, "team=ops"], check=True,
                   capture_output=True)

    planned = ws.plan()
    assert planned.code == 2 and "1 to change" in planned.stdout, planned
    assert '"edited by hand" -> "ACME"' in planned.stdout, planned
    assert "team" not in planned.stdout, "a label Terraform does not manage is not drift"
    ws.apply()
    restored = admin.get(Tenant, name)
    assert restored.spec.displayName == "ACME"
    assert restored.metadata.labels == {"env": "test", "team": "ops"}, "the update kept it"

    admin.delete(Tenant, name, wait=True, timeout=60)
    planned = ws.plan()
    assert planned.code == 2 and "1 to add" in planned.stdout, "a deleted object drops"


def test_import_by_name_then_no_changes(workspace: WorkspaceFactory, admin: Client) -> None:
    name = unique("tf-imp")
    admin.wait_ready(admin.create(Tenant(metadata={"name": name, "labels": {"env": "test"},
                                                   "annotations": {CONFIRM: name}},
                                         spec=TenantSpec(displayName="ACME",
                                                         admins=["alice@acme.example"],
                                                         quotas={"cores": 8}))), timeout=60)
    ws = workspace().write(tenant_hcl(name))

    refused = ws.import_("scs_tenant.acme", f"default/{name}", check=False)
    assert refused.code == 1 and "The ID of a Tenant is name" in refused.output, refused
    ws.import_("scs_tenant.acme", name)
    assert ws.state("scs_tenant.acme")["spec"]["display_name"] == "ACME"
    planned = ws.plan()
    assert planned.code == 0 or "timeouts" in planned.stdout, planned  # only the local block
    ws.apply()
    ws.assert_no_changes()


def test_invalid_spec_is_a_diagnostic_naming_the_field(workspace: WorkspaceFactory,
                                                       admin: Client) -> None:
    name = unique("tf-bad")
    ws = workspace().write(tenant_hcl(name, cores=-1))

    failed = ws.apply(check=False)
    assert failed.code == 1
    assert "Invalid spec.quotas.cores" in failed.stderr, failed
    assert "attribute spec.quotas.cores" in failed.stderr
    assert "greater than or equal to 0" in failed.stderr or ">= 0" in failed.stderr, failed
    assert admin.find(Tenant, name) is None, "nothing was created"
    assert ws.addresses() == []


def test_a_token_without_rights_gets_forbidden(workspace: WorkspaceFactory, admin: Client,
                                               scs_server: ScsServer) -> None:
    token = service_account_token(admin, "default")
    provider = provider_block(host=scs_server.url, token=token, ca_file=scs_server.ca_file)
    name = unique("tf-403")
    ws = workspace(provider).write(tenant_hcl(name))

    failed = ws.apply(check=False)
    assert failed.code == 1
    assert f"Forbidden: not allowed to create Tenant {name} (403)" in failed.stderr, failed
    assert "system:serviceaccount:default:" in failed.stderr, "the server names who"
    assert token not in failed.output, "the token is never printed"
    assert admin.find(Tenant, name) is None


def test_creating_an_existing_object_is_a_conflict_with_import_advice(
        workspace: WorkspaceFactory, admin: Client) -> None:
    name = unique("tf-409")
    admin.create(Tenant(metadata={"name": name}, spec=TenantSpec(displayName="Theirs")))
    ws = workspace().write(tenant_hcl(name))

    failed = ws.apply(check=False)
    assert failed.code == 1
    assert f"Cannot create Tenant {name}: it already exists (409" in failed.stderr, failed
    assert f'terraform import ADDRESS "{name}"' in failed.stderr
    assert admin.get(Tenant, name).spec.displayName == "Theirs", "left untouched"
    assert ws.addresses() == []


def test_a_blocked_deletion_is_a_diagnostic_not_a_long_wait(workspace: WorkspaceFactory,
                                                            admin: Client) -> None:
    name = unique("tf-keep")
    ws = workspace().write(tenant_hcl(name, confirm=False))
    ws.apply()

    failed = ws.destroy(check=False)
    assert failed.code == 1
    assert f"Cannot delete Tenant {name}: deletion is blocked (ConfirmationRequired)" \
        in failed.stderr, failed
    assert CONFIRM in failed.stderr, "the server's message says how to confirm"
    ws.write(tenant_hcl(name, confirm=True))
    ws.apply()
    ws.destroy()
    assert admin.find(Tenant, name) is None
