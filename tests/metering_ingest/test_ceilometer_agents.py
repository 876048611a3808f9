"""Debian 12's real Ceilometer (19, Zed) against the test OpenStack: its central polling
agent measures the cloud's images and volumes through their APIs, the notification agent
receives the samples over the cloud's RabbitMQ and its HTTP publisher posts them to the
Central API, which stores them under the tenant owning the project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.openstack.cloud import OpenStackCloud
from tests.openstack.fixture import shared_cloud
from tests.polling import poll
from tests.security.support import client
from tests.server import ScsServer

from .agents import CeilometerAgents
from .support import INGEST_ROLE, WEBHOOK, serve, server_ledger, token_with_role

pytestmark = pytest.mark.slow
"""Never skipped: `python -m tests.openstack install` (scripts/test) installs the agents with
the harness, and a missing install fails the test like any other harness package."""


@pytest.fixture(scope="session")
def cloud() -> Iterator[OpenStackCloud]:
    yield from shared_cloud()


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    yield from serve()


def test_real_ceilometer_samples_are_ingested(cloud: OpenStackCloud, server: ScsServer,
                                               tmp_path: Path) -> None:
    with client(server, server.token) as admin:
        token = token_with_role(admin, INGEST_ROLE)
    images = {image.id for image in cloud.connection().image.images()}
    assert images, "the test OpenStack has no image to measure"
    agents = CeilometerAgents(
        tmp_path / "ceilometer", f"rabbit://guest:guest@127.0.0.1:"
        f"{cloud.state['ports']['rabbitmq']}/", cloud.admin_auth, server.url + WEBHOOK,
        token, server.ca_file)
    ledger = server_ledger(server)
    agents.start()
    try:
        def measured() -> set[str] | None:
            found = {s.resource_id for s in ledger.samples() if s.counter_name == "image.size"}
            return found if images <= found else None

        poll(measured, 120, 1.0, "image.size samples of every image from Ceilometer")
    except Exception:
        print(agents.log("polling"), agents.log("notification"), sep="\n---\n")
        raise
    finally:
        agents.stop()
        ledger.close()
    sample = next(s for s in ledger.samples() if s.counter_name == "image.size")
    assert sample.unit == "B" and sample.volume > 0
    assert set(sample.raw) >= {"name", "type", "unit", "volume", "id", "resource_metadata"}
