"""Changing objects: create, patch, label, annotate, edit, wait and delete."""

from __future__ import annotations

import base64
import json

import pytest

from .conftest import Kubectl, Lines, manifest

pytestmark = pytest.mark.slow

READY = {"status": {"conditions": [{
    "type": "Ready", "status": "True", "reason": "Provisioned", "message": "all set",
    "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}


@pytest.fixture
def tenant(kubectl: Kubectl, name: str) -> str:
    kubectl.apply(manifest("tenant.yaml", name=name, display="Original"))
    return name


def test_create_namespace_and_secret_from_literal(kubectl: Kubectl, name: str) -> None:
    out = kubectl.ok("create", "namespace", name).stdout
    assert out.strip() == f"namespace/{name} created"
    assert kubectl.json("get", "ns", name)["status"]["phase"] == "Active"
    out = kubectl.ok("-n", name, "create", "secret", "generic", "db",
                     "--from-literal=x=s3cret value", "--from-literal=user=admin").stdout
    assert out.strip() == "secret/db created"
    encoded = kubectl.ok("-n", name, "get", "secret", "db", "-o", "jsonpath={.data.x}").stdout
    assert base64.b64decode(encoded).decode() == "s3cret value"
    secret = kubectl.json("-n", name, "get", "secret", "db")
    assert secret["type"] == "Opaque"
    assert set(secret["data"]) == {"x", "user"}
    again = kubectl.fails("create", "namespace", name)
    assert "AlreadyExists" in again.stderr or "already exists" in again.stderr


def test_patch_merge_and_json(kubectl: Kubectl, tenant: str) -> None:
    out = kubectl.ok("patch", "tenant", tenant, "--type=merge",
                     "-p", '{"spec":{"contact":"noc@example.com","quotas":{"cores":null}}}')
    assert out.stdout.strip() == f"tenant.tenancy.scs.community/{tenant} patched"
    spec = kubectl.json("get", "tenant", tenant)["spec"]
    assert spec["contact"] == "noc@example.com"
    assert spec["quotas"] == {"ramMiB": 131072}

    ops = [{"op": "replace", "path": "/spec/displayName", "value": "Patched"},
           {"op": "add", "path": "/spec/admins", "value": ["alice@example.com"]}]
    kubectl.ok("patch", "tenant", tenant, "--type=json", "-p", json.dumps(ops))
    spec = kubectl.json("get", "tenant", tenant)["spec"]
    assert spec["displayName"] == "Patched" and spec["admins"] == ["alice@example.com"]

    failed = kubectl.fails("patch", "tenant", tenant, "--type=json",
                           "-p", '[{"op":"test","path":"/spec/displayName","value":"nope"}]')
    assert "is invalid" in failed.stderr
    bad = kubectl.fails("patch", "tenant", tenant, "--type=merge",
                        "-p", '{"spec":{"quotas":{"cores":-5}}}')
    assert "spec.quotas.cores" in bad.stderr
    assert kubectl.json("get", "tenant", tenant)["spec"]["displayName"] == "Patched"


def test_label_and_annotate_add_overwrite_and_remove(kubectl: Kubectl, tenant: str) -> None:
    assert kubectl.ok("label", "tenant", tenant, "tier=gold").stdout.strip() == \
        f"tenant.tenancy.scs.community/{tenant} labeled"
    refused = kubectl.fails("label", "tenant", tenant, "tier=silver")
    assert "already has a value (gold)" in refused.stderr
    kubectl.ok("label", "tenant", tenant, "tier=silver", "--overwrite")
    kubectl.ok("annotate", "tenant", tenant, "owner=team-a", "note=hello world")
    meta = kubectl.json("get", "tenant", tenant)["metadata"]
    assert meta["labels"]["tier"] == "silver"
    assert meta["annotations"]["owner"] == "team-a"
    assert meta["annotations"]["note"] == "hello world"
    assert kubectl.ok("get", "tn", "-l", "tier in (gold,silver)", "-o", "name").stdout.split() \
        == [f"tenant.tenancy.scs.community/{tenant}"]

    assert kubectl.ok("label", "tenant", tenant, "tier-").stdout.strip() == \
        f"tenant.tenancy.scs.community/{tenant} unlabeled"
    # kubectl 1.27 prints "annotate" (a client-side quirk), later versions "annotated".
    assert kubectl.ok("annotate", "tenant", tenant, "owner-").stdout.strip() in (
        f"tenant.tenancy.scs.community/{tenant} annotated",
        f"tenant.tenancy.scs.community/{tenant} annotate")
    meta = kubectl.json("get", "tenant", tenant)["metadata"]
    assert "tier" not in meta.get("labels", {})
    assert "owner" not in meta.get("annotations", {})
    assert meta["annotations"]["note"] == "hello world"


def test_edit_saves_the_editors_change(kubectl: Kubectl, tenant: str) -> None:
    editor = {"KUBE_EDITOR": "sed -i -e s/displayName:.Original/displayName:\\ Edited/"}
    out = kubectl.ok("edit", "tenant", tenant, env=editor).stdout
    assert out.strip() == f"tenant.tenancy.scs.community/{tenant} edited"
    assert kubectl.json("get", "tenant", tenant)["spec"]["displayName"] == "Edited"

    unchanged = kubectl.ok("edit", "tenant", tenant, env={"KUBE_EDITOR": "true"})
    assert "Edit cancelled, no changes made." in unchanged.stdout + unchanged.stderr

    invalid = kubectl.fails("edit", "tenant", tenant, env={
        "KUBE_EDITOR": "sed -i -e s/displayName:.Edited/displayName:\\ \\'\\'/"})
    assert "is invalid" in invalid.stdout + invalid.stderr
    assert kubectl.json("get", "tenant", tenant)["spec"]["displayName"] == "Edited"


def test_wait_for_ready_condition_set_through_the_status_subresource(
        kubectl: Kubectl, tenant: str) -> None:
    not_yet = kubectl.fails("wait", f"tenant/{tenant}", "--for=condition=Ready",
                            "--timeout=1s")
    assert "timed out" in not_yet.stderr
    waiter = kubectl.popen("wait", f"tenant/{tenant}", "--for=condition=Ready",
                           "--timeout=30s")
    try:
        out = kubectl.ok("patch", "tenant", tenant, "--subresource=status", "--type=merge",
                         "-p", json.dumps(READY)).stdout
        assert out.strip() == f"tenant.tenancy.scs.community/{tenant} patched"
        stdout, stderr = waiter.communicate(timeout=30)
    finally:
        waiter.kill()
    assert waiter.returncode == 0, stderr
    assert stdout.strip() == f"tenant.tenancy.scs.community/{tenant} condition met"
    tenant_obj = kubectl.json("get", "tenant", tenant)
    assert tenant_obj["status"]["conditions"][0]["reason"] == "Provisioned"
    assert tenant_obj["metadata"]["generation"] == 1, "status changes do not bump generation"

    spec_ignored = kubectl.ok("patch", "tenant", tenant, "--subresource=status",
                              "--type=merge", "-p", '{"spec":{"displayName":"Sneaky"}}')
    assert spec_ignored.returncode == 0
    assert kubectl.json("get", "tenant", tenant)["spec"]["displayName"] == "Original"
    main_ignored = kubectl.ok("patch", "tenant", tenant, "--type=merge",
                              "-p", '{"status":{"domainID":"sneaky"}}')
    assert main_ignored.returncode == 0
    assert kubectl.json("get", "tenant", tenant)["status"].get("domainID", "") == ""


def test_wait_for_delete_returns_once_the_object_is_gone(kubectl: Kubectl, tenant: str) -> None:
    waiter = kubectl.popen("wait", f"tenant/{tenant}", "--for=delete", "--timeout=30s", "-v=6")
    try:
        log = Lines(waiter.stderr)
        log.wait_for("watch=true")  # it has found the tenant and is watching it
        kubectl.ok("delete", "tenant", tenant, "--wait=false")
        assert waiter.wait(timeout=30) == 0, log.seen
        assert waiter.stdout is not None
        stdout = waiter.stdout.read()
    finally:
        waiter.kill()
    assert stdout.strip() == f"tenant.tenancy.scs.community/{tenant} condition met"
    gone = kubectl.fails("get", "tenant", tenant)
    assert "NotFound" in gone.stderr


def test_delete_namespace_removes_its_secrets(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("secrets.yaml", namespace=namespace))
    assert len(kubectl.json("-n", namespace, "get", "secrets")["items"]) == 5
    out = kubectl.ok("delete", "namespace", namespace, "--timeout=30s").stdout
    assert out.strip() == f'namespace "{namespace}" deleted'
    gone = kubectl.fails("get", "ns", namespace)
    assert f'namespaces "{namespace}" not found' in gone.stderr
    assert "NotFound" in gone.stderr
    secrets = kubectl.json("get", "secrets", "-A")["items"]
    assert [s for s in secrets if s["metadata"]["namespace"] == namespace] == []
