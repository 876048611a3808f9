"""Who may read and write the status page: public reads, token + status-editor for writes
(the same RBAC as kubectl), anonymousRead off, CORS for configured front ends, audit."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.security.support import client, wait_for
from tests.server import ScsServer
from tests.status.conftest import (
    ORIGIN,
    PREFIX,
    STATUS_CONFIG,
    StatusApi,
    bind_cluster_role,
    service_account_token,
)

STATUS_KRM = "/apis/status.scs.community/v1alpha1"


def test_anonymous_reads_but_cannot_write(anonymous: StatusApi, kube: httpx.Client) -> None:
    assert anonymous.get("/components").status_code == 200
    assert anonymous.get("/severities").status_code == 200
    refused = anonymous.post("/components", {"displayName": "Sneaky"})
    assert refused.status_code == 401
    assert "Sneaky" not in kube.get(f"{STATUS_KRM}/components").text


def test_a_bad_token_is_refused_even_for_reads(server: ScsServer) -> None:
    assert StatusApi(server, "not-a-token").get("/components").status_code == 401


def test_writes_need_the_status_editor_role(server: ScsServer, kube: httpx.Client) -> None:
    token = service_account_token(kube, "status-writer")
    writer = StatusApi(server, token)
    refused = writer.post("/components", {"displayName": "Network"})
    assert refused.status_code == 403
    assert 'cannot create resource "components"' in refused.json()["message"]
    bind_cluster_role(kube, "status-editor", "status-writer")
    cid = writer.create("/components", {"displayName": "Network"})
    assert writer.patch(f"/components/{cid}", {"labels": {"az": "2"}}).status_code == 204
    assert writer.delete(f"/components/{cid}").status_code == 204


def test_signed_in_users_read_status_kinds_with_kubectl_but_not_write(
        server: ScsServer, kube: httpx.Client) -> None:
    token = service_account_token(kube, "status-reader-only")
    with client(server, token) as http:
        assert http.get(f"{STATUS_KRM}/components").status_code == 200
        assert http.get(f"{STATUS_KRM}/incidents").status_code == 200
        assert http.post(f"{STATUS_KRM}/components", json={
            "metadata": {"name": "nope"}, "spec": {}}).status_code == 403


def test_writes_are_audited_with_kind_and_verb(server: ScsServer, admin: StatusApi) -> None:
    admin.create("/impacttypes", {"displayName": "Audited impact"})

    def audited() -> bool | None:
        events = [json.loads(line) for line in server.log_path.read_text().splitlines()
                  if line.startswith("{") and '"auditID"' in line]
        return any(e["path"] == f"{PREFIX}/impacttypes" and e["verb"] == "create"
                   and e["resource"] == "impacttypes"
                   and e["apiGroup"] == "status.scs.community" and e["code"] == 201
                   and e["user"] == "scs:bootstrap-admin" for e in events) or None

    wait_for(audited, timeout=10, what="the audit event of the write")


def test_cors_preflight_for_a_configured_origin_only(server: ScsServer) -> None:
    with client(server, None) as http:
        allowed = http.options(f"{PREFIX}/incidents", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers
        get = http.get(f"{PREFIX}/components", headers={"Origin": ORIGIN})
        assert get.headers["access-control-allow-origin"] == ORIGIN
        other = http.options(f"{PREFIX}/incidents", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert not any(h.startswith("access-control-") for h in other.headers)
        get = http.get(f"{PREFIX}/components", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in get.headers


@pytest.fixture(scope="module")
def private_server() -> Iterator[ScsServer]:
    config = {**STATUS_CONFIG, "status": {"anonymousRead": False, "pathPrefix": "/status"}}
    srv = ScsServer(config=config).start()
    try:
        yield srv
    finally:
        srv.cleanup()


def test_without_anonymous_read_every_request_needs_a_token(private_server: ScsServer
                                                            ) -> None:
    assert StatusApi(private_server, None).get("/components").status_code == 401
    with client(private_server, private_server.token) as kube:
        token = service_account_token(kube, "page-reader")
    assert StatusApi(private_server, token).get("/components").status_code == 200
    assert StatusApi(private_server, token).post("/components", {"displayName": "x"}
                                                 ).status_code == 403


def test_head_answers_like_get_without_a_body(server: ScsServer) -> None:
    """Uptime checkers probe a status page with HEAD."""
    with client(server, None) as anonymous:
        got = anonymous.get(f"{PREFIX}/components")
        head = anonymous.head(f"{PREFIX}/components")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert anonymous.head(f"{PREFIX}/nowhere").status_code == 404
