"""`scs crds`: the exported CRDs are valid and behave like the built-in declaration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from central_api.cli.main import app
from central_api.kinds import builtin_kinds
from central_api.kinds.apiextensions import CRD, resource_types, validate_crd
from central_api.kinds.catalog import Catalog
from central_api.kinds.core import NAMESPACE, SECRET
from central_api.kinds.crd_export import exportable, to_crd
from central_api.kinds.tenancy import TENANT
from central_api.machinery.errors import ApiError
from central_api.registry.resources import Resources, WriteOptions
from central_api.store.sqlite import SqliteStore


def exported() -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["crds"])
    assert result.exit_code == 0, result.output
    return [doc for doc in yaml.safe_load_all(result.output) if doc]


def test_scs_crds_prints_every_scs_kind_and_no_native_one() -> None:
    names = {doc["metadata"]["name"] for doc in exported()}
    assert names == {f"{rt.plural}.{rt.group}" for rt in exportable(builtin_kinds())}
    assert "tenants.tenancy.scs.community" in names


def test_exported_crds_pass_apiextensions_validation() -> None:
    for doc in exported():
        assert validate_crd(doc) == [], doc["metadata"]["name"]


def test_exported_crd_keeps_columns_and_status_subresource() -> None:
    version = to_crd(TENANT)["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Display Name", "Ready", "Contact", "Domain", "Identity", "Age"]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Resources, Resources]]:
    """The built-in Tenant, and a Tenant served from its exported CRD."""
    builtin = Resources(SqliteStore(tmp_path / "a.db"), Catalog(builtin_kinds()))
    custom_catalog = Catalog([NAMESPACE, SECRET, CRD])
    custom = Resources(SqliteStore(tmp_path / "b.db"), custom_catalog)
    crd = custom.create(CRD, "", to_crd(TENANT), WriteOptions())
    custom_catalog.set_crd(crd["metadata"]["name"], resource_types(crd))
    yield builtin, custom
    builtin.store.close()
    custom.store.close()


def tenant_type(res: Resources) -> Any:
    return res.catalog.lookup("tenancy.scs.community", "v1alpha1", "tenants")


def test_crd_served_tenant_defaults_like_the_builtin(pair: tuple[Resources, Resources]) -> None:
    body = {"metadata": {"name": "acme"}, "spec": {"displayName": "ACME"}}
    outs = [res.create(tenant_type(res), "", body, WriteOptions()) for res in pair]
    assert outs[0]["spec"] == outs[1]["spec"]


def test_crd_served_tenant_rejects_what_the_builtin_rejects(
        pair: tuple[Resources, Resources]) -> None:
    body = {"metadata": {"name": "bad"},
            "spec": {"displayName": "", "quotas": {"cores": -1},
                     "enabledServices": ["nope"]}}
    fields = []
    for res in pair:
        with pytest.raises(ApiError) as info:
            res.create(tenant_type(res), "", body, WriteOptions())
        fields.append(sorted(c.field for c in info.value.causes))
    assert fields[0] == fields[1] and "spec.quotas.cores" in fields[0]


def test_crd_for_a_builtin_kind_is_refused(tmp_path: Path) -> None:
    res = Resources(SqliteStore(tmp_path / "c.db"), Catalog(builtin_kinds()))
    with pytest.raises(ApiError) as info:
        res.create(CRD, "", to_crd(TENANT), WriteOptions())
    assert info.value.code == 422
    assert "already served" in info.value.message
    res.store.close()
