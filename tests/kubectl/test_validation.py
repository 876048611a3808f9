"""Bad input is refused with a message naming the field, and nothing is stored."""

from __future__ import annotations

import pytest

from .conftest import Kubectl, manifest

pytestmark = pytest.mark.slow


def test_invalid_tenant_is_refused_with_field_paths(kubectl: Kubectl, name: str) -> None:
    result = kubectl.fails("create", "-f", "-", input=manifest("bad-tenant.yaml", name=name))
    assert f'The Tenant "{name}" is invalid' in result.stderr
    assert "spec.displayName" in result.stderr
    assert "spec.quotas.cores" in result.stderr
    assert result.stdout == ""
    missing = kubectl.fails("get", "tenant", name)
    assert "NotFound" in missing.stderr


def test_names_with_uppercase_letters_are_refused(kubectl: Kubectl, name: str) -> None:
    upper = f"Bad{name}"
    ns = kubectl.fails("create", "namespace", upper)
    assert "is invalid" in ns.stderr and "RFC 1123" in ns.stderr
    tenant = manifest("tenant.yaml", name=upper, display="Upper").replace(
        f"suite: {upper}", f"suite: {name}")
    refused = kubectl.fails("create", "-f", "-", input=tenant)
    assert "is invalid" in refused.stderr and "metadata.name" in refused.stderr
    assert "NotFound" in kubectl.fails("get", "ns", upper).stderr
    assert kubectl.json("get", "tenants", "-l", f"suite={name}")["items"] == []
