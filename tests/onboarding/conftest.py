"""Harness for the onboarding suite: a real ``scs serve`` per identity backend.

Every test runs twice, against the real Keystone fixture (``identity: {type: keystone}``
with the test Keystone's bootstrap admin) and against the sandbox identity (``identity:
{type: sandbox}``, the embedded default), each checked through its own independent view
(:mod:`tests.onboarding.backends`). ``identity.resyncSeconds: 10`` (default 600) makes
drift repair observable within a test (shorter saturates the controllers: a steady-state
pass over one tenant costs a dozen Keystone calls, and the test Keystone answers one at a
time); IaaS is served without a provider (Servers only need to exist for the offboarding
safeguards) and IAM is enabled.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from tests.onboarding.backends import IdentityView, KeystoneView, SandboxView
from tests.polling import poll
from tests.server import ScsServer

T = TypeVar("T")
TENANCY = "/apis/tenancy.scs.community/v1alpha1"
IAM = "/apis/iam.scs.community/v1alpha1"
IAAS = "/apis/iaas.scs.community/v1alpha1"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def eventually(check: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.3,
               what: str = "condition") -> T:
    return poll(check, timeout, interval, what)


class Api:
    """One ``scs serve`` with an identity backend, and admin HTTPS calls against it."""

    def __init__(self, view: IdentityView, workdir: Path, controllers: str = "in-process"
                 ) -> None:
        data = workdir / "data"
        identity = {**view.config(), "resyncSeconds": 10}
        if controllers == "external" and identity["type"] == "sandbox":
            # `scs controllers` keeps the sandbox identity in the server's database
            identity["store"] = f"sqlite:///{data / 'state.db'}"
        config = workdir / "config.yaml"
        config.write_text(yaml.safe_dump({
            "services": ["tenancy", "iaas", "iam"], "providers": {"iaas": {"type": "none"}},
            "identity": identity, "controllers": controllers}))
        self.config_file = config
        self.view = view
        self.server = ScsServer(data_dir=data, extra_args=["--config", str(config)])
        data.mkdir()
        self._http: httpx.Client | None = None

    def start(self) -> Api:
        self.server.start()
        self._http = None
        return self

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.server.url, timeout=30,
                                      verify=str(self.server.ca_file),
                                      headers={"Authorization": f"Bearer {self.server.token}"})
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self.server.cleanup()
        self.view.close()

    # -- objects -------------------------------------------------------------------------
    def get(self, path: str) -> dict[str, Any] | None:
        response = self.http.get(path)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return dict(response.json())

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.patch(path, json=body,
                                   headers={"Content-Type": "application/merge-patch+json"})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def delete(self, path: str) -> None:
        response = self.http.delete(path)
        assert response.status_code in (200, 202), response.text

    # -- tenants -------------------------------------------------------------------------
    def tenant(self, name: str) -> dict[str, Any] | None:
        return self.get(f"{TENANCY}/tenants/{name}")

    def onboard(self, name: str, admins: list[str], **spec: Any) -> dict[str, Any]:
        return self.create(f"{TENANCY}/tenants", {
            "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {"displayName": f"Customer {name}", "admins": admins, **spec}})

    def wait_condition(self, path: str, type_: str, status: str = "True",
                       timeout: float = 90) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            current = self.get(path)
            found = condition(current, type_)
            return current if found and found["status"] == status else None

        try:
            return eventually(check, timeout, what=f"{path} {type_}={status}")
        except pytest.fail.Exception:
            pytest.fail(f"{path}: no {type_}={status} after {timeout}s; status "
                        f"{(self.get(path) or {}).get('status')}\nserver log:\n"
                        f"{self.server.log_tail(20)}")

    def wait_ready(self, name: str, timeout: float = 90) -> dict[str, Any]:
        return self.wait_condition(f"{TENANCY}/tenants/{name}", "Ready", timeout=timeout)

    def clouds_yaml(self, namespace: str) -> dict[str, Any]:
        secret = self.get(f"/api/v1/namespaces/{namespace}/secrets/openstack-credentials")
        assert secret is not None, "the credentials Secret is missing"
        return dict(yaml.safe_load(base64.b64decode(secret["data"]["clouds.yaml"])))


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for entry in ((obj or {}).get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            return dict(entry)
    return None


def identity_view(backend: str, request: pytest.FixtureRequest, workdir: Path
                  ) -> IdentityView:
    if backend == "keystone":
        return KeystoneView(request.getfixturevalue("keystone"))
    return SandboxView(workdir / "data")


@pytest.fixture(scope="module", params=["keystone", "sandbox"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Api]:
    """One server per backend for the module's tests; each test onboards its own tenant."""
    workdir = tmp_path_factory.mktemp(f"onboarding-{request.param}")
    started = Api(identity_view(request.param, request, workdir), workdir).start()
    try:
        yield started
    finally:
        started.close()
