"""Owner references: background, foreground and orphan deletion through kubectl."""

from __future__ import annotations

import pytest

from .conftest import Kubectl, eventually, manifest

pytestmark = pytest.mark.slow

HOLD = "e2e.scs.community/hold"


def owned_secret(kubectl: Kubectl, namespace: str, owner: str, finalizers: str = "[]") -> None:
    uid = kubectl.json("get", "tenant", owner)["metadata"]["uid"]
    kubectl.ok("create", "-f", "-", input=manifest(
        "owned-secret.yaml", name="owned", namespace=namespace, owner=owner, uid=uid,
        finalizers=finalizers))


def exists(kubectl: Kubectl, *args: str) -> bool:
    result = kubectl.run("get", *args, "-o", "name")
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
    return result.returncode == 0


@pytest.fixture
def owner(kubectl: Kubectl, name: str, namespace: str) -> str:
    kubectl.apply(manifest("tenant.yaml", name=name, display="Owner"))
    return name


def test_background_deletion_removes_dependents(
        kubectl: Kubectl, owner: str, namespace: str) -> None:
    owned_secret(kubectl, namespace, owner)
    refs = kubectl.json("-n", namespace, "get", "secret", "owned")["metadata"]["ownerReferences"]
    assert [r["name"] for r in refs] == [owner]
    kubectl.ok("delete", "tenant", owner)
    assert not exists(kubectl, "tenant", owner)
    eventually(lambda: not exists(kubectl, "-n", namespace, "secret", "owned"),
               message="dependent secret was not garbage-collected")


def test_foreground_deletion_removes_the_owner_after_its_dependents(
        kubectl: Kubectl, owner: str, namespace: str) -> None:
    owned_secret(kubectl, namespace, owner, finalizers=f"[{HOLD}]")
    kubectl.ok("delete", "tenant", owner, "--cascade=foreground", "--wait=false")

    def dependent_deleting() -> bool:
        meta = kubectl.json("-n", namespace, "get", "secret", "owned")["metadata"]
        return "deletionTimestamp" in meta
    eventually(dependent_deleting, message="dependent was not deleted in the foreground")
    tenant = kubectl.json("get", "tenant", owner)["metadata"]
    assert tenant["deletionTimestamp"]
    assert "foregroundDeletion" in tenant["finalizers"]

    kubectl.ok("-n", namespace, "patch", "secret", "owned", "--type=json",
               "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    eventually(lambda: not exists(kubectl, "tenant", owner),
               message="owner was not removed after its dependent")
    assert not exists(kubectl, "-n", namespace, "secret", "owned")


def test_orphan_deletion_keeps_dependents_without_owner_references(
        kubectl: Kubectl, owner: str, namespace: str) -> None:
    owned_secret(kubectl, namespace, owner)
    out = kubectl.ok("delete", "tenant", owner, "--cascade=orphan").stdout
    assert out.strip() == f'tenant.tenancy.scs.community "{owner}" deleted'
    assert not exists(kubectl, "tenant", owner)
    secret = kubectl.json("-n", namespace, "get", "secret", "owned")
    assert not secret["metadata"].get("ownerReferences")
    assert secret["data"]["token"] == "b3duZWQ="
