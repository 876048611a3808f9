"""``kubectl apply`` (client-side and server-side) and ``kubectl diff``."""

from __future__ import annotations

import json

import pytest

from .conftest import Kubectl, manifest

pytestmark = pytest.mark.slow

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def test_client_side_apply_creates_then_is_unchanged_then_configures(
        kubectl: Kubectl, name: str) -> None:
    doc = manifest("tenant.yaml", name=name, display="Apply Corp")
    created = kubectl.apply(doc)
    assert created.stdout.strip() == f"tenant.tenancy.scs.community/{name} created"
    again = kubectl.apply(doc)
    assert again.stdout.strip() == f"tenant.tenancy.scs.community/{name} unchanged"
    first = kubectl.json("get", "tenant", name)
    assert LAST_APPLIED in first["metadata"]["annotations"]

    changed = doc.replace("Apply Corp", "Apply Corp II").replace("    cores: 64\n", "")
    configured = kubectl.apply(changed)
    assert configured.stdout.strip() == f"tenant.tenancy.scs.community/{name} configured"

    tenant = kubectl.json("get", "tenant", name)
    assert tenant["spec"]["displayName"] == "Apply Corp II"
    assert tenant["spec"]["quotas"] == {"ramMiB": 131072}, "field dropped from the manifest"
    assert tenant["metadata"]["generation"] == first["metadata"]["generation"] + 1
    last = json.loads(tenant["metadata"]["annotations"][LAST_APPLIED])
    assert last["spec"]["displayName"] == "Apply Corp II"


def test_server_side_apply_tracks_managers_and_refuses_conflicts(
        kubectl: Kubectl, name: str) -> None:
    doc = manifest("tenant.yaml", name=name, display="SSA Corp")
    out = kubectl.ok("apply", "--server-side", "-f", "-", input=doc).stdout
    assert out.strip() == f"tenant.tenancy.scs.community/{name} serverside-applied"
    tenant = kubectl.json("get", "tenant", name, "--show-managed-fields")
    managers = {m["manager"]: m for m in tenant["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    assert "f:displayName" in json.dumps(managers["kubectl"]["fieldsV1"])

    theirs = doc.replace("SSA Corp", "Hostile Takeover")
    conflict = kubectl.fails("apply", "--server-side", "--field-manager=intruder",
                             "-f", "-", input=theirs)
    assert "conflict" in conflict.stderr.lower()
    assert ".spec.displayName" in conflict.stderr
    assert kubectl.json("get", "tenant", name)["spec"]["displayName"] == "SSA Corp"

    kubectl.ok("apply", "--server-side", "--field-manager=intruder", "--force-conflicts",
               "-f", "-", input=theirs)
    tenant = kubectl.json("get", "tenant", name, "--show-managed-fields")
    assert tenant["spec"]["displayName"] == "Hostile Takeover"
    owners = {m["manager"]: json.dumps(m["fieldsV1"]) for m in tenant["metadata"]["managedFields"]}
    assert "f:displayName" in owners["intruder"]
    assert "f:displayName" not in owners.get("kubectl", "")


def test_diff_exits_1_with_a_diff_when_changed_and_0_when_not(
        kubectl: Kubectl, name: str) -> None:
    doc = manifest("tenant.yaml", name=name, display="Diff Corp")
    kubectl.apply(doc)
    same = kubectl.run("diff", "-f", "-", input=doc)
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""

    changed = kubectl.run("diff", "-f", "-", input=doc.replace("Diff Corp", "Diff GmbH"))
    assert changed.returncode == 1, changed.stderr
    assert "-  displayName: Diff Corp" in changed.stdout
    assert "+  displayName: Diff GmbH" in changed.stdout
    assert kubectl.json("get", "tenant", name)["spec"]["displayName"] == "Diff Corp"


def test_client_side_apply_of_a_builtin_kind_uses_a_strategic_merge_patch(
        kubectl: Kubectl, namespace: str) -> None:
    doc = f"""apiVersion: v1
kind: Secret
metadata:
  name: smp
  namespace: {namespace}
  labels: {{app: web, tier: front}}
stringData: {{user: admin, password: one}}
"""
    assert kubectl.apply(doc).stdout.strip() == "secret/smp created"
    changed = doc.replace(", tier: front", "").replace("password: one", "password: two")
    result = kubectl.ok("apply", "-f", "-", "-v=8", input=changed)
    assert result.stdout.strip() == "secret/smp configured"
    assert "application/strategic-merge-patch+json" in result.stderr
    secret = kubectl.json("-n", namespace, "get", "secret", "smp")
    assert secret["metadata"]["labels"] == {"app": "web"}
    assert secret["data"] == {"user": "YWRtaW4=", "password": "dHdv"}
    assert "stringData" not in secret
