"""The operator config decides what is served: disabled services have no kinds at all, and a
config naming an unknown service, provider type or setting stops ``scs serve`` with a clear
message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.controllers.conftest import IAAS, INVENTORY, REPO, Launcher, network, write_config
from tests.server import free_port

pytestmark = pytest.mark.slow


def test_with_only_tenancy_enabled_no_iaas_kind_is_discoverable_or_creatable(
        launch: Launcher) -> None:
    cluster = launch.start({"services": ["tenancy"]})

    resources = cluster.kubectl("api-resources", "-o", "name").stdout.split()
    assert "tenants.tenancy.scs.community" in resources, resources
    assert not [r for r in resources if r.endswith(".iaas.scs.community")], resources

    response = cluster.http.get("/openapi/v3")
    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    assert "apis/tenancy.scs.community/v1alpha1" in paths, sorted(paths)
    assert "apis/iaas.scs.community/v1alpha1" not in paths, sorted(paths)

    created = cluster.http.post(f"{IAAS}/namespaces/default/networks", json=network("nope"))
    assert created.status_code == 404, created.text
    assert cluster.http.get(INVENTORY).status_code == 404



def serve(tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = write_config(tmp_path / "bad.yaml", config)
    return subprocess.run([sys.executable, "-m", "central_api.cli", "serve", "--listen",
                           f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"),
                           "--config", str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=30)


def test_serve_refuses_a_config_with_an_unknown_service(tmp_path: Path) -> None:
    result = serve(tmp_path, {"services": ["tenancy", "warpdrive"]})
    assert result.returncode != 0
    output = " ".join((result.stderr + result.stdout).split())
    assert "unknown services ['warpdrive']" in output, output
    assert "known:" in output and "iaas" in output, output


def test_serve_refuses_a_config_with_an_unknown_provider_type(tmp_path: Path) -> None:
    result = serve(tmp_path, {"providers": {"iaas": {"type": "vmware"}}})
    assert result.returncode != 0
    output = " ".join((result.stderr + result.stdout).split())
    assert "providers.iaas.type" in output, output
    assert "'sandbox'" in output and "'openstack'" in output, output


@pytest.mark.parametrize(("config", "path"), [
    ({"federation": {"enabled": True, "allowPrivateIssuer": True}},
     "federation.allowPrivateIssuer"),
    ({"providers": {"iaas": {"type": "openstack", "allowPrivateImageSource": True}}},
     "providers.iaas.allowPrivateImageSource"),
])
def test_serve_refuses_a_misspelt_security_setting_instead_of_ignoring_it(
        tmp_path: Path, config: dict[str, Any], path: str) -> None:
    """A typo in a switch that relaxes a protection must not start a server that silently
    keeps (or, worse, drops) the protection the operator thinks they configured."""
    result = serve(tmp_path, config)
    assert result.returncode != 0
    output = " ".join((result.stderr + result.stdout).split())
    assert path in output and "Extra inputs are not permitted" in output, output
