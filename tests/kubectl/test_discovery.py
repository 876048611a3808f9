"""Discovery, documentation and identity as kubectl shows them."""

from __future__ import annotations

import pytest

from .conftest import Kubectl

pytestmark = pytest.mark.slow


def test_api_resources_lists_builtin_kinds_with_short_names(kubectl: Kubectl) -> None:
    out = kubectl.ok("api-resources").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["namespaces"][1] == "ns"
    assert "secrets" in rows
    assert rows["tenants"][1:] == ["tn", "tenancy.scs.community/v1alpha1", "false", "Tenant"]
    assert rows["customresourcedefinitions"][-1] == "CustomResourceDefinition"
    names = kubectl.ok("api-resources", "--api-group=tenancy.scs.community", "-o", "name").stdout
    assert names.split() == ["tenants.tenancy.scs.community"]


def test_explain_shows_field_descriptions_from_the_schema(kubectl: Kubectl) -> None:
    spec = kubectl.ok("explain", "tenant.spec").stdout
    assert "displayName" in spec and "Human-readable customer name." in spec
    assert "quotas" in spec and "Upper limits for the tenant as a whole" in spec
    quotas = kubectl.ok("explain", "tenant.spec.quotas").stdout
    assert "cores" in quotas and "vCPUs across all servers." in quotas
    assert "ramMiB" in quotas and "RAM across all servers, in MiB." in quotas
    # The Swagger 2.0 document, which kubectl fetches as protobuf, documents the same fields.
    v2 = kubectl.ok("explain", "tenant.spec.quotas", "--output=plaintext-openapiv2").stdout
    assert "vCPUs across all servers." in v2
    secret = kubectl.ok("explain", "secret", "--output=plaintext-openapiv2").stdout
    assert "data\t<map[string]string>" in secret
    missing = kubectl.fails("explain", "tenant.spec.nonsense")
    assert "nonsense" in missing.stderr


def test_auth_whoami_shows_the_bootstrap_admin(kubectl: Kubectl) -> None:
    out = kubectl.ok("auth", "whoami").stdout
    assert "scs:bootstrap-admin" in out
    review = kubectl.json("auth", "whoami")
    assert review["kind"] == "SelfSubjectReview"
    assert review["status"]["userInfo"]["username"] == "scs:bootstrap-admin"
    assert "system:masters" in review["status"]["userInfo"]["groups"]
