"""Cluster admission and maintenance end to end on the sandbox KaaS: the real ``scs serve``,
the real kubectl.

- A tenant's Clusters count against its ``clusters``, ``cores`` and ``ramMiB`` quotas: an
  over-quota create or scale-up is refused (403 "exceeded quota", the field that asks for
  too much) and nothing is stored; deleting a cluster frees its share.
- A new Cluster without ``spec.oidc`` trusts the tenant's identity provider.
- Patch updates happen only in the maintenance window: the sandbox offers 1.33.9 and
  1.33.10, so a 1.33.9 cluster whose window is open now moves to 1.33.10, and one whose
  window is closed stays and says when it will move.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.controllers.conftest import Cluster as Harness
from tests.controllers.conftest import condition, eventually, launched, unique
from tests.kaas.test_clusters import KAAS, apply, cluster, get, patch, settled

pytestmark = pytest.mark.slow

TENANTS = "/apis/tenancy.scs.community/v1alpha1/tenants"
CONFIG: dict[str, Any] = {"services": ["tenancy", "iaas", "kaas"],
                          "providers": {"iaas": {"type": "sandbox", "speed": 10},
                                        "kaas": {"type": "sandbox", "speed": 2}}}
IDP = "https://idp.example.org/realms/acme"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from launched(tmp_path_factory, "kaas-admission", CONFIG)


def tenant(harness: Harness, prefix: str, **spec: Any) -> str:
    """A Ready tenant; its namespace has its name."""
    name = unique(prefix)
    created = harness.http.post(TENANTS, json={
        "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name}, "spec": {"displayName": name, **spec}})
    assert created.status_code == 201, created.text
    eventually(lambda: (condition(harness.http.get(f"{TENANTS}/{name}").json(), "Ready")
                        or {}).get("status") == "True", timeout=30, what=f"tenant {name} Ready")
    return name


def post(harness: Harness, ns: str, body: dict[str, Any]) -> Any:
    return harness.http.post(f"{KAAS}/namespaces/{ns}/clusters", json=body)


def small(name: str, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    """A control-plane node and ``replicas`` SCS-2V-4 nodes: 2 + 2 × replicas cores."""
    return cluster(name, nodePools=[{"name": "general", "flavor": "SCS-2V-4",
                                     "replicas": replicas}], **spec)


def test_over_quota_creates_and_scale_ups_are_refused_with_the_field_and_nothing_stored(
        harness: Harness) -> None:
    ns = tenant(harness, "quota", quotas={"clusters": 3, "cores": 16, "ramMiB": 65536})
    apply(harness, ns, small("c1"))  # 6 cores, 12 GiB
    burst = cluster("c2", nodePools=[{"name": "burst", "flavor": "SCS-2V-4",
                                      "autoscaling": {"min": 1, "max": 6}}])  # 14 cores
    refused = post(harness, ns, burst)
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["reason"] == "Forbidden"
    assert "exceeded quota" in body["message"]
    assert "requested: cores=14, used: cores=6, limited: cores=16" in body["message"]
    assert [c["field"] for c in body["details"]["causes"]] == \
        ["spec.nodePools[0].autoscaling.max"]
    out = apply(harness, ns, burst, check=False)
    assert "exceeded quota" in out and "spec.nodePools[0].autoscaling.max" in out, out
    assert get(harness, ns, "c2") is None

    before = get(harness, ns, "c1")
    out = patch(harness, ns, "c1", [{"op": "replace", "path": "/spec/nodePools/0/replicas",
                                     "value": 8}], check=False)  # 18 cores
    assert "exceeded quota" in out and "spec.nodePools[0].replicas" in out, out
    after = get(harness, ns, "c1")
    assert before and after and after["spec"] == before["spec"] and \
        after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    patch(harness, ns, "c1", [{"op": "replace", "path": "/spec/nodePools/0/replicas",
                               "value": 7}])  # 16 cores: exactly the quota


def test_a_deleted_cluster_frees_its_share_of_the_quota(harness: Harness) -> None:
    ns = tenant(harness, "free", quotas={"clusters": 2})
    apply(harness, ns, small("a", 1))
    apply(harness, ns, small("b", 1))
    refused = post(harness, ns, small("c", 1))
    assert refused.status_code == 403, refused.text
    assert "requested: clusters=1, used: clusters=2, limited: clusters=2" in \
        refused.json()["message"]
    assert [c["field"] for c in refused.json()["details"]["causes"]] == ["metadata.name"]
    harness.kubectl("delete", "-n", ns, "clusters.kaas.scs.community", "b", "--wait=true",
                    "--timeout=60s")
    assert get(harness, ns, "b") is None
    created = eventually(lambda: (r := post(harness, ns, small("c", 1))).status_code == 201
                         and r, timeout=10, what="room for c once b is gone")
    assert created.json()["metadata"]["name"] == "c"


def test_racing_creates_do_not_pass_beyond_the_quota(harness: Harness) -> None:
    ns = tenant(harness, "race", quotas={"clusters": 3})
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: post(harness, ns, small(f"r{i}", 1)).status_code,
                              range(8)))
    assert sorted(codes) == [201] * 3 + [403] * 5, codes
    listed = harness.http.get(f"{KAAS}/namespaces/{ns}/clusters").json()["items"]
    assert len(listed) == 3


def test_a_new_cluster_trusts_the_tenants_identity_provider(harness: Harness) -> None:
    ns = tenant(harness, "fed", federation={
        "issuerURL": IDP, "clientID": "scs", "claimMappings": {"username": "email"}})
    apply(harness, ns, small("c1", 1))
    found = get(harness, ns, "c1")
    assert found and found["spec"]["oidc"] == {
        "issuerURL": IDP, "clientID": "scs", "usernameClaim": "email", "groupsClaim": "groups",
        "usernamePrefix": f"{ns}:", "groupsPrefix": f"{ns}:"}
    own = {"issuerURL": "https://login.example.com", "clientID": "k8s"}
    apply(harness, ns, small("c2", 1, oidc=own))
    assert get(harness, ns, "c2")["spec"]["oidc"]["issuerURL"] == own["issuerURL"]  # type: ignore[index]
    plain = harness.create_namespace("nofed")
    apply(harness, plain, small("c3", 1))
    assert "oidc" not in get(harness, plain, "c3")["spec"]  # type: ignore[index]


def window(start: dt.datetime, hours: int, zone: int = 1) -> dict[str, str]:
    """A Gardener time window of ``hours`` from ``start``, written in UTC+``zone``."""
    tz = dt.timezone(dt.timedelta(hours=zone))
    fmt = f"%H%M%S+{zone:02}00"
    return {"begin": start.astimezone(tz).strftime(fmt),
            "end": (start + dt.timedelta(hours=hours)).astimezone(tz).strftime(fmt)}


def test_patch_updates_wait_for_the_maintenance_window(harness: Harness) -> None:
    ns = harness.create_namespace("maint")
    now = dt.datetime.now(dt.UTC)
    open_now = window(now - dt.timedelta(hours=1), 2)
    closed = window(now + dt.timedelta(hours=3), 1)
    apply(harness, ns, small("open", 1, maintenance={"timeWindow": open_now}))
    apply(harness, ns, small("closed", 1, maintenance={"timeWindow": closed}))
    apply(harness, ns, small("pinned", 1, maintenance={
        "timeWindow": open_now, "autoUpdate": {"kubernetesVersion": False}}))
    apply(harness, ns, small("default", 1))

    moved = settled(harness, ns, "open", timeout=60, kubernetesVersion="1.33.10")
    assert moved["spec"]["kubernetesVersion"] == "1.33.9"  # the spec stays the user's
    waiting = settled(harness, ns, "closed", kubernetesVersion="1.33.9")
    text = f"{closed['begin'][:2]}:{closed['begin'][2:4]}"
    assert waiting["status"]["maintenance"]["pendingVersion"] == "1.33.10"
    assert waiting["status"]["maintenance"]["message"].startswith(
        f"patch 1.33.10 scheduled for the window {text}"), waiting["status"]
    assert waiting["status"]["maintenance"]["message"].endswith("+0100")
    wide = harness.kubectl("get", "-n", ns, "clusters.kaas.scs.community", "closed",
                           "-o", "wide").stdout
    assert "UPDATE" in wide and "1.33.10" in wide, wide  # the running 1.33.9 and what waits
    pinned = settled(harness, ns, "pinned", kubernetesVersion="1.33.9")
    assert not pinned["status"]["maintenance"]["pendingVersion"]
    default = settled(harness, ns, "default", kubernetesVersion="1.33.9")
    assert default["status"]["maintenance"]["window"].endswith("+0000 (default)")
    assert default["status"]["maintenance"]["pendingVersion"] == "1.33.10"


def test_a_bad_window_is_refused_with_its_field(harness: Harness) -> None:
    ns = harness.create_namespace("badwin")
    response = post(harness, ns, small("c", 1, maintenance={
        "timeWindow": {"begin": "220000+0100", "end": "221000+0100"}}))
    assert response.status_code == 422, response.text
    causes = response.json()["details"]["causes"]
    assert any(c["field"] == "spec.maintenance.timeWindow"
               and "30 minutes to 6 hours" in c["message"] for c in causes), causes
