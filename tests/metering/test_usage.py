"""Usage derived from the objects' lifecycle, end to end (issue 16, item 5).

A real ``scs serve`` on the embedded sandbox at speed 0, with the test clock
(``SCS_TEST_CLOCK_FILE``): a Server, a Volume and a Cluster are created at 10:00:00, resized
at 12:30:00 and deleted at 13:00:00 — with a ``kill -9`` of the server between the resize
and the delete — and the served records must match the expected seconds exactly. Then:
tenant isolation, read-only records, the summary and ``scs usage``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from central_api.machinery.clock import set_clock_file
from tests.server import REPO, ScsServer

pytestmark = pytest.mark.slow

T = TypeVar("T")
DAY = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
IAAS = "/apis/iaas.scs.community/v1alpha1/namespaces/acme"
KAAS = "/apis/kaas.scs.community/v1alpha1/namespaces/acme"
METERING = "/apis/metering.scs.community/v1alpha1"
CONFIG = {"providers": {"iaas": {"type": "sandbox", "speed": 0},
                        "kaas": {"type": "sandbox", "speed": 0}}}


def at(clock: str) -> float:
    h, m, s = (int(p) for p in clock.split(":"))
    return DAY + h * 3600 + m * 60 + s


def eventually(check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {check}")
        time.sleep(0.2)


class Api:
    def __init__(self, server: ScsServer, token: str = "") -> None:
        self.http = httpx.Client(base_url=server.url, verify=str(server.ca_file), timeout=30,
                                 headers={"Authorization": f"Bearer {token or server.token}"})

    def call(self, method: str, path: str, body: Any = None, code: int = 0,
             **kwargs: Any) -> Any:
        response = self.http.request(method, path, json=body, **kwargs)
        if code:
            assert response.status_code == code, response.text
        else:
            assert response.status_code < 300, response.text
        return response.json()

    def ready(self, path: str) -> dict[str, Any] | None:
        """The object once Ready for its current generation."""
        response = self.http.get(path)
        if response.status_code != 200:
            return None
        obj: dict[str, Any] = response.json()
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c["type"] == "Ready" and c["status"] == "True" \
                    and c.get("observedGeneration") == obj["metadata"]["generation"]:
                return obj
        return None

    def gone(self, path: str) -> bool:
        return self.http.get(path).status_code == 404

    def records(self, path: str = f"{METERING}/namespaces/acme/usagerecords",
                **params: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", path, params=params)["items"]
        return found


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clock") / "now"
    set_clock_file(str(path), at("09:50:00"))
    return path


@pytest.fixture(scope="module")
def server(clock: Path) -> Iterator[ScsServer]:
    scs = ScsServer(config=CONFIG, env={"SCS_TEST_CLOCK_FILE": str(clock)})
    try:
        yield scs.start(timeout=60)
    finally:
        scs.cleanup()


def onboard(api: Api, name: str) -> None:
    api.call("POST", "/apis/tenancy.scs.community/v1alpha1/tenants", {
        "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name}, "spec": {"displayName": name, "admins": [f"a@{name}.x"]}})
    eventually(lambda: api.ready(f"/apis/tenancy.scs.community/v1alpha1/tenants/{name}"))


def network(api: Api) -> None:
    """The network and subnet the metered Servers attach to (not metered themselves)."""
    api.call("POST", f"{IAAS}/networks", {"apiVersion": "iaas.scs.community/v1alpha1",
                                          "kind": "Network", "metadata": {"name": "net"}})
    api.call("POST", f"{IAAS}/subnets", {
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Subnet",
        "metadata": {"name": "net-v4"},
        "spec": {"networkRef": {"name": "net"}, "cidr": "10.0.0.0/24"}})
    eventually(lambda: api.ready(f"{IAAS}/subnets/net-v4"))


def create_all(api: Api) -> None:
    network(api)
    api.call("POST", f"{IAAS}/servers", {
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Server",
        "metadata": {"name": "web"}, "spec": {"flavor": "SCS-2V-4", "image": "ubuntu-24.04",
                                              "networks": [{"name": "net"}]}})
    api.call("POST", f"{IAAS}/volumes", {
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Volume",
        "metadata": {"name": "data"}, "spec": {"sizeGiB": 10}})
    api.call("POST", f"{KAAS}/clusters", {
        "apiVersion": "kaas.scs.community/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "k8s"}, "spec": {"kubernetesVersion": "1.33", "nodePools": [
            {"name": "general", "flavor": "SCS-4V-8", "replicas": 2}]}})


OBJECTS = (f"{IAAS}/servers/web", f"{IAAS}/volumes/data", f"{KAAS}/clusters/k8s")


def resize_all(api: Api) -> None:
    merge = {"headers": {"Content-Type": "application/merge-patch+json"}}
    for path, patch in zip(OBJECTS, (
            {"spec": {"flavor": "SCS-4V-8"}}, {"spec": {"sizeGiB": 20}},
            {"spec": {"nodePools": [{"name": "general", "flavor": "SCS-4V-8",
                                     "replicas": 3}]}}), strict=True):
        response = api.http.patch(path, content=json.dumps(patch), **merge)
        assert response.status_code == 200, response.text


def rows_by(records: list[dict[str, Any]], kind: str) -> list[tuple[str, str, int, str, str,
                                                                    float]]:
    return sorted((r["spec"]["part"], r["spec"]["flavor"] or r["spec"]["volumeType"],
                   r["spec"]["count"] if kind == "Cluster" else r["spec"]["sizeGiB"],
                   r["spec"]["start"][11:19], r["spec"]["end"][11:19], r["spec"]["seconds"])
                  for r in records if r["spec"]["kind"] == kind and not r["spec"]["open"])


def test_lifecycle_gives_exact_records_across_a_kill(server: ScsServer, clock: Path) -> None:
    api = Api(server)
    onboard(api, "acme")
    set_clock_file(str(clock), at("10:00:00"))
    create_all(api)
    for path in OBJECTS:
        eventually(lambda p=path: api.ready(p))  # type: ignore[misc]
    set_clock_file(str(clock), at("12:30:00"))
    resize_all(api)
    for path in OBJECTS:
        eventually(lambda p=path: api.ready(p))  # type: ignore[misc]
    server.kill()
    server.start(timeout=60)
    api = Api(server)
    set_clock_file(str(clock), at("13:00:00"))
    for path in OBJECTS:
        api.call("DELETE", path)
    for path in OBJECTS:
        eventually(lambda p=path: api.gone(p))  # type: ignore[misc]
    set_clock_file(str(clock), at("13:10:00"))

    def complete() -> list[dict[str, Any]] | None:
        found = api.records()
        done = [r for r in found if not r["spec"]["open"]]
        return found if len(done) == 4 + 4 + 8 else None

    records = eventually(complete, timeout=90)
    assert rows_by(records, "Server") == sorted([
        ("", "SCS-2V-4", 0, "10:00:00", "11:00:00", 3600.0),
        ("", "SCS-2V-4", 0, "11:00:00", "12:00:00", 3600.0),
        ("", "SCS-2V-4", 0, "12:00:00", "12:30:00", 1800.0),
        ("", "SCS-4V-8", 0, "12:30:00", "13:00:00", 1800.0)])
    assert rows_by(records, "Volume") == sorted([
        ("", "default", 10, "10:00:00", "11:00:00", 3600.0),
        ("", "default", 10, "11:00:00", "12:00:00", 3600.0),
        ("", "default", 10, "12:00:00", "12:30:00", 1800.0),
        ("", "default", 20, "12:30:00", "13:00:00", 1800.0)])
    periods = [("10:00:00", "11:00:00", 3600.0), ("11:00:00", "12:00:00", 3600.0),
               ("12:00:00", "12:30:00", 1800.0), ("12:30:00", "13:00:00", 1800.0)]
    assert rows_by(records, "Cluster") == sorted(
        [("control-plane", "SCS-2V-4", 1, *p) for p in periods]
        + [("pool/general", "SCS-4V-8", 2, *p) for p in periods[:3]]
        + [("pool/general", "SCS-4V-8", 3, *periods[3])])
    assert not [r for r in records if r["spec"]["open"]]
    assert {r["spec"]["tenant"] for r in records} == {"acme"}

    summary = api.call("POST", f"{METERING}/usagesummaries", {
        "apiVersion": "metering.scs.community/v1alpha1", "kind": "UsageSummary",
        "spec": {"tenant": "acme", "from": "2026-01-05", "to": "2026-01-06"}}, code=201)
    items = {(i["kind"], i["flavor"], i["unit"]): i["quantity"]
             for i in summary["status"]["items"]}
    assert items[("Server", "SCS-2V-4", "instance-hours")] == 2.5
    assert items[("Server", "SCS-4V-8", "instance-hours")] == 0.5
    assert items[("Server", "SCS-2V-4", "vCPU-hours")] == 5.0
    assert items[("Server", "SCS-4V-8", "RAM-GiB-hours")] == 4.0
    assert items[("Volume", "default", "volume-GiB-hours")] == 35.0
    assert items[("Cluster", "SCS-4V-8", "node-hours")] == 6.5
    assert items[("Cluster", "", "control-plane-hours")] == 3.0
    assert summary["status"]["derived"] == 16


def test_records_are_read_only(server: ScsServer) -> None:
    api = Api(server)
    path = f"{METERING}/namespaces/acme/usagerecords"
    record = {"apiVersion": "metering.scs.community/v1alpha1", "kind": "UsageRecord",
              "metadata": {"name": "forged"}, "spec": {"kind": "Server", "name": "x",
                                                       "uid": "x", "start": "", "end": "",
                                                       "seconds": 1, "hours": 0}}
    api.call("POST", path, record, code=405)
    existing = api.records()[0]["metadata"]["name"]
    api.call("DELETE", f"{path}/{existing}", code=405)
    api.call("PUT", f"{path}/{existing}", record, code=405)
    api.call("GET", f"{path}/{existing}")


def member_token(api: Api, tenant: str) -> str:
    """A ServiceAccount of ``tenant`` bound to ``member`` there, and its token."""
    base = f"/api/v1/namespaces/{tenant}/serviceaccounts"
    api.call("POST", base, {"metadata": {"name": "bob"}})
    api.call("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{tenant}/rolebindings", {
        "metadata": {"name": "bob-member"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "member"},
        "subjects": [{"kind": "ServiceAccount", "name": "bob", "namespace": tenant}]})
    answer = api.call("POST", f"{base}/bob/token", {"spec": {"expirationSeconds": 3600}})
    return str(answer["status"]["token"])


def test_a_member_of_another_tenant_sees_none_of_them(server: ScsServer) -> None:
    api = Api(server)
    onboard(api, "beta")
    beta = Api(server, member_token(api, "beta"))
    acme = Api(server, member_token(api, "acme"))
    assert acme.records()  # acme's own member reads them
    beta.call("GET", f"{METERING}/namespaces/acme/usagerecords", code=403)
    beta.call("GET", f"{METERING}/usagerecords", code=403)
    assert beta.records(f"{METERING}/namespaces/beta/usagerecords") == []
    review = {"apiVersion": "metering.scs.community/v1alpha1", "kind": "UsageSummary",
              "spec": {"tenant": "acme", "from": "2026-01-05", "to": "2026-01-06"}}
    beta.call("POST", f"{METERING}/usagesummaries", review, code=403)
    assert acme.call("POST", f"{METERING}/usagesummaries", review, code=201)["status"]["items"]
    acme.call("POST", f"{METERING}/namespaces/acme/usagerecords", {}, code=403)


def test_summary_refuses_a_bad_period(server: ScsServer) -> None:
    api = Api(server)
    bad = api.call("POST", f"{METERING}/usagesummaries", {
        "spec": {"tenant": "acme", "from": "2026-01-06", "to": "2026-01-05"}}, code=422)
    assert "spec.to" in json.dumps(bad)
    api.call("POST", f"{METERING}/usagesummaries", {
        "spec": {"tenant": "acme", "from": "soon", "to": "2026-01-05"}}, code=422)


def scs(server: ScsServer, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "central_api.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "KUBECONFIG": str(server.kubeconfig)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_scs_usage_csv_and_json(server: ScsServer) -> None:
    period = ["--tenant", "acme", "--from", "2026-01-05", "--to", "2026-01-06"]
    summary = json.loads(scs(server, "usage", *period, "--json"))
    assert {"kind": "Server", "flavor": "SCS-4V-8", "unit": "instance-hours",
            "quantity": 0.5} in summary["items"]
    rows = list(csv.DictReader(io.StringIO(scs(server, "usage", *period, "--records",
                                               "--csv"))))
    servers = sorted((r["start"][11:19], r["seconds"]) for r in rows if r["kind"] == "Server")
    assert servers == [("10:00:00", "3600.0"), ("11:00:00", "3600.0"),
                       ("12:00:00", "1800.0"), ("12:30:00", "1800.0")]
    records = json.loads(scs(server, "usage", *period, "--records", "--json"))
    assert len(records) == 16
