"""A Kubernetes cluster (the sandbox KaaS) managed by its tenant's admin with the real
terraform binary: created with a node pool and awaited until Ready, its admin kubeconfig
read through a data source and kept out of every plan and apply output, the pool scaled in
place, and destroy returning only once the backend's finalizer let the cluster go."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from central_api.client import Client
from central_api.kinds.kaas import Cluster
from tests.integration.conftest import unique
from tests.server import ScsServer
from tests.terraform.conftest import WorkspaceFactory
from tests.terraform.harness import Result, provider_block
from tests.terraform.scenario import FAST_SANDBOX, onboard, tenant_admin_kubeconfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scs_server() -> Iterator[ScsServer]:
    srv = ScsServer(config=FAST_SANDBOX)
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def ns(admin: Client) -> str:
    return onboard(admin, unique("tf-kaas"))


@pytest.fixture(scope="module")
def tenant_config(admin: Client, scs_server: ScsServer, ns: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = tenant_admin_kubeconfig(admin, scs_server, ns,
                                      tmp_path_factory.mktemp("tenant") / "kubeconfig")
    return path


def cluster(namespace: str, replicas: int) -> str:
    return f'''
resource "scs_cluster" "demo" {{
  metadata = {{ name = "demo", namespace = "{namespace}" }}
  spec = {{
    kubernetes_version = "1.34"
    node_pools = [{{ name = "general", flavor = "SCS-2V-4", replicas = {replicas} }}]
  }}
  timeouts = {{ create = "5m", update = "5m", delete = "5m" }}
}}

data "scs_cluster_adminkubeconfig" "demo" {{
  metadata   = {{ name = scs_cluster.demo.metadata.name, namespace = "{namespace}" }}
  spec       = {{ expiration_seconds = 3600 }}
  depends_on = [scs_cluster.demo]
}}

output "kubeconfig" {{
  value     = base64decode(data.scs_cluster_adminkubeconfig.demo.status.kubeconfig)
  sensitive = true
}}
'''


def assert_secret_hidden(result: Result, kubeconfig: str) -> None:
    """No line of the kubeconfig's credential reaches Terraform's output."""
    user = yaml.safe_load(kubeconfig)["users"][0]["user"]
    for secret in (kubeconfig, *(str(v) for v in user.values() if len(str(v)) > 16)):
        assert secret not in result.output, f"a credential was printed:\n{result}"
        encoded = base64.b64encode(secret.encode()).decode()
        assert encoded not in result.output, f"a credential was printed (base64):\n{result}"


def test_cluster_with_a_node_pool_and_its_kubeconfig(workspace: WorkspaceFactory,
                                                     admin: Client, ns: str,
                                                     tenant_config: Path) -> None:
    ws = workspace(provider_block(tenant_config)).write(cluster(ns, replicas=1))

    applied = ws.apply()
    state = ws.state("scs_cluster.demo")
    conditions = {c["type"]: c["status"] for c in state["status"]["conditions"]}
    assert conditions.get("Ready") == "True", "apply returned once the cluster was Ready"
    assert state["status"]["api_endpoint"] and state["status"]["node_pools"][0][
        "ready_replicas"] == 1
    kubeconfig = ws.output("kubeconfig")
    assert yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"] == \
        state["status"]["api_endpoint"]
    assert "kubeconfig = (sensitive value)" in applied.stdout, applied
    assert_secret_hidden(applied, kubeconfig)
    data = ws.state("data.scs_cluster_adminkubeconfig.demo")
    assert data["status"]["expiration_timestamp"]
    shown = ws.run("show")
    assert "(sensitive value)" in shown.stdout and kubeconfig not in shown.stdout

    # The data source asks for a new short-lived kubeconfig on every read: only the output
    # changes, no resource does.
    planned = ws.plan()
    assert "Plan:" not in planned.stdout and "Changes to Outputs" in planned.stdout, planned
    assert "~ kubeconfig = (sensitive value)" in planned.stdout, planned
    assert_secret_hidden(planned, kubeconfig)
    created = admin.get(Cluster, "demo", ns)

    # -- scale the pool in place ---------------------------------------------------------------
    ws.write(cluster(ns, replicas=2))
    planned = ws.plan()
    assert "1 to change, 0 to destroy" in planned.stdout and "1 -> 2" in planned.stdout, planned
    assert_secret_hidden(planned, kubeconfig)
    applied = ws.apply()
    assert_secret_hidden(applied, kubeconfig)
    scaled = admin.get(Cluster, "demo", ns)
    assert scaled.metadata.uid == created.metadata.uid, "scaled in place, not recreated"
    assert scaled.spec.nodePools[0].replicas == 2
    state = ws.state("scs_cluster.demo")
    assert state["status"]["node_pools"][0]["desired_replicas"] == 2, state["status"]

    # -- destroy returns once the backend let go ----------------------------------------------
    assert scaled.metadata.model_dump().get("finalizers"), \
        "the KaaS backend holds a finalizer while the cluster exists"
    destroyed = ws.destroy()
    assert admin.find(Cluster, "demo", ns) is None, "destroy waited until the cluster was gone"
    assert_secret_hidden(destroyed, kubeconfig)
    assert ws.addresses() == []
