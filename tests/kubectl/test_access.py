"""Automation identities and access checks as kubectl users do them."""

from __future__ import annotations

import pytest
import yaml

from .conftest import Kubectl

pytestmark = pytest.mark.slow


def as_token(kubectl: Kubectl, token: str, namespace: str) -> dict[str, str]:
    """Environment for kubectl acting with ``token`` instead of the admin credentials."""
    admin = yaml.safe_load(kubectl.server.kubeconfig.read_text())
    config = {
        "apiVersion": "v1", "kind": "Config", "clusters": admin["clusters"],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": admin["clusters"][0]["name"],
                                                "user": "sa", "namespace": namespace}}],
        "current-context": "sa",
    }
    path = kubectl.workdir / f"sa-{namespace}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return {"KUBECONFIG": str(path)}


def test_create_token_gives_a_working_service_account_identity(kubectl: Kubectl,
                                                                 namespace: str) -> None:
    kubectl.ok("-n", namespace, "create", "serviceaccount", "ci")
    kubectl.ok("-n", namespace, "create", "rolebinding", "ci-member", "--clusterrole=member",
               f"--serviceaccount={namespace}:ci")
    token = kubectl.ok("-n", namespace, "create", "token", "ci", "--duration=15m").stdout.strip()
    env = as_token(kubectl, token, namespace)

    whoami = kubectl.ok("auth", "whoami", env=env).stdout
    assert f"system:serviceaccount:{namespace}:ci" in whoami
    kubectl.ok("create", "secret", "generic", "from-ci", "--from-literal=k=v", env=env)
    assert kubectl.ok("auth", "can-i", "create", "secrets", env=env).stdout.strip() == "yes"
    denied = kubectl.run("auth", "can-i", "create", "rolebindings", env=env)
    assert denied.stdout.strip() == "no"
    listed = kubectl.ok("auth", "can-i", "--list", env=env).stdout
    assert "secrets" in listed
    assert "serviceaccounts/token" not in listed  # members mint no tokens (issue 22)
    refused = kubectl.fails("-n", namespace, "create", "token", "ci", env=env)
    assert "is forbidden" in refused.stderr
    forbidden = kubectl.fails("get", "secrets", "-n", "default", env=env)
    assert "Forbidden" in forbidden.stderr


def test_deleting_the_service_account_revokes_its_tokens(kubectl: Kubectl,
                                                         namespace: str) -> None:
    kubectl.ok("-n", namespace, "create", "serviceaccount", "temp")
    token = kubectl.ok("-n", namespace, "create", "token", "temp").stdout.strip()
    env = as_token(kubectl, token, namespace)
    kubectl.ok("auth", "whoami", env=env)

    kubectl.ok("-n", namespace, "delete", "serviceaccount", "temp")

    refused = kubectl.fails("auth", "whoami", env=env)
    assert "Unauthorized" in refused.stderr or "logged in" in refused.stderr


def test_a_binding_to_a_role_the_binder_lacks_is_refused(kubectl: Kubectl,
                                                          namespace: str) -> None:
    kubectl.ok("-n", namespace, "create", "serviceaccount", "lead")
    kubectl.ok("-n", namespace, "create", "rolebinding", "lead-admin",
               "--clusterrole=tenant-admin", f"--serviceaccount={namespace}:lead")
    env = as_token(kubectl, kubectl.ok("-n", namespace, "create", "token", "lead").stdout
                   .strip(), namespace)

    kubectl.ok("create", "rolebinding", "bob-member", "--clusterrole=member",
               "--user=bob@example.com", env=env)
    escalation = kubectl.fails("create", "rolebinding", "bob-admin",
                               "--clusterrole=cloud-admin", "--user=bob@example.com", env=env)
    assert "is forbidden" in escalation.stderr
    assert "permissions not currently held" in escalation.stderr
