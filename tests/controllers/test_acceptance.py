"""The issue's acceptance story with the real kubectl against ``scs serve`` on its embedded
defaults (sandbox provider at speed 1): apply the IaaS examples, wait for Ready, look at the
servers, delete everything, and find nothing left in the simulated cloud."""

from __future__ import annotations

import json

import pytest

from tests.controllers.conftest import EXAMPLES, Launcher

pytestmark = pytest.mark.slow

KINDS = "networks,subnets,routers,securitygroups,keypairs,images,servers,loadbalancers"


def test_kubectl_apply_of_the_examples_converges_and_delete_leaves_nothing_in_the_sandbox(
        launch: Launcher) -> None:
    cluster = launch.start()  # no --config: the defaults an operator gets

    cluster.kubectl("apply", "-f", str(EXAMPLES))
    waited = cluster.kubectl("wait", "--for=condition=Ready", "--all", KINDS, "--timeout=60s",
                             timeout=90)
    assert waited.stdout.count("condition met") == 10, waited.stdout

    wide = cluster.kubectl("get", "servers", "-o", "wide").stdout
    header, *rows = wide.strip().splitlines()
    for column in ("FLAVOR", "ARCH", "ADDRESSES", "READY"):
        assert column in header, wide
    by_name = {row.split()[0]: row for row in rows}
    assert "SCS-2V-4 " in by_name["web-1"] and "amd64" in by_name["web-1"], wide
    assert "SCS-2V-4_a" in by_name["web-2"] and "arm64" in by_name["web-2"], wide
    assert "debian-12" in by_name["custom-1"], "the IMAGE REF column"
    for row in by_name.values():
        assert "10.20.0." in row, wide

    listed = json.loads(cluster.kubectl("get", KINDS, "-o", "json").stdout)["items"]
    assert len(listed) == 10
    for item in listed:
        assert item["status"]["provider"] == "sandbox (simulated)", item
        assert item["status"]["backendID"], item

    inventory = cluster.inventory()
    assert sum(len(items) for items in inventory.values()) == 10, inventory

    cluster.kubectl("delete", "-f", str(EXAMPLES), "--timeout=60s", timeout=90)
    assert json.loads(cluster.kubectl("get", KINDS, "-o", "json").stdout)["items"] == []
    leftovers = {kind: items for kind, items in cluster.inventory().items() if items}
    assert leftovers == {}, f"the sandbox still holds {leftovers}"
