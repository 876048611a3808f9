"""``controllers: external``: the API server runs no IaaS controllers, and ``scs controllers``
as a separate process reconciles through the public API with its own sandbox store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from central_api.providers.sandbox import inventory
from central_api.store.sqlite import SqliteStore
from tests.controllers.conftest import (
    REPO,
    Launcher,
    eventually,
    network,
    server,
    subnet,
    write_config,
)
from tests.server import free_port

pytestmark = pytest.mark.slow

USAGE = "/apis/metering.scs.community/v1alpha1"
NETWORK = """apiVersion: iaas.scs.community/v1alpha1
kind: Network
metadata: {name: outside, namespace: default}
spec: {description: reconciled by a separate process}
"""


def test_a_separate_scs_controllers_process_reconciles_what_an_external_mode_server_serves(
        launch: Launcher, tmp_path: Path) -> None:
    cluster = launch.start({"controllers": "external"})
    cluster.kubectl("apply", "-f", "-", input=NETWORK)
    time.sleep(2.0)
    untouched = cluster.get("networks", "default", "outside")
    assert untouched is not None
    assert not untouched.get("status", {}).get("conditions"), untouched.get("status")
    assert not untouched["metadata"].get("finalizers"), untouched["metadata"]
    assert cluster.metric("scs_controller_leader") == 0.0

    sandbox_db = tmp_path / "sandbox.db"
    config = write_config(tmp_path / "controllers.yaml", {"providers": {"iaas": {
        "type": "sandbox", "speed": 10, "store": f"sqlite:///{sandbox_db}"}}})
    log = (tmp_path / "controllers.log").open("wb")
    metrics_port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "central_api.cli", "controllers",
                             "--kubeconfig", str(cluster.server.kubeconfig),
                             "--config", str(config), "--log-level", "warning",
                             "--metrics-address", f"127.0.0.1:{metrics_port}"],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = cluster.wait_ready("networks", "default", "outside", timeout=20)
        assert ready["status"]["provider"] == "sandbox (simulated)"
        cluster.create("default", network("later"))
        cluster.wait_ready("networks", "default", "later", timeout=10)
        cluster.create("default", subnet("later-v4", "later"))
        cluster.create("default", server("metered", "later"))
        cluster.wait_ready("servers", "default", "metered", timeout=30)
        # Usage accounting needs the store, not a cloud: the API server does it, with the
        # controllers in another process.
        record = eventually(lambda: running_seconds(cluster.http, "metered"), timeout=60,
                            what="a usage record of the running server")
        assert record["spec"]["flavor"] == "SCS-1V-2"
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert "scs_controller_leader 1.0" in scraped, scraped[:2000]
        assert 'scs_controller_reconciles_total{kind="networks",result="success"}' in scraped
        assert 'scs_probe_up{probe="network"} 1.0' in scraped
    finally:
        proc.terminate()
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("scs controllers did not stop on SIGTERM")
        log.close()
    assert proc.poll() is not None and code is not None

    store = SqliteStore(sandbox_db)
    try:
        networks = asyncio.run(inventory(store))["Network"]
    finally:
        store.close()
    assert {n["ownerUID"] for n in networks} == {
        ready["metadata"]["uid"], cluster.get("networks", "default", "later")["metadata"]["uid"]}


def running_seconds(http: httpx.Client, server_name: str) -> dict[str, Any] | None:
    """The Server's usage record, once it counts some seconds."""
    answer = http.get(f"{USAGE}/namespaces/default/usagerecords")
    assert answer.status_code == 200, answer.text
    for record in answer.json()["items"]:
        spec = record["spec"]
        if (spec["kind"], spec["name"]) == ("Server", server_name) and spec["seconds"] > 0:
            return dict(record)
    return None
