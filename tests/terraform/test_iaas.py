"""A tenant's Network, Subnet and Server managed by its admin with the real terraform binary:
resources that reference each other, the whole life cycle in one working directory (each
apply costs seconds, so the steps share it), drift made with kubectl, import, and the Server's
wait for Ready bounded by its ``timeouts`` block (a server that cannot get Ready)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from central_api.client import Client
from central_api.kinds.iaas import Network, Server, Subnet
from tests.integration.conftest import unique
from tests.server import ScsServer
from tests.terraform.conftest import WorkspaceFactory
from tests.terraform.harness import provider_block
from tests.terraform.scenario import kubectl, onboard, tenant_admin_kubeconfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ns(admin: Client) -> str:
    """An onboarded tenant's namespace."""
    return onboard(admin, unique("tf-iaas"))


@pytest.fixture(scope="module")
def tenant_config(admin: Client, scs_server: ScsServer, ns: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kubeconfig of the tenant's admin."""
    where = tmp_path_factory.mktemp("tenant") / "kubeconfig"
    path, _ = tenant_admin_kubeconfig(admin, scs_server, ns, where)
    return path


def web_tier(namespace: str, *, description: str = "web tier", dns: str = '"9.9.9.9"',
             server: str = "web-1", tier: str = "web", create_timeout: str = "2m",
             image: str = "ubuntu-24.04") -> str:
    """A network, a subnet on it and a server on the network, wired by references."""
    return f'''
locals {{ namespace = "{namespace}" }}

resource "scs_network" "web" {{
  metadata = {{ name = "web", namespace = local.namespace }}
  spec     = {{ description = "{description}" }}
}}

resource "scs_subnet" "web_v4" {{
  metadata = {{ name = "web-v4", namespace = local.namespace }}
  spec = {{
    network_ref     = {{ name = scs_network.web.metadata.name }}
    cidr            = "10.20.0.0/24"
    dns_nameservers = [{dns}]
  }}
}}

resource "scs_server" "web" {{
  metadata = {{
    name      = "{server}"
    namespace = local.namespace
    labels    = {{ tier = "{tier}" }}
  }}
  spec = {{
    flavor   = "SCS-2V-4"
    image    = "{image}"
    networks = [{{ name = scs_network.web.metadata.name }}]
  }}
  timeouts   = {{ create = "{create_timeout}", delete = "2m" }}
  depends_on = [scs_subnet.web_v4]
}}

output "server_addresses" {{ value = scs_server.web.status.addresses }}
'''


def ready(state: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (state["status"] or {}).get("conditions") or [])


def test_network_subnet_server_life_cycle(workspace: WorkspaceFactory, admin: Client,
                                          ns: str, tenant_config: Path) -> None:
    ws = workspace(provider_block(tenant_config)).write(
        web_tier(ns, image="ubuntu-99.04", create_timeout="3s"))

    planned = ws.plan()
    assert planned.code == 2 and "3 to add" in planned.stdout, planned
    # An image the cloud does not have: the API takes the server, the cloud refuses it, so
    # it never gets Ready; the wait ends at the timeouts block's 3 s with the reason, and
    # Terraform keeps the server as tainted (replaced by the next apply).
    timed_out = ws.apply(check=False)
    said = " ".join(timed_out.stderr.split())
    assert timed_out.code == 1 and f"Timed out: create (waiting for Ready) Server {ns}/web-1" \
        in said, timed_out
    assert "ubuntu-99.04" in said, "the diagnostic carries the backend's reason"
    assert admin.find(Server, "web-1", ns) is not None, "created, only the wait gave up"
    tainted = ws.plan()
    assert "is tainted, so must be replaced" in tainted.stdout, tainted

    ws.write(web_tier(ns))
    ws.apply()
    server = ws.state("scs_server.web")
    assert ready(server), "apply returned once the server was Ready"
    assert server["id"] == f"{ns}/web-1" and server["status"]["addresses"]
    assert ws.output("server_addresses") == server["status"]["addresses"]
    network, subnet = admin.get(Network, "web", ns), admin.get(Subnet, "web-v4", ns)
    assert subnet.spec.networkRef.name == "web" and subnet.spec.dnsNameservers == ["9.9.9.9"]
    first_server = admin.get(Server, "web-1", ns)
    assert first_server.spec.networks[0].name == "web"
    ws.assert_no_changes()

    # -- update in place: a description, a list, a label ---------------------------------------
    ws.write(web_tier(ns, description="the shop", dns='"9.9.9.9", "1.1.1.1"', tier="shop"))
    planned = ws.plan()
    assert "3 to change, 0 to destroy" in planned.stdout, planned
    ws.apply()
    assert admin.get(Network, "web", ns).metadata.uid == network.metadata.uid
    assert admin.get(Network, "web", ns).spec.description == "the shop"
    assert admin.get(Subnet, "web-v4", ns).spec.dnsNameservers == ["9.9.9.9", "1.1.1.1"]
    relabelled = admin.get(Server, "web-1", ns)
    assert relabelled.metadata.uid == first_server.metadata.uid
    assert relabelled.metadata.labels == {"tier": "shop"}
    ws.assert_no_changes()

    # -- drift: a change made with kubectl shows in the next plan, apply puts it back ----------
    kubectl(tenant_config, "-n", ns, "patch", "network", "web", "--type=merge",
            "-p", '{"spec":{"description":"edited by hand"}}')
    kubectl(tenant_config, "-n", ns, "label", "--overwrite", "server", "web-1", "tier=hacked",
            "owner=someone")
    drifted = ws.plan()
    assert drifted.code == 2 and "2 to change" in drifted.stdout, drifted
    assert '"edited by hand" -> "the shop"' in drifted.stdout, drifted
    assert '"hacked" -> "shop"' in drifted.stdout, drifted
    assert "owner" not in drifted.stdout, "a label the configuration does not set is not ours"
    ws.apply()
    assert admin.get(Network, "web", ns).spec.description == "the shop"
    assert admin.get(Server, "web-1", ns).metadata.labels == {"tier": "shop",
                                                              "owner": "someone"}
    ws.assert_no_changes()

    # -- replace: a new name is a new server (created, Ready, the old one deleted) ------------
    ws.write(web_tier(ns, description="the shop", dns='"9.9.9.9", "1.1.1.1"', tier="shop",
                      server="web-2"))
    planned = ws.plan()
    assert "must be replaced" in planned.stdout and "1 to add, 0 to change, 1 to destroy" \
        in planned.stdout, planned
    ws.apply()
    assert admin.find(Server, "web-1", ns) is None
    assert ready(ws.state("scs_server.web"))
    ws.assert_no_changes()

    # -- import: forget the network, take it back by namespace/name --------------------------
    ws.run("state", "rm", "scs_network.web")
    assert "scs_network.web" not in ws.addresses()
    refused = ws.import_("scs_network.web", "web", check=False)
    assert refused.code == 1 and "The ID of a Network is namespace/name" in refused.output
    ws.import_("scs_network.web", f"{ns}/web")
    assert ws.state("scs_network.web")["metadata"]["uid"] == network.metadata.uid
    ws.assert_no_changes()

    # -- destroy: in reverse order of the references, each waits until the object is gone ----
    ws.destroy()
    assert admin.find(Server, "web-2", ns) is None
    assert admin.find(Subnet, "web-v4", ns) is None
    assert admin.find(Network, "web", ns) is None
    assert ws.addresses() == []

