"""An async client of one Kubernetes API: the management cluster a KaaS provider drives.

Cluster API and Gardener are both driven only through the Kubernetes API of their
management cluster (or Garden), with a kubeconfig the operator gives
(:class:`~central_api.config.ManagementClusterConfig`). This is the one place that talks to
it: ``kubernetes_asyncio`` loads the kubeconfig (certificates, tokens, exec plugins) and
carries the requests on the event loop; this module adds the few verbs the providers need on
any kind by its path, and turns the API's answers into the provider errors the controllers
understand (:mod:`.base`): 404 → None or :class:`NotFound`, 409 → :class:`Conflict`,
400/422 and an admission plugin's 403 → :class:`InvalidRequest` with the server's message
(a ResourceQuota's → :class:`QuotaExceeded`),
an authorization 403 or a 401, anything unreachable or 5xx →
:class:`BackendUnavailable` (retried with backoff). A 401 first reads the kubeconfig again:
a rotated token is taken without a restart.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import weakref
from typing import Any
from urllib.parse import quote

import aiohttp
from kubernetes_asyncio import config as kubeconfig
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import ConfigException

from ..config import ManagementClusterConfig
from .base import (
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
)

REQUEST_TIMEOUT = 30.0
"""Seconds for one request: a management cluster that hangs is as good as down."""
RELOAD_SECONDS = 10.0
"""The least time between two reads of the kubeconfig after a 401."""
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
RBAC_DENIAL = re.compile(r'User ".*" cannot ')
"""How Kubernetes words an authorization denial; any other 403 is an admission plugin
refusing the object (Gardener's ShootValidator answers Forbidden), not the credentials."""
QUOTA_DENIAL = re.compile(r"is forbidden: exceeded quota: ")
"""How the ResourceQuota admission plugin words a refusal (a Gardener project's quota of
Shoots): retried, as the tenant may free capacity."""


class Unauthorized(BackendUnavailable):
    """HTTP 401: the management cluster takes the provider's token no longer (retried)."""


def resource_path(api_version: str, plural: str, namespace: str = "", name: str = "",
                  subresource: str = "") -> str:
    """``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<sub>]]`` (``/api/v1``
    for the core group)."""
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(plural)
    if name:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


class KubeClient:
    """Requests to one Kubernetes API server as one identity (the provider's service
    account in the management cluster)."""

    def __init__(self, api: ApiClient, label: str,
                 settings: ManagementClusterConfig | None = None) -> None:
        self._api = api
        self.label = label
        """Names the management cluster in error messages (its server URL)."""
        self._settings = settings
        """Where the kubeconfig came from, to read a rotated token again (see :meth:`_call`)."""
        self._reloaded = -RELOAD_SECONDS

    @classmethod
    async def connect(cls, settings: ManagementClusterConfig) -> KubeClient:
        """A client from the configured kubeconfig file and context."""
        configuration = await _load(settings)
        return cls(ApiClient(configuration), str(configuration.host), settings)

    async def close(self) -> None:
        await self._api.close()

    # -- verbs -----------------------------------------------------------------------------
    async def get(self, api_version: str, plural: str, namespace: str,
                  name: str) -> dict[str, Any] | None:
        """The object, or None if there is none."""
        try:
            return await self._call("GET", resource_path(api_version, plural, namespace, name))
        except NotFound:
            return None

    async def items(self, api_version: str, plural: str, namespace: str = "",
                    label_selector: str = "") -> list[dict[str, Any]]:
        """LIST: the objects (of a namespace, or all), optionally by label selector."""
        query = [("labelSelector", label_selector)] if label_selector else []
        found = await self._call("GET", resource_path(api_version, plural, namespace),
                                 query=query)
        return list(found.get("items") or [])

    async def create(self, api_version: str, plural: str, namespace: str,
                     body: dict[str, Any], subresource: str = "",
                     name: str = "") -> dict[str, Any]:
        """POST a new object, or to a subresource of ``name`` (e.g. Gardener's
        ``shoots/adminkubeconfig``)."""
        path = resource_path(api_version, plural, namespace, name, subresource)
        return await self._call("POST", path, body=body)

    async def merge_patch(self, api_version: str, plural: str, namespace: str, name: str,
                          patch: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        path = resource_path(api_version, plural, namespace, name, subresource)
        return await self._call("PATCH", path, body=patch, content_type=MERGE_PATCH)

    async def apply(self, api_version: str, plural: str, namespace: str,
                    body: dict[str, Any], field_manager: str) -> dict[str, Any]:
        """Server-side apply: the fields in ``body`` become the provider's, the rest (what
        the backend's controllers write) stays untouched; ``force`` takes fields back that
        someone changed by hand (drift repair)."""
        name = str(body["metadata"]["name"])
        path = resource_path(api_version, plural, namespace, name)
        return await self._call("PATCH", path, body=body, content_type=APPLY_PATCH,
                                query=[("fieldManager", field_manager), ("force", "true")])

    async def delete(self, api_version: str, plural: str, namespace: str, name: str,
                     uid: str = "") -> bool:
        """Delete the object; False if it was gone. With ``uid``, only that incarnation
        (a precondition), so a retry never deletes a newer object of the same name."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1",
                "propagationPolicy": "Foreground",
                **({"preconditions": {"uid": uid}} if uid else {})}
        try:
            await self._call("DELETE", resource_path(api_version, plural, namespace, name),
                             body=body)
        except NotFound:
            return False
        return True

    async def version(self) -> dict[str, Any]:
        """``GET /version``: the cheapest authenticated answer of the API server (the
        ``kaas`` health probe; ``/readyz`` answers text, not a Kubernetes object)."""
        return await self._call("GET", "/version")

    # -- transport -------------------------------------------------------------------------
    async def _call(self, method: str, path: str, body: Any = None,
                    query: list[tuple[str, str]] | None = None,
                    content_type: str = "application/json") -> dict[str, Any]:
        """The request; a 401 reads the kubeconfig again and, if its token changed (a rotated
        service-account token, an exec plugin's new one), retries once with it: the client
        is made once, and a token that expired would otherwise lock it out until a
        restart."""
        try:
            return await self._request(method, path, body, query, content_type)
        except Unauthorized:
            if not await self._new_token():
                raise
        return await self._request(method, path, body, query, content_type)

    async def _new_token(self) -> bool:
        """Whether the kubeconfig now holds another bearer token (which the client takes).
        Read at most every :data:`RELOAD_SECONDS`: with credentials that are really revoked
        every request answers 401, and an exec plugin would run for each."""
        now = time.monotonic()
        if self._settings is None or now - self._reloaded < RELOAD_SECONDS:
            return False
        self._reloaded = now
        try:
            fresh = await _load(self._settings)
        except (OSError, ValueError, ConfigException):
            return False
        token = fresh.api_key.get("BearerToken")
        current = self._api.configuration.api_key
        if not token or token == current.get("BearerToken"):
            return False
        current["BearerToken"] = token
        return True

    async def _request(self, method: str, path: str, body: Any,
                       query: list[tuple[str, str]] | None,
                       content_type: str) -> dict[str, Any]:
        try:
            response = await self._api.call_api(
                path, method, query_params=query or [], body=body,
                header_params={"Accept": "application/json", "Content-Type": content_type},
                auth_settings=["BearerToken"], _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT)
            text = await response.text()
            status = response.status
        except ApiException as exc:
            raise self._error(exc.status, exc.body) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise BackendUnavailable(f"{self.label} is unreachable: "
                                     f"{exc or type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise self._error(status, text)
        try:
            found = json.loads(text) if text else {}
        except ValueError:
            found = None
        if not isinstance(found, dict):  # a proxy's page, not the Kubernetes API
            raise BackendUnavailable(f"{self.label} answered HTTP {status} with no "
                                     "Kubernetes object")
        return found

    def _error(self, code: int, body: Any) -> ProviderError:
        message = _status_message(body) or f"HTTP {code}"
        if code == 404:
            return NotFound(message)
        if code == 409:
            return Conflict(f"{self.label}: {message}")
        if code == 403 and QUOTA_DENIAL.search(message):
            return QuotaExceeded(f"{self.label} refused it: {message}")
        if code in (400, 422) or (code == 403 and not RBAC_DENIAL.search(message)):
            return InvalidRequest(f"{self.label} refused it: {message}")
        if code in (401, 403):
            denied = Unauthorized if code == 401 else BackendUnavailable
            return denied(f"{self.label} denied the provider's credentials "
                          f"(HTTP {code}): {message}")
        return BackendUnavailable(f"{self.label} answered HTTP {code}: {message}")


class Connection:
    """The provider's :class:`KubeClient`, made on first use, one per running event loop.

    A provider is built synchronously at start-up, before the loop that runs the
    controllers, and an aiohttp session belongs to the loop that made it, so the client is
    made lazily in each loop that needs it (the controllers' and, for kubeconfigs, the
    server's) and kept for it. A kubeconfig that cannot be loaded (or a management cluster
    down at start-up) only makes the calls fail as :class:`BackendUnavailable` (retried),
    instead of keeping the Central API from starting."""

    def __init__(self, settings: ManagementClusterConfig, what: str) -> None:
        self.settings = settings
        self.what = what
        """Names the API in errors: "the management cluster", "the Garden"."""
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, KubeClient] = \
            weakref.WeakKeyDictionary()

    async def client(self) -> KubeClient:
        """The running loop's client; of two tasks connecting at once, the second closes
        its client and uses the first's."""
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is not None:
            return found
        try:
            client = await KubeClient.connect(self.settings)
        except (OSError, ValueError, ConfigException) as exc:
            raise BackendUnavailable(f"cannot load {self.what}'s kubeconfig "
                                     f"{self.settings.kubeconfig!r}: {exc}") from None
        found = self._clients.get(loop)
        if found is not None:
            await client.close()
            return found
        self._clients[loop] = client
        return client

    async def close(self) -> None:
        """Close the running loop's client (a later call connects again)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()


async def _load(settings: ManagementClusterConfig) -> Configuration:
    if not settings.kubeconfig:
        raise ValueError("the KaaS provider needs a kubeconfig of its management cluster")
    configuration = Configuration()
    await kubeconfig.load_kube_config(
        config_file=settings.kubeconfig, context=settings.context or None,
        client_configuration=configuration, persist_config=False)
    return configuration


def _status_message(body: Any) -> str:
    """The ``message`` of a Kubernetes Status body, if the body is one."""
    try:
        status = json.loads(body) if isinstance(body, str | bytes) else body
    except ValueError:
        return ""
    return str(status.get("message") or "") if isinstance(status, dict) else ""
