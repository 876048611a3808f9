"""The whole monitoring path with Debian's real Prometheus and Alertmanager: Prometheus
scrapes the server's ``/metrics`` with a ServiceAccount token, an alert rule on one of its
series fires, Alertmanager posts the webhook to the server, and the status page shows an
incident — which ends when the alert resolves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.security.support import client, unique, wait_for
from tests.server import ScsServer

from .monitoring import Alertmanager, Prometheus, require_binaries
from .support import (
    FINGERPRINT_LABEL,
    IMPACT_TYPE,
    SOURCE_LABEL,
    admin,
    create_status_objects,
    editor_role,
    incidents,
    scraper_token,
    serve,
    token_with_role,
)

pytestmark = pytest.mark.slow

COMPONENT = unique("secrets-store")
RULE = {"alert": "SecretsWatched", "expr": 'scs_watches{resource="core/secrets"} > 0',
        "labels": {"component": COMPONENT, "severity": "critical"},
        "annotations": {"summary": "Someone watches all secrets",
                        "description": "A client holds a watch on every Secret."}}


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    require_binaries()
    yield from serve()


@pytest.fixture(scope="module")
def monitoring(server: ScsServer) -> Iterator[tuple[Prometheus, Alertmanager]]:
    with admin(server) as http:
        create_status_objects(http, COMPONENT)
        receiver_token = token_with_role(http, editor_role(http))
        scrape_token = scraper_token(http)
    alertmanager = Alertmanager(server, receiver_token)
    prometheus = Prometheus(server, scrape_token, alertmanager)
    try:
        alertmanager.start()
        prometheus.set_rules([RULE])
        prometheus.start()
        yield prometheus, alertmanager
    finally:
        prometheus.stop()
        alertmanager.stop()


def scraped(prometheus: Prometheus) -> bool:
    targets = prometheus.get("/api/v1/targets")["data"]["activeTargets"]
    return bool(targets) and all(t["health"] == "up" for t in targets)


def opened(http: httpx.Client) -> dict[str, Any] | None:
    found = [i for i in incidents(http) if i["metadata"].get("labels", {}).get(SOURCE_LABEL)
             == "alertmanager" and i["spec"]["affects"]
             and i["spec"]["affects"][0]["component"] == COMPONENT]
    return found[0] if found else None


def test_firing_rule_opens_an_incident_and_resolving_ends_it(
        server: ScsServer, monitoring: tuple[Prometheus, Alertmanager]) -> None:
    prometheus, alertmanager = monitoring
    wait_for(lambda: scraped(prometheus), timeout=30, interval=0.5,
             what=f"Prometheus scraping /metrics:\n{prometheus.log_tail()}")
    with admin(server) as http:
        assert opened(http) is None
        with client(server, server.token) as watcher, watcher.stream(
                "GET", "/api/v1/secrets", params={"watch": "1"}) as stream:
            assert stream.status_code == 200
            incident = wait_for(lambda: opened(http), timeout=60, interval=0.5,
                                what=f"the incident:\n{alertmanager.log_tail()}")
        fired = alertmanager.get("/api/v2/alerts?active=true")
        assert [a["fingerprint"] for a in fired if a["labels"]["alertname"] ==
                "SecretsWatched"] == [incident["metadata"]["labels"][FINGERPRINT_LABEL]]
        assert incident["spec"]["displayName"] == "Someone watches all secrets"
        assert incident["spec"]["affects"] == [
            {"component": COMPONENT, "impactType": IMPACT_TYPE, "severity": 100}]
        assert incident["spec"].get("endedAt") is None
        name = incident["metadata"]["name"]

        def ended() -> dict[str, Any] | None:
            current = [i for i in incidents(http) if i["metadata"]["name"] == name]
            return current[0] if current and current[0]["spec"].get("endedAt") else None

        closed = wait_for(ended, timeout=60, interval=0.5,
                          what=f"the incident to end:\n{alertmanager.log_tail()}")
        assert closed["spec"]["updates"][-1]["displayName"] == "Resolved"
        assert len([i for i in incidents(http) if i["metadata"].get("labels", {}).get(
            SOURCE_LABEL) == "alertmanager"]) == 1
