"""``/metrics`` of a real server after some traffic: requests, latencies, open watches,
store health and probe results, with labels from a bounded set."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.security.support import client, unique, wait_for
from tests.server import ScsServer

from .support import STATUS, admin, scraper_token, serve

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    yield from serve()


@pytest.fixture(scope="module")
def http(server: ScsServer) -> Iterator[httpx.Client]:
    with admin(server) as http:
        yield http


def scrape(http: httpx.Client) -> tuple[str, Samples]:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_verb_group_resource_and_code_class(
        http: httpx.Client) -> None:
    _, before = scrape(http)
    for _ in range(3):
        assert http.get(f"{STATUS}/components").status_code == 200
    assert http.get(f"{STATUS}/components/{unique('missing')}").status_code == 404
    _, after = scrape(http)
    labels = {"api": "kube", "group": "status.scs.community", "resource": "components"}
    assert value(after, "scs_api_requests_total", **labels, verb="list", code="2xx") - \
        value(before, "scs_api_requests_total", **labels, verb="list", code="2xx") == 3
    assert value(after, "scs_api_requests_total", **labels, verb="get", code="4xx") - \
        value(before, "scs_api_requests_total", **labels, verb="get", code="4xx") == 1
    assert value(after, "scs_api_request_duration_seconds_count", **labels, verb="list") >= 3


def test_labels_never_carry_names_or_made_up_paths(http: httpx.Client) -> None:
    secret_name = unique("never-a-label")
    http.get(f"/apis/made.up.example/v1/{secret_name}")
    http.get(f"/api/v1/namespaces/{secret_name}/configmaps/{secret_name}")
    text, samples = scrape(http)
    assert secret_name not in text
    assert "made.up.example" not in text
    assert value(samples, "scs_api_requests_total", api="kube", verb="list", group="unknown",
                 resource="unknown", code="4xx") >= 1


def test_open_watches_are_counted_per_resource(server: ScsServer,
                                               http: httpx.Client) -> None:
    def watches() -> float:
        return value(scrape(http)[1], "scs_watches", resource="core/secrets")

    baseline = watches()
    with client(server, server.token) as watcher, watcher.stream(
            "GET", "/api/v1/secrets", params={"watch": "1"}) as stream:
        assert stream.status_code == 200
        wait_for(lambda: watches() == baseline + 1, what="the watch counted")
    wait_for(lambda: watches() == baseline, what="the closed watch uncounted")


def test_store_health_is_reported(http: httpx.Client) -> None:
    _, samples = scrape(http)
    assert value(samples, "scs_store_up") == 1
    assert value(samples, "scs_store_last_success_timestamp_seconds") > 1.6e9
    assert value(samples, "scs_store_roundtrip_seconds_count") >= 1


def test_probe_and_reconcile_series_are_exposed(http: httpx.Client) -> None:
    text, _ = scrape(http)
    for family in ("scs_probe_up gauge", "scs_probe_duration_seconds histogram",
                   "scs_controller_reconciles_total counter"):
        assert f"# TYPE {family}" in text


def test_metrics_need_a_token_with_the_permission(server: ScsServer,
                                                  http: httpx.Client) -> None:
    with client(server, None) as anonymous:
        assert anonymous.get("/metrics").status_code == 401
    with client(server, scraper_token(http)) as prometheus:
        assert prometheus.get("/metrics").status_code == 200
        assert prometheus.get("/api/v1/namespaces/default/secrets").status_code == 403
