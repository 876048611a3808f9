"""A real ``scs serve`` (embedded sandbox defaults) per module, an SDK client configured from
its generated kubeconfig, and an onboarded tenant whose namespace the tests work in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from central_api.client import Client, Config
from central_api.kinds.core import ServiceAccount
from central_api.kinds.tenancy import Tenant, TenantSpec
from tests.integration.conftest import unique
from tests.server import ScsServer


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    srv = ScsServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def client(server: ScsServer) -> Iterator[Client]:
    with Client(kubeconfig=server.kubeconfig) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def tenant(client: Client) -> str:
    """An onboarded tenant; its namespace has the tenant's name."""
    name = unique("sdk")
    created = client.create(Tenant(metadata={"name": name}, spec=TenantSpec(
        displayName="SDK Corp", admins=["alice@sdk.example"])))
    client.wait_ready(created, timeout=60)
    return name


def service_account_token(client: Client, namespace: str, cluster_role: str = "") -> str:
    """A TokenRequest token of a new ServiceAccount in ``namespace``, bound to
    ``cluster_role`` there (none: no rights)."""
    name = unique("sa")
    client.create(ServiceAccount(metadata={"name": name, "namespace": namespace}))
    if cluster_role:
        client.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                       "metadata": {"name": name, "namespace": namespace},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                   "kind": "ClusterRole", "name": cluster_role},
                       "subjects": [{"kind": "ServiceAccount", "name": name,
                                     "namespace": namespace}]})
    answer: dict[str, Any] = client.create_subresource(
        ServiceAccount, name, "token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        namespace)
    return str(answer["status"]["token"])


def token_client(server: ScsServer, token: str, **config: Any) -> Client:
    return Client(Config.from_token(server.url, token, ca_file=server.ca_file, **config))
