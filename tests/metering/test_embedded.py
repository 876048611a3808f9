"""The embedded default meters the sandbox's objects on real time (issue 16, item 7):
``scripts/serve`` shows usage for a running server within a minute."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.metering.test_usage import Api
from tests.server import ScsServer

pytestmark = pytest.mark.slow

IAAS = "/apis/iaas.scs.community/v1alpha1/namespaces/default"


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    scs = ScsServer()  # the embedded defaults: sandbox at speed 1, metering on
    try:
        yield scs.start(timeout=60)
    finally:
        scs.cleanup()


def test_a_running_server_shows_usage_within_a_minute(server: ScsServer) -> None:
    api = Api(server)
    api.call("POST", f"{IAAS}/networks", {"metadata": {"name": "net"}})
    api.call("POST", f"{IAAS}/subnets", {"metadata": {"name": "net-v4"}, "spec": {
        "networkRef": {"name": "net"}, "cidr": "10.1.0.0/24"}})
    api.call("POST", f"{IAAS}/servers", {"metadata": {"name": "web"}, "spec": {
        "flavor": "SCS-2V-4", "image": "ubuntu-24.04", "networks": [{"name": "net"}]}})
    started = time.monotonic()
    while time.monotonic() - started < 60:
        found = [r for r in api.records("/apis/metering.scs.community/v1alpha1/namespaces/"
                                        "default/usagerecords")
                 if r["spec"]["kind"] == "Server" and r["spec"]["name"] == "web"]
        if found and found[0]["spec"]["seconds"] > 0:
            break
        time.sleep(1)
    else:
        raise AssertionError("no usage record for the running server within a minute")
    spec = found[0]["spec"]
    assert (spec["flavor"], spec["tenant"]) == ("SCS-2V-4", "")
    units = {q["unit"] for q in spec["quantities"]}
    assert units == {"instance-hours", "vCPU-hours", "RAM-GiB-hours"}
