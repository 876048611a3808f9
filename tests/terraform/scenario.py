"""What the scenario suites share beside T1's fixtures: a fast sandbox server, an onboarded
tenant, the tenant admin's own kubeconfig (the SCS domain manager, as README tour step 3
makes one), and the real kubectl.

The tenant admin is a ServiceAccount of the tenant's namespace bound to the ClusterRole
``tenant-admin`` there: no cloud-admin right, so what it may do from Terraform is what a
customer's automation may do.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from central_api.client import Client
from central_api.kinds.tenancy import Tenant, TenantSpec
from tests.client.conftest import service_account_token
from tests.server import ScsServer

FAST_SANDBOX: dict[str, Any] = {"providers": {"iaas": {"type": "sandbox", "speed": 10},
                                              "kaas": {"type": "sandbox", "speed": 20}}}
"""Simulated delays divided by 10 (IaaS) and 20 (KaaS): Ready within seconds, yet still a
real wait (speed 0 would make objects Ready before anyone waits)."""
KUBECTL_TIMEOUT = 60


def onboard(admin: Client, name: str, cores: int = 64) -> str:
    """An onboarded (Ready) tenant; its namespace has its name."""
    created = admin.create(Tenant(metadata={"name": name}, spec=TenantSpec(
        displayName=f"Tenant {name}", admins=[f"alice@{name}.example"],
        quotas={"cores": cores, "ramMiB": 262144, "instances": 20})))
    admin.wait_ready(created, timeout=60)
    return name


def tenant_admin_kubeconfig(admin: Client, server: ScsServer, namespace: str,
                            path: Path) -> tuple[Path, str]:
    """A kubeconfig (and its token) of a new ServiceAccount holding ``tenant-admin`` in
    ``namespace`` only, with ``namespace`` as its default namespace."""
    token = service_account_token(admin, namespace, "tenant-admin")
    config = {"apiVersion": "v1", "kind": "Config", "current-context": namespace,
              "clusters": [{"name": "scs", "cluster": {
                  "server": server.url, "certificate-authority": str(server.ca_file)}}],
              "users": [{"name": f"{namespace}-admin", "user": {"token": token}}],
              "contexts": [{"name": namespace, "context": {
                  "cluster": "scs", "user": f"{namespace}-admin", "namespace": namespace}}]}
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path, token


def kubectl(kubeconfig: Path, *args: str) -> str:
    """The real kubectl (as tests/kubectl runs it); its stdout, or AssertionError."""
    done = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=KUBECTL_TIMEOUT, check=False)
    if done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
    return done.stdout
