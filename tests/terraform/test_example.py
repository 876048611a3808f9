"""examples/terraform, as written, with the real terraform binary against a real server:
init, validate, plan, apply, plan (only the fresh kubeconfig output differs), destroy —
so the example cannot rot. The provider finds its identity the way the example's README
says: ``SCS_KUBECONFIG``, the tenant admin's kubeconfig."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from central_api.client import Client
from central_api.kinds.iaas import Network, Server, Subnet
from central_api.kinds.kaas import Cluster
from tests.integration.conftest import unique
from tests.server import REPO, ScsServer
from tests.terraform.conftest import WorkspaceFactory
from tests.terraform.scenario import FAST_SANDBOX, onboard, tenant_admin_kubeconfig

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "terraform"


@pytest.fixture(scope="module")
def scs_server() -> Iterator[ScsServer]:
    srv = ScsServer(config=FAST_SANDBOX)
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


def test_the_example_runs_as_its_readme_says(workspace: WorkspaceFactory, admin: Client,
                                             scs_server: ScsServer, tmp_path: Path) -> None:
    ns = onboard(admin, unique("tf-example"))
    config, _ = tenant_admin_kubeconfig(admin, scs_server, ns, tmp_path / "acme.kubeconfig")
    ws = workspace(env={"SCS_KUBECONFIG": str(config), "TF_VAR_namespace": ns})
    for source in EXAMPLE.glob("*.tf"):
        shutil.copy(source, ws.path / source.name)

    ws.init()
    assert (ws.path / ".terraform.lock.hcl").exists(), "init recorded the provider's hash"
    ws.run("validate")
    ws.run("fmt", "-check", "-diff")
    planned = ws.plan()
    assert planned.code == 2 and "4 to add, 0 to change, 0 to destroy" in planned.stdout, \
        planned

    applied = ws.apply()
    assert admin.get(Network, "web", ns) and admin.get(Subnet, "web-v4", ns)
    assert admin.get(Server, "web-1", ns).metadata.labels == {"tier": "web"}
    cluster = admin.get(Cluster, "demo", ns)
    assert cluster.spec.nodePools[0].replicas == 2
    assert ws.output("server_addresses"), "the server was Ready with an address"
    assert ws.output("cluster_endpoint") == cluster.status.apiEndpoint
    kubeconfig = ws.output("kubeconfig")
    assert yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"] == \
        cluster.status.apiEndpoint
    assert "kubeconfig = <sensitive>" in applied.stdout, applied
    assert kubeconfig not in applied.output

    planned = ws.plan()
    assert "Plan:" not in planned.stdout, f"no resource changes:\n{planned}"

    ws.destroy()
    assert admin.find(Cluster, "demo", ns) is None and admin.find(Server, "web-1", ns) is None
    assert admin.find(Network, "web", ns) is None
