"""Health probes on a real ``scs serve``: the sandbox backends of the embedded default, and
the real Keystone of the test harness stopped and started again.

What a user observes: the probed Components exist (``kubectl get components``), the probes
report in ``/metrics``, and an outage shows as an Incident (KRM read) that opens after
``failureThreshold`` failures, sets the Component's status, and ends (``endedAt``) after
``recoveryThreshold`` successes. The sandbox outage is the simulated cloud's own fault
injection (a lasting fault record in the server's store, as the sandbox documents it).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from central_api.kinds.status import PROBE_LABEL, SOURCE_LABEL
from central_api.providers.sandbox import clear_faults, inject_fault
from central_api.store.sqlite import SqliteStore
from tests.keystone import KeystoneServer
from tests.polling import poll
from tests.server import ScsServer

STATUS = "/apis/status.scs.community/v1alpha1"
SANDBOX_PROBES = {"store", "identity", "compute", "network", "block-storage", "image",
                  "load-balancer", "kaas"}
FAST = {"intervalSeconds": 1, "timeoutSeconds": 2, "failureThreshold": 2,
        "recoveryThreshold": 2}


def items(server: ScsServer, plural: str) -> list[dict[str, Any]]:
    code, body = server.request("GET", f"{STATUS}/{plural}")
    assert code == 200, body
    return list(body["items"])


def probe_incidents(server: ScsServer, probe: str) -> list[dict[str, Any]]:
    return [i for i in items(server, "incidents")
            if (i["metadata"].get("labels") or {}).get(PROBE_LABEL) == probe]


def component(server: ScsServer, name: str) -> dict[str, Any]:
    code, body = server.request("GET", f"{STATUS}/components/{name}")
    assert code == 200, body
    return dict(body)


def metrics(server: ScsServer) -> str:
    code, body = server.request("GET", "/metrics")
    assert code == 200
    return str(body)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ScsServer]:
    server = ScsServer(config={"status": {"probes": FAST}})
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def test_embedded_default_probes_every_sandbox_backend_into_components(
        sandbox: ScsServer) -> None:
    names = poll(lambda: SANDBOX_PROBES <= {c["metadata"]["name"]
                                           for c in items(sandbox, "components")} or None,
                 30, 0.3, "the probed Components")
    assert names
    text = poll(lambda: (t := metrics(sandbox)) and all(
        f'scs_probe_up{{probe="{p}"}} 1.0' in t for p in SANDBOX_PROBES) and t,
        30, 0.5, "every probe up in /metrics")
    assert 'scs_probe_duration_seconds_count{probe="store"}' in text
    assert "unavailable" in {i["metadata"]["name"] for i in items(sandbox, "impacttypes")}
    assert {"operational", "limited", "broken"} <= {
        s["metadata"]["name"] for s in items(sandbox, "severities")}


def test_kubectl_lists_the_probed_components(sandbox: ScsServer) -> None:
    poll(lambda: "compute" in {c["metadata"]["name"] for c in items(sandbox, "components")}
         or None, 30, 0.3, "the compute Component")
    done = subprocess.run(["kubectl", "get", "components"], capture_output=True, text=True,
                          env={"KUBECONFIG": str(sandbox.kubeconfig), "PATH": "/usr/bin:/bin"
                               ":/usr/local/bin"}, timeout=60, check=False)
    if done.returncode == 127 or "not found" in done.stderr and not done.stdout:
        pytest.skip("kubectl is not installed here")
    assert done.returncode == 0, done.stderr
    assert "Compute" in done.stdout and "block-storage" in done.stdout


def test_a_lasting_sandbox_outage_opens_an_incident_and_recovery_ends_it(
        sandbox: ScsServer) -> None:
    store = SqliteStore(sandbox.data_dir / "state.db")
    fault = f"network-down-{uuid.uuid4().hex[:6]}"
    inject_fault(store, fault, kind="Network", operation="find",
                 error="BackendUnavailable", message="network outage drill")
    try:
        opened = poll(lambda: [i for i in probe_incidents(sandbox, "network")
                               if not i["spec"].get("endedAt")], 30, 0.3,
                      "an open network incident")
        assert len(opened) == 1
        incident = opened[0]
        assert incident["metadata"]["labels"][SOURCE_LABEL] == "probe"
        assert incident["spec"]["affects"] == [
            {"component": "network", "impactType": "unavailable", "severity": 100}]
        assert "network outage drill" in incident["spec"]["updates"][0]["description"]
        status = poll(lambda: component(sandbox, "network").get("status", {}).get(
            "activeIncidents") and component(sandbox, "network")["status"], 30, 0.3,
            "the network Component's status")
        assert status["severity"] == 100 and status["severityName"] == "broken"
        assert status["activeIncidents"] == [incident["metadata"]["name"]]
        assert 'scs_probe_up{probe="network"} 0.0' in metrics(sandbox)
        time.sleep(3)  # more failures of the same error add no update, open nothing new
        assert len(probe_incidents(sandbox, "network")) == 1
        assert len(probe_incidents(sandbox, "network")[0]["spec"]["updates"]) == 1
    finally:
        clear_faults(store, fault)
    ended = poll(lambda: [i for i in probe_incidents(sandbox, "network")
                          if i["spec"].get("endedAt")], 30, 0.3, "the incident ended")
    assert ended[0]["metadata"]["name"] == incident["metadata"]["name"]
    assert ended[0]["spec"]["updates"][-1]["displayName"] == "Recovered"
    status = poll(lambda: (s := component(sandbox, "network").get("status", {})) and
                  not s.get("activeIncidents") and s or None, 30, 0.3,
                  "the network Component operational again")
    assert status.get("severity") is None
    store.close()


@pytest.mark.slow
def test_stopping_the_real_keystone_opens_an_identity_incident_until_it_is_back(
        keystone: KeystoneServer, tmp_path: Any) -> None:
    server = ScsServer(data_dir=tmp_path / "data", config={
        "services": ["tenancy", "iaas", "status"],
        "providers": {"iaas": {"type": "none"}},
        "identity": {"type": "keystone", "authURL": keystone.auth_url, "username": "admin",
                     "password": keystone.admin_password, "userDomain": "Default",
                     "systemScope": True, "region": keystone.region},
        "status": {"probes": {**FAST, "components": {"identity": "keystone"}}}})
    (tmp_path / "data").mkdir()
    server.start()
    try:
        poll(lambda: 'scs_probe_up{probe="identity"} 1.0' in metrics(server) or None,
             30, 0.5, "the identity probe up")
        assert component(server, "keystone")["spec"]["displayName"] == "Identity (Keystone)"
        assert probe_incidents(server, "identity") == []
        keystone.stop()
        try:
            opened = poll(lambda: probe_incidents(server, "identity"), 60, 0.5,
                          "an identity incident while Keystone is down")
            assert opened[0]["spec"]["affects"][0]["component"] == "keystone"
            assert opened[0]["spec"].get("endedAt") is None
            assert keystone.admin_password not in str(opened[0])
            assert 'scs_probe_up{probe="identity"} 0.0' in metrics(server)
        finally:
            keystone.start()
        ended = poll(lambda: [i for i in probe_incidents(server, "identity")
                              if i["spec"].get("endedAt")], 60, 0.5, "endedAt set")
        assert len(probe_incidents(server, "identity")) == 1
        assert ended[0]["metadata"]["name"] == opened[0]["metadata"]["name"]
    finally:
        server.cleanup()
