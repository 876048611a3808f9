"""Helpers of the Alertmanager-receiver and ``/metrics`` suites: a real ``scs serve`` with
the status service, the status objects alerts refer to, and tokens of ServiceAccounts
holding just the roles a receiver or a scraper needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from tests.security.support import (
    RBAC,
    bind,
    client,
    create_service_account,
    created,
    request_token,
    sa_subject,
    unique,
)
from tests.server import ScsServer

STATUS = "/apis/status.scs.community/v1alpha1"
INCIDENTS = f"{STATUS}/incidents"
WEBHOOK = "/webhooks/alertmanager"
SOURCE_LABEL = "status.scs.community/source"
FINGERPRINT_LABEL = "status.scs.community/alert-fingerprint"
EDITOR_ROLE = "status-editor"
"""The built-in role of status writers; :func:`editor_role` stands in while it is absent."""
IMPACT_TYPE = "unavailable"


def start(config: dict[str, Any] | None = None) -> ScsServer:
    """A server with the status service on (the default) and Tenants as plain objects."""
    server = ScsServer(config={"identity": {"type": "none"}, **(config or {})})
    try:
        return server.start()
    except Exception:
        server.cleanup()
        raise


def serve(config: dict[str, Any] | None = None) -> Iterator[ScsServer]:
    server = start(config)
    try:
        yield server
    finally:
        server.cleanup()


def admin(server: ScsServer) -> httpx.Client:
    return client(server, server.token)


def editor_role(http: httpx.Client) -> str:
    """``status-editor`` if the server has it; else a ClusterRole with what the receiver
    needs (create and update incidents), so this suite runs before the role exists."""
    if http.get(f"{RBAC}/clusterroles/{EDITOR_ROLE}").status_code == 200:
        return EDITOR_ROLE
    name = "status-alert-writer"
    if http.get(f"{RBAC}/clusterroles/{name}").status_code != 200:
        created(http.post(f"{RBAC}/clusterroles", json={
            "metadata": {"name": name},
            "rules": [{"apiGroups": ["status.scs.community"], "resources": ["incidents"],
                       "verbs": ["get", "list", "watch", "create", "update"]}]}),
                "the alert writer role")
    return name


def token_with_role(http: httpx.Client, role: str, who: str = "alertmanager") -> str:
    """A TokenRequest token of a new ServiceAccount in ``default`` bound to ``role``."""
    name = unique(who)
    create_service_account(http, "default", name)
    if role:
        bind(http, role, sa_subject("default", name))
    return request_token(http, "default", name)


def scraper_token(http: httpx.Client) -> str:
    """A token that may read ``/metrics`` and nothing else (what Prometheus is given)."""
    role = unique("metrics-reader")
    created(http.post(f"{RBAC}/clusterroles", json={
        "metadata": {"name": role},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}), "metrics role")
    return token_with_role(http, role, "prometheus")


def create_status_objects(http: httpx.Client, component: str) -> None:
    """The Component alerts name and the ImpactType they use (kept if already there)."""
    for plural, name, spec in (
            ("components", component, {"displayName": f"Component {component}"}),
            ("impacttypes", IMPACT_TYPE, {"displayName": "Unavailable"})):
        response = http.post(f"{STATUS}/{plural}", json={"metadata": {"name": name},
                                                          "spec": spec})
        assert response.status_code in (201, 409), response.text


def incidents(http: httpx.Client, fingerprint: str | None = None) -> list[dict[str, Any]]:
    params = {"labelSelector": f"{FINGERPRINT_LABEL}={fingerprint}"} if fingerprint else {}
    response = http.get(INCIDENTS, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def alert(fingerprint: str, component: str, status: str = "firing", *,
          starts_at: str = "2030-01-02T03:04:05.123456789Z",
          ends_at: str = "0001-01-01T00:00:00Z", severity: str = "warning",
          summary: str = "Block storage is down", description: str = "Volumes hang.",
          **labels: str) -> dict[str, Any]:
    """One alert as Alertmanager 0.25 writes it into a webhook notification."""
    return {"status": status,
            "labels": {"alertname": "BackendDown", "component": component,
                       "severity": severity, **labels},
            "annotations": {"summary": summary, "description": description},
            "startsAt": starts_at, "endsAt": ends_at,
            "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": fingerprint}


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    """A version 4 webhook payload around ``alerts``."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {"version": "4", "groupKey": '{}:{alertname="BackendDown"}', "truncatedAlerts": 0,
            "status": "firing" if firing else "resolved", "receiver": "scs",
            "groupLabels": {"alertname": "BackendDown"}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
            "alerts": list(alerts)}


def fingerprint() -> str:
    """A fresh 16-hex-digit fingerprint, as Alertmanager computes them."""
    import uuid

    return uuid.uuid4().hex[:16]
