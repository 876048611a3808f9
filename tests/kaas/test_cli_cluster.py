"""``scs cluster`` end to end: the CLI as a subprocess against a real ``scs serve`` with the
sandbox KaaS, with the server's admin kubeconfig (as a user's would be used).

Output is not a terminal here, so the CLI prints one line per change of the cluster instead
of a live table: the tests read the phases from those lines, and check exit codes (0 done,
1 refused or failed, 2 wrong usage, 3 timed out).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from central_api.cli.cluster import parse_duration, parse_pool
from tests.controllers.conftest import REPO, launched
from tests.controllers.conftest import Cluster as Harness

pytestmark = pytest.mark.slow

KAAS = "/apis/kaas.scs.community/v1alpha1"
CONFIG: dict[str, Any] = {"services": ["tenancy", "kaas"],
                          "providers": {"kaas": {"type": "sandbox", "speed": 10}}}
"""At speed 10 a cluster is Ready in about a second: a few progress lines, a quick test."""
OIDC = ("https://idp.example.test/realms/acme", "acme-kubernetes")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from launched(tmp_path_factory, "cli", CONFIG)


def scs(harness: Harness, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(harness.server.kubeconfig),
           "HOME": str(harness.workdir), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "central_api.cli", "cluster", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def stored(harness: Harness, ns: str, name: str) -> dict[str, Any] | None:
    response = harness.http.get(f"{KAAS}/namespaces/{ns}/clusters/{name}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_cluster_from_create_to_delete(harness: Harness, tmp_path: Path) -> None:
    ns = harness.create_namespace("cli")
    created = scs(harness, "create", "c1", "-n", ns, "--version", "1.33",
                  "--pool", "name=general,flavor=SCS-2V-4,replicas=2",
                  "--pool", "name=burst,flavor=SCS-4V-8,min=1,max=3",
                  "--oidc-issuer", OIDC[0], "--oidc-client-id", OIDC[1], "--timeout", "60")
    text = ok(created)
    lines = created.stdout.splitlines()
    assert any("ProvisioningControlPlane" in line for line in lines), lines
    assert "Ready=True" in lines[-1], lines
    assert "Ready: Kubernetes 1.33.10" in created.stderr, created.stderr
    cluster = stored(harness, ns, "c1")
    assert cluster is not None
    assert cluster["spec"]["nodePools"][1]["autoscaling"] == {"min": 1, "max": 3}
    endpoint = cluster["status"]["apiEndpoint"]
    assert endpoint.startswith("https://"), text

    listed = ok(scs(harness, "list", "-n", ns))
    assert "c1" in listed and "1.33.10" in listed and "3/3" in listed, listed
    shown = ok(scs(harness, "show", "c1", "-n", ns))
    for part in ("ControlPlaneReady", "NodePoolsReady", "general", "burst", "SCS-4V-8",
                 endpoint, "SIMULATED"):
        assert part in shown, (part, shown)

    oidc = yaml.safe_load(ok(scs(harness, "kubeconfig", "c1", "-n", ns)))
    assert oidc["clusters"][0]["cluster"]["server"] == endpoint
    assert oidc["users"][0]["user"]["exec"]["args"] == ["token", "--issuer", OIDC[0],
                                                        "--client-id", OIDC[1]]
    path = tmp_path / "admin.kubeconfig"
    path.write_text("an older file, readable by all")
    path.chmod(0o644)
    before = dt.datetime.now(dt.UTC)
    admin = scs(harness, "kubeconfig", "c1", "-n", ns, "--admin", "--expiration", "1h", "-o",
                str(path))
    assert "expires at" in ok(admin) and admin.stdout == ""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    user = yaml.safe_load(path.read_text())["users"][0]["user"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    assert abs((cert.not_valid_after_utc - before).total_seconds() - 3600) < 30

    upgraded = scs(harness, "upgrade", "c1", "-n", ns, "--version", "1.34", "--timeout", "60")
    ok(upgraded)
    assert any("UpgradingControlPlane" in line for line in upgraded.stdout.splitlines()), \
        upgraded.stdout
    assert "Ready: Kubernetes 1.34.7" in upgraded.stderr
    assert (stored(harness, ns, "c1") or {})["status"]["kubernetesVersion"] == "1.34.7"

    deleted = scs(harness, "delete", "c1", "-n", ns, "--timeout", "60")
    assert "deleted" in ok(deleted)
    assert stored(harness, ns, "c1") is None


def test_refusals_show_the_field_at_fault_and_exit_1(harness: Harness) -> None:
    ns = harness.create_namespace("cli-bad")
    pool = "name=general,flavor=SCS-2V-4,replicas=1"
    duplicate = scs(harness, "create", "dup", "-n", ns, "--version", "1.33", "--pool", pool,
                    "--pool", pool)
    assert duplicate.returncode == 1, duplicate
    assert "spec.nodePools[1].name: Duplicate value" in duplicate.stderr, duplicate.stderr
    assert stored(harness, ns, "dup") is None

    ok(scs(harness, "create", "c2", "-n", ns, "--version", "1.34.7", "--pool", pool,
           "--no-wait"))
    down = scs(harness, "upgrade", "c2", "-n", ns, "--version", "1.33.10")
    assert down.returncode == 1, down
    assert "spec.kubernetesVersion" in down.stderr and "downgrading" in down.stderr, down.stderr

    missing = scs(harness, "show", "nope", "-n", ns)
    assert missing.returncode == 1 and "not found" in missing.stderr
    no_oidc = scs(harness, "kubeconfig", "c2", "-n", ns)
    assert no_oidc.returncode == 1, no_oidc
    assert "spec.oidc" in no_oidc.stderr or "status.apiEndpoint" in no_oidc.stderr, \
        no_oidc.stderr


@pytest.mark.parametrize("args", [
    ["create", "x", "--version", "1.33", "--pool", "name=a,flavor"],
    ["create", "x", "--version", "1.33", "--pool", "name=a,flavor=SCS-2V-4,replicas=two"],
    ["create", "x", "--version", "1.33", "--oidc-issuer", "https://idp.example.test"],
    ["kubeconfig", "x", "--expiration", "1h"],
    ["kubeconfig", "x", "--admin", "--expiration", "soon"],
], ids=["pool-syntax", "pool-number", "oidc-half", "expiration-without-admin",
        "expiration-syntax"])
def test_wrong_usage_exits_2_before_asking_the_server(harness: Harness,
                                                      args: list[str]) -> None:
    done = scs(harness, *args)
    assert done.returncode == 2, done
    assert done.stderr.strip(), "a usage error must say what is wrong"


def test_a_timeout_exits_3_and_the_cluster_goes_on(harness: Harness) -> None:
    ns = harness.create_namespace("cli-slow")
    done = scs(harness, "create", "c3", "-n", ns, "--version", "1.33", "--pool",
               "name=general,flavor=SCS-2V-4,replicas=1", "--timeout", "0.2")
    assert done.returncode == 3, done
    assert "not done after" in done.stderr
    followed = scs(harness, "show", "c3", "-n", ns)
    assert ok(followed)


@pytest.mark.parametrize(("text", "pool"), [
    ("name=general,flavor=SCS-4V-8,replicas=3",
     {"name": "general", "flavor": "SCS-4V-8", "replicas": 3}),
    ("name=arm, flavor=SCS-2V-4_a, arch=arm64, min=0, max=5, disk=50",
     {"name": "arm", "flavor": "SCS-2V-4_a", "architecture": "arm64", "rootDiskGiB": 50,
      "autoscaling": {"min": 0, "max": 5}}),
])
def test_pools_parse_into_the_clusters_node_pools(text: str, pool: dict[str, Any]) -> None:
    assert parse_pool(text) == pool


@pytest.mark.parametrize(("text", "seconds"), [
    ("3600", 3600), ("1h", 3600), ("30m", 1800), ("1h30m", 5400), ("90s", 90)])
def test_expirations_parse_into_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_list_all_namespaces_and_delete_without_waiting(harness: Harness) -> None:
    ns = harness.create_namespace("cli-all")
    ok(scs(harness, "create", "c4", "-n", ns, "--version", "1.33", "--pool",
           "name=general,flavor=SCS-2V-4,replicas=1", "--no-wait"))
    listed = ok(scs(harness, "list", "-A"))
    assert ns in listed and "c4" in listed, listed
    gone = scs(harness, "delete", "c4", "-n", ns, "--no-wait")
    assert gone.returncode == 0 and "deleting" in gone.stderr, gone
    deleting = stored(harness, ns, "c4")
    assert deleting is None or deleting["metadata"].get("deletionTimestamp")
    again = scs(harness, "delete", "nope", "-n", ns)
    assert again.returncode == 1 and "not found" in again.stderr
