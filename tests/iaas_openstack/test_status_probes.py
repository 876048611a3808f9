"""The status page's OpenStack health probes against the harness cloud's real services.

One ``scs serve`` with ``providers.iaas: openstack`` (the operator's cloud) and the status
service, probing every second. What a user observes: each OpenStack probe reports up in
``/metrics`` and has its Component; a stopped service (the real process gone) opens exactly
one Incident on its Component after ``failureThreshold`` failures, with a public error text
that names no address or credential, and sets the Component's status; started again, the
same Incident ends and the status clears. A frozen service (SIGSTOP: it accepts connections
and never answers) fails the probe within ``timeoutSeconds`` instead of hanging it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from central_api.kinds.status import PROBE_LABEL, SOURCE_LABEL
from tests.iaas_openstack.conftest import Central, running_central
from tests.openstack import OpenStackCloud
from tests.polling import poll
from tests.server import ScsServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

STATUS = "/apis/status.scs.community/v1alpha1"
TIMEOUT_SECONDS = 5
PROBES = {"intervalSeconds": 1, "timeoutSeconds": TIMEOUT_SECONDS, "failureThreshold": 2,
          "recoveryThreshold": 2}
OPENSTACK_PROBES = ("compute", "network", "block-storage", "image", "load-balancer")
DISPLAY_NAMES = {"compute": "Compute", "network": "Network", "block-storage": "Block storage",
                 "image": "Images", "load-balancer": "Load balancers"}


@pytest.fixture(scope="module")
def probed(cloud: OpenStackCloud, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Central]:
    """The server, once every OpenStack probe is up and no probe incident is open.

    Waiting matters on the harness: the first round presents a new token to every service,
    and each validates it with Keystone (two workers, two cores): 3.5-9 s per probe were
    measured with the five at once, so a slow first answer may count twice (two deadlines)
    and open an incident that the next rounds end."""
    with running_central(cloud, tmp_path_factory.mktemp("probed"),
                         services=["tenancy", "iaas", "status"],
                         status={"probes": PROBES}) as started:
        wait_up(started.server, *OPENSTACK_PROBES)
        poll(lambda: not any(open_incidents(started.server, p) for p in OPENSTACK_PROBES),
             60, 0.5, "no open probe incident after the first rounds")
        yield started


def items(server: ScsServer, plural: str) -> list[dict[str, Any]]:
    code, body = server.request("GET", f"{STATUS}/{plural}")
    assert code == 200, body
    return list(body["items"])


def probe_incidents(server: ScsServer, probe: str) -> list[dict[str, Any]]:
    return [i for i in items(server, "incidents")
            if (i["metadata"].get("labels") or {}).get(PROBE_LABEL) == probe]


def open_incidents(server: ScsServer, probe: str) -> list[dict[str, Any]]:
    return [i for i in probe_incidents(server, probe) if not i["spec"].get("endedAt")]


def component_status(server: ScsServer, name: str) -> dict[str, Any]:
    code, body = server.request("GET", f"{STATUS}/components/{name}")
    assert code == 200, body
    return dict(body.get("status") or {})


def samples(server: ScsServer) -> dict[tuple[str, str, str], float]:
    """/metrics (admin token) as (sample name, probe, le) → value."""
    code, text = server.request("GET", "/metrics")
    assert code == 200, text
    return {(s.name, s.labels.get("probe", ""), s.labels.get("le", "")): s.value
            for family in text_string_to_metric_families(str(text)) for s in family.samples}


def probe_up(server: ScsServer, probe: str) -> float | None:
    return samples(server).get(("scs_probe_up", probe, ""))


def wait_up(server: ScsServer, *probes: str) -> dict[tuple[str, str, str], float]:
    return poll(lambda: (found := samples(server)) and all(
        found.get(("scs_probe_up", p, "")) == 1.0 for p in probes) and found,
        120, 0.5, f"probes {probes} up in /metrics")


def wait_operational(server: ScsServer, component: str) -> dict[str, Any]:
    return poll(lambda: (s := component_status(server, component)) is not None
                and not s.get("activeIncidents") and {"status": s}, 60, 0.5,
                f"{component} without active incidents")["status"]


def public_text_is_clean(cloud: OpenStackCloud, incident: dict[str, Any]) -> None:
    """An incident is public: no credential, no internal address, no exception chain."""
    text = json.dumps(incident)
    for secret in (cloud.state["admin_password"], cloud.state["service_password"]):
        assert secret not in text
    for leak in ("127.0.0.1", "http://", "HTTPConnectionPool", "Traceback"):
        assert leak not in text, text


def test_every_openstack_probe_is_up_and_has_its_component(probed: Central) -> None:
    first = wait_up(probed.server, *OPENSTACK_PROBES)
    listed = json.loads(probed.kubectl("get", "components", "-o", "json").stdout)["items"]
    names = {c["metadata"]["name"]: c["spec"]["displayName"] for c in listed}
    for probe in OPENSTACK_PROBES:
        assert names.get(probe) == DISPLAY_NAMES[probe]
        assert open_incidents(probed.server, probe) == []
        assert component_status(probed.server, probe).get("activeIncidents") in (None, [])
    time.sleep(3)
    later = wait_up(probed.server, *OPENSTACK_PROBES)
    for probe in OPENSTACK_PROBES:  # a warm probe is one cheap request, far below its deadline
        count = later[("scs_probe_duration_seconds_count", probe, "")] - \
            first[("scs_probe_duration_seconds_count", probe, "")]
        took = later[("scs_probe_duration_seconds_sum", probe, "")] - \
            first[("scs_probe_duration_seconds_sum", probe, "")]
        assert count >= 2 and took / count < 1.0, (probe, count, took)


@pytest.mark.parametrize(("service", "probe"), [("glance", "image"),
                                                ("cinder", "block-storage")])
def test_a_stopped_service_opens_one_incident_that_ends_when_it_is_back(
        probed: Central, cloud: OpenStackCloud, service: str, probe: str) -> None:
    server = probed.server
    wait_up(server, *OPENSTACK_PROBES)
    assert open_incidents(server, probe) == []
    earlier = len(probe_incidents(server, probe))
    cloud.stop_service(service)
    try:
        opened = poll(lambda: open_incidents(server, probe), 60, 0.5,
                      f"an open {probe} incident while {service} is stopped")
        assert len(opened) == 1
        incident = opened[0]
        assert incident["metadata"]["labels"][SOURCE_LABEL] == "probe"
        assert incident["spec"]["affects"] == [
            {"component": probe, "impactType": "unavailable", "severity": 100}]
        first = incident["spec"]["updates"][0]["description"]
        assert first == f"OpenStack {probe}: cannot connect (ECONNREFUSED)"
        public_text_is_clean(cloud, incident)
        status = poll(lambda: (s := component_status(server, probe)).get("activeIncidents")
                      and s, 30, 0.5, f"the {probe} Component's status")
        assert status["severityName"] == "broken" and status["severity"] == 100
        assert status["activeIncidents"] == [incident["metadata"]["name"]]
        assert probe_up(server, probe) == 0.0
        assert probe_up(server, "compute") == 1.0  # one service down is not the cloud down
        time.sleep(3)  # more failures of the same kind: no new incident, no new update
        again = probe_incidents(server, probe)
        assert len(again) == earlier + 1
        assert len(open_incidents(server, probe)[0]["spec"]["updates"]) == 1
    finally:
        cloud.start_service(service)
    ended = poll(lambda: [i for i in probe_incidents(server, probe)
                          if i["metadata"]["name"] == incident["metadata"]["name"]
                          and i["spec"].get("endedAt")], 60, 0.5, "endedAt set")
    assert ended[0]["spec"]["updates"][-1]["displayName"] == "Recovered"
    assert len(probe_incidents(server, probe)) == earlier + 1
    assert wait_operational(server, probe).get("severity") is None
    assert probe_up(server, probe) == 1.0


def test_a_frozen_service_fails_the_probe_within_its_timeout(
        probed: Central, cloud: OpenStackCloud) -> None:
    """SIGSTOP: Glance's socket still accepts connections, nothing answers them."""
    server = probed.server
    wait_up(server, "image")
    group = cloud.state["pids"]["glance"]
    before = samples(server)[("scs_probe_duration_seconds_count", "image", "")]
    frozen = time.monotonic()
    os.killpg(group, signal.SIGSTOP)
    try:
        opened = poll(lambda: open_incidents(server, "image"), 60, 0.5,
                      "an open image incident while Glance is frozen")
        took = time.monotonic() - frozen
        text = opened[0]["spec"]["updates"][0]["description"]
        assert text == f"no answer yet to a probe started more than {TIMEOUT_SECONDS} s ago"
        public_text_is_clean(cloud, opened[0])
        # The hanging request is one failure per deadline, not one per round: the second
        # failure in a row comes a deadline after the first, not at once.
        assert 2 * TIMEOUT_SECONDS - 1 <= took < 2 * TIMEOUT_SECONDS + 10, took
        time.sleep(TIMEOUT_SECONDS + 1)
        found = samples(server)
        assert found[("scs_probe_up", "image", "")] == 0.0
    finally:
        os.killpg(group, signal.SIGCONT)
    # The probe kept reporting while the request hung, none observed past the 10 s bucket.
    count = found[("scs_probe_duration_seconds_count", "image", "")]
    assert count - before >= 3, (before, count)
    assert found[("scs_probe_duration_seconds_bucket", "image", "10.0")] == count
    ended = poll(lambda: [i for i in probe_incidents(server, "image")
                          if i["metadata"]["name"] == opened[0]["metadata"]["name"]
                          and i["spec"].get("endedAt")], 60, 0.5, "endedAt set after SIGCONT")
    assert ended
    wait_operational(server, "image")
