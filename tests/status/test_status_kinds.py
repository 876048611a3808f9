"""The status kinds with the real kubectl, and the REST view of what kubectl writes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.server import ScsServer
from tests.status.conftest import StatusApi

KUBECTL = Path(os.environ.get("SCS_KUBECTL_DIR", "/usr/lib/google-cloud-sdk/bin")) / \
    "kubectl.1.33"
MANIFEST = """
apiVersion: status.scs.community/v1alpha1
kind: Component
metadata: {name: dns}
spec: {displayName: DNS, labels: {region: r1}}
---
apiVersion: status.scs.community/v1alpha1
kind: ImpactType
metadata: {name: unavailable}
spec: {displayName: Unavailable}
---
apiVersion: status.scs.community/v1alpha1
kind: Incident
metadata: {name: dns-down}
spec:
  displayName: DNS does not resolve
  beganAt: "2025-04-01T08:00:00Z"
  affects: [{component: dns, impactType: unavailable, severity: 90}]
"""


def kubectl(server: ScsServer, tmp_path: Path, *args: str, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    if not os.access(KUBECTL, os.X_OK):
        pytest.fail(f"kubectl not found at {KUBECTL} (scripts/test installs it)")
    return subprocess.run([str(KUBECTL), *args], input=input, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path,
                          env={**os.environ, "KUBECONFIG": str(server.kubeconfig),
                               "HOME": str(tmp_path)})


@pytest.mark.slow
def test_kubectl_writes_show_in_the_status_page(server: ScsServer, admin: StatusApi,
                                                tmp_path: Path) -> None:
    applied = kubectl(server, tmp_path, "apply", "-f", "-", input=MANIFEST)
    assert applied.returncode == 0, applied.stderr
    listed = kubectl(server, tmp_path, "get", "components,incidents")
    assert listed.returncode == 0, listed.stderr
    assert "dns" in listed.stdout and "dns-down" in listed.stdout
    explained = kubectl(server, tmp_path, "explain", "incident.spec")
    assert explained.returncode == 0 and "affects" in explained.stdout, explained.stderr
    uid = kubectl(server, tmp_path, "get", "incident", "dns-down", "-o",
                  "jsonpath={.metadata.uid}").stdout
    component_uid = kubectl(server, tmp_path, "get", "component", "dns", "-o",
                            "jsonpath={.metadata.uid}").stdout
    seen = admin.data(f"/incidents/{uid}")
    assert seen["displayName"] == "DNS does not resolve"
    assert seen["affects"][0]["reference"] == component_uid
    assert admin.patch(f"/incidents/{uid}", {"endedAt": "2025-04-01T09:00:00Z"}
                       ).status_code == 204
    ended = kubectl(server, tmp_path, "get", "incident", "dns-down", "-o",
                    "jsonpath={.spec.endedAt}")
    assert ended.stdout == "2025-04-01T09:00:00.000Z"


@pytest.mark.slow
def test_kubectl_cannot_reference_a_missing_component(server: ScsServer, tmp_path: Path
                                                      ) -> None:
    refused = kubectl(server, tmp_path, "apply", "-f", "-", input="""
apiVersion: status.scs.community/v1alpha1
kind: Incident
metadata: {name: ghost}
spec:
  affects: [{component: no-such-component, impactType: unavailable, severity: 10}]
""")
    assert refused.returncode != 0
    assert "no-such-component" in refused.stderr
    assert kubectl(server, tmp_path, "get", "incident", "ghost").returncode != 0
