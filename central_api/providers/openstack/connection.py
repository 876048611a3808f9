"""Connections to OpenStack, one per credential set, and the bridge from async to openstacksdk.

openstacksdk is synchronous and does network I/O in every call, so each call runs in a worker
thread (``asyncio.to_thread``) under a timeout; errors are translated to the contract's typed
errors on the way out. A ``Connection`` holds a Keystone session and token cache, so one is
kept per credential set (the tenant's application credential from ``Scope.credentials``, or
the operator's cloud from settings) instead of authenticating on every call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import openstack
from openstack.config import loader
from openstack.connection import Connection

from ..base import BackendUnavailable, InvalidRequest, Scope
from .errors import translate

T = TypeVar("T")


@dataclass(frozen=True)
class OpenStackSettings:
    """Operator configuration of the OpenStack provider."""

    cloud: str = ""
    """Cloud name in clouds.yaml, used when a Scope brings no credentials of its own."""
    clouds_yaml: str = ""
    """Path to clouds.yaml; empty: openstacksdk's search path (``OS_CLIENT_CONFIG_FILE``,
    ``./clouds.yaml``, ``~/.config/openstack``, ``/etc/openstack``)."""
    region: str = ""
    external_network: str = ""
    """Name or ID of the network for router gateways and floating IPs; empty: the first
    network with ``router:external``."""
    timeout: float = 120.0
    """Seconds one backend call may take before it counts as BackendUnavailable."""
    allow_private_image_sources: bool = False
    """Let Images import from non-public addresses (see :mod:`.images`)."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> OpenStackSettings:
        """Accept both camelCase (config files) and snake_case keys."""
        def pick(*keys: str, default: Any = "") -> Any:
            return next((values[k] for k in keys if values.get(k) not in (None, "")), default)
        return cls(cloud=str(pick("cloud")),
                   clouds_yaml=str(pick("cloudsYaml", "clouds_yaml", "cloudsYAML")),
                   region=str(pick("region", "regionName", "region_name")),
                   external_network=str(pick("externalNetwork", "external_network")),
                   timeout=float(pick("timeout", default=120.0)),
                   # Only a real true lifts the protection: bool("false") would be True.
                   allow_private_image_sources=pick("allowPrivateImageSources",
                                                    "allow_private_image_sources",
                                                    default=False) is True)


def _cloud_entry(credentials: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise what a Tenant's credential Secret may hold into one clouds.yaml cloud entry.

    Accepted: a whole clouds.yaml (``{"clouds": {name: entry}}``, exactly one cloud), one
    cloud entry (``{"auth": {...}, "region_name": ...}``) or a bare auth dict (``auth_url``
    plus application credential or password fields).
    """
    entry: Mapping[str, Any] = credentials
    clouds = credentials.get("clouds")
    if isinstance(clouds, Mapping):
        if len(clouds) != 1:
            raise InvalidRequest("credentials hold a clouds.yaml with "
                                 f"{len(clouds)} clouds; exactly one is needed")
        entry = next(iter(clouds.values()))
    if "auth" not in entry:
        entry = {"auth": dict(entry)}
    result = dict(entry)
    auth = dict(result["auth"])
    if "auth_type" not in result and ("application_credential_id" in auth
                                      or "application_credential_secret" in auth):
        result["auth_type"] = "v3applicationcredential"
    result["auth"] = auth
    return result


class Connections:
    """A cache of openstacksdk connections keyed by a hash of their credentials."""

    def __init__(self, settings: OpenStackSettings) -> None:
        self.settings = settings
        self._cache: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def get(self, scope: Scope) -> Connection:
        """The connection for ``scope``: its own credentials, else the operator's cloud."""
        if scope.credentials:
            entry = _cloud_entry(scope.credentials)
            if self.settings.region and "region_name" not in entry:
                entry["region_name"] = self.settings.region
            key = hashlib.sha256(json.dumps(entry, sort_keys=True, default=str)
                                 .encode()).hexdigest()
            entry.setdefault("api_timeout", self.settings.timeout)
            return self._cached(key, lambda: openstack.connect(load_yaml_config=False,
                                                               load_envvars=False, **entry))
        if not self.settings.cloud:
            raise InvalidRequest("no OpenStack credentials: the namespace has none and no "
                                 "cloud is configured for the openstack provider")
        return self._cached(f"cloud:{self.settings.cloud}", self._from_clouds_yaml)

    def _from_clouds_yaml(self) -> Connection:
        files = [self.settings.clouds_yaml] if self.settings.clouds_yaml else None
        config = loader.OpenStackConfig(config_files=files)
        region = config.get_one(cloud=self.settings.cloud,
                                region_name=self.settings.region or None)
        # Every request, the token fetch too, ends by the call timeout unless clouds.yaml
        # says otherwise: a Keystone that accepts connections but never answers must not
        # hold a worker thread for good after the caller's wait_for gave up.
        if region.config.get("api_timeout") is None:
            region.config["api_timeout"] = self.settings.timeout
        return Connection(config=region)

    def _cached(self, key: str, make: Callable[[], Connection]) -> Connection:
        with self._lock:
            conn = self._cache.get(key)
            if conn is None:
                conn = self._cache[key] = make()
            return conn

    async def run(self, scope: Scope, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` in a worker thread with the call timeout.

        On timeout the thread cannot be cancelled and finishes in the background; that is
        safe because every operation here is idempotent (found by owner tag on the retry).
        """
        def call() -> T:
            return fn(self.get(scope), *args)
        try:
            return await asyncio.wait_for(asyncio.to_thread(call), self.settings.timeout)
        except TimeoutError:
            raise BackendUnavailable(f"OpenStack did not answer within "
                                     f"{self.settings.timeout:g}s") from None
        except Exception as exc:
            raise translate(exc) from exc
