"""examples/terraform, as written, with the real terraform binary against a real server, so
the example cannot rot — and, since it holds a Cluster, the cluster scenario too (one set of
applies for both: each costs seconds): init, validate, fmt, plan, apply (returning once the
server and the cluster are Ready), the cluster-admin kubeconfig through the data source as a
sensitive output that no plan, apply, show or destroy prints, the node pool scaled in place
with ``-var workers=3``, and destroy returning only once the backend's finalizer let the
cluster go. The provider finds its identity the way the example's README says:
``SCS_KUBECONFIG``, the tenant admin's kubeconfig."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
import yaml

from central_api.client import Client
from central_api.kinds.iaas import Network, Server, Subnet
from central_api.kinds.kaas import Cluster
from tests.integration.conftest import unique
from tests.server import REPO, ScsServer
from tests.terraform.conftest import WorkspaceFactory
from tests.terraform.harness import Result
from tests.terraform.scenario import onboard, tenant_admin_kubeconfig

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "terraform"


def assert_secret_hidden(result: Result, kubeconfig: str) -> None:
    """Neither the kubeconfig nor its credential (plain or base64) reaches the output."""
    user = yaml.safe_load(kubeconfig)["users"][0]["user"]
    for secret in (kubeconfig, *(str(v) for v in user.values() if len(str(v)) > 16)):
        assert secret not in result.output, f"a credential was printed:\n{result}"
        encoded = base64.b64encode(secret.encode()).decode()
        assert encoded not in result.output, f"a credential was printed (base64):\n{result}"


def ready(state: dict[str, object]) -> bool:
    status = state["status"]
    assert isinstance(status, dict)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])


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
    assert ready(ws.state("scs_server.web")) and ws.output("server_addresses")
    cluster_state = ws.state("scs_cluster.demo")
    assert ready(cluster_state), "apply returned once the cluster was Ready"
    assert cluster_state["status"]["node_pools"][0]["ready_replicas"] == 2
    cluster = admin.get(Cluster, "demo", ns)
    assert ws.output("cluster_endpoint") == cluster.status.apiEndpoint

    kubeconfig = ws.output("kubeconfig")
    assert yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"] == \
        cluster.status.apiEndpoint
    assert "kubeconfig = <sensitive>" in applied.stdout, applied
    assert_secret_hidden(applied, kubeconfig)
    assert ws.state("data.scs_cluster_adminkubeconfig.demo")["status"]["expiration_timestamp"]
    shown = ws.run("show")
    assert "(sensitive value)" in shown.stdout
    assert_secret_hidden(shown, kubeconfig)

    # The data source asks for a new short-lived kubeconfig on every read: only the output
    # changes, no resource does.
    planned = ws.plan()
    assert "Plan:" not in planned.stdout and "Changes to Outputs" in planned.stdout, planned
    assert re.search(r"~ kubeconfig\s+= \(sensitive value\)", planned.stdout), planned
    assert_secret_hidden(planned, kubeconfig)

    # -- scale the pool in place ---------------------------------------------------------------
    planned = ws.plan("-var", "workers=3")
    assert "1 to change, 0 to destroy" in planned.stdout and "2 -> 3" in planned.stdout, planned
    applied = ws.apply("-var", "workers=3")
    assert_secret_hidden(applied, kubeconfig)
    scaled = admin.get(Cluster, "demo", ns)
    assert scaled.metadata.uid == cluster.metadata.uid, "scaled in place, not recreated"
    assert scaled.spec.nodePools[0].replicas == 3
    assert ws.state("scs_cluster.demo")["status"]["node_pools"][0]["desired_replicas"] == 3

    # -- destroy returns once the backends let go ----------------------------------------------
    assert scaled.metadata.model_dump().get("finalizers"), \
        "the KaaS backend holds a finalizer while the cluster exists"
    destroyed = ws.destroy()
    assert_secret_hidden(destroyed, kubeconfig)
    assert admin.find(Cluster, "demo", ns) is None, "destroy waited until the cluster was gone"
    assert admin.find(Server, "web-1", ns) is None and admin.find(Network, "web", ns) is None
    assert ws.addresses() == []
