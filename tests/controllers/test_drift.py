"""Drift repair: with ``resyncSeconds: 2`` every object is reconciled again every two seconds,
so a backend resource deleted behind the API's back is created again.

The out-of-band deletion uses the sandbox's own ``delete_behind_the_back`` on the server's
store, opened from the test process while the server runs (the sandbox's documented way to
play the user who goes to the cloud console directly)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from central_api.providers.sandbox import delete_behind_the_back
from tests.controllers.conftest import (
    Cluster,
    eventually,
    is_ready,
    launched,
    network,
    obj,
    server,
)

pytestmark = pytest.mark.slow

RESYNC_SECONDS = 2


@pytest.fixture(scope="module")
def resyncing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from launched(tmp_path_factory, "drift", {
        "resyncSeconds": RESYNC_SECONDS, "providers": {"iaas": {"type": "sandbox", "speed": 10}}})


def recreated(cluster: Cluster, plural: str, ns: str, name: str, old_id: str
              ) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        item = cluster.get(plural, ns, name)
        if is_ready(item) and item and item["status"]["backendID"] != old_id:
            return item
        return None

    return eventually(check, timeout=RESYNC_SECONDS * 4,
                      what=f"{plural}/{name} Ready on a new backend resource")


def backend_ids(cluster: Cluster, kind: str, ns: str) -> list[tuple[str, str]]:
    return [(i["id"], i["ownerUID"]) for i in cluster.inventory()[kind] if i["namespace"] == ns]


def test_a_network_deleted_behind_the_back_is_recreated_with_a_new_backend_id(
        resyncing: Cluster) -> None:
    cluster = resyncing
    ns = cluster.create_namespace("drift-net")
    cluster.create(ns, network("net"))
    before = cluster.wait_ready("networks", ns, "net")
    old_id = before["status"]["backendID"]

    assert delete_behind_the_back(cluster.store(), "Network", ns, old_id)
    assert old_id not in [i for i, _ in backend_ids(cluster, "Network", ns)]

    after = recreated(cluster, "networks", ns, "net", old_id)
    assert backend_ids(cluster, "Network", ns) == [(after["status"]["backendID"],
                                                    before["metadata"]["uid"])]


def test_a_server_deleted_behind_the_back_is_recreated_with_a_new_backend_id(
        resyncing: Cluster) -> None:
    cluster = resyncing
    ns = cluster.create_namespace("drift-srv")
    cluster.network_with_subnet(ns)
    cluster.create(ns, server("vm", "net"))
    before = cluster.wait_ready("servers", ns, "vm")
    old_id = before["status"]["backendID"]

    assert delete_behind_the_back(cluster.store(), "Server", ns, old_id)

    after = recreated(cluster, "servers", ns, "vm", old_id)
    assert after["status"]["addresses"], after["status"]
    assert backend_ids(cluster, "Server", ns) == [(after["status"]["backendID"],
                                                   before["metadata"]["uid"])]


def test_a_server_booted_from_an_image_ref_is_recreated_from_that_image(
        resyncing: Cluster) -> None:
    """The Image's ID is needed only to create the server, so it is resolved again when
    the server has to be created again."""
    cluster = resyncing
    ns = cluster.create_namespace("drift-img")
    cluster.network_with_subnet(ns)
    cluster.create(ns, obj("Image", "custom", {"source": {"url": "https://x.example/a.img"}}))
    image_id = cluster.wait_ready("images", ns, "custom")["status"]["backendID"]
    cluster.create(ns, obj("Server", "vm", {"flavor": "SCS-1V-2", "imageRef": {"name": "custom"},
                                            "networks": [{"name": "net"}]}))
    old_id = cluster.wait_ready("servers", ns, "vm")["status"]["backendID"]

    assert delete_behind_the_back(cluster.store(), "Server", ns, old_id)

    after = recreated(cluster, "servers", ns, "vm", old_id)
    record = next(r for r in cluster.inventory()["Server"]
                  if r["id"] == after["status"]["backendID"])
    assert record["desired"]["imageID"] == image_id
