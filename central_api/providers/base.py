"""The provider contract: thin, typed adapters between a kind's spec and one backend.

Every backend resource is tagged with the UID of the Central API object it realises, so a
retry or a restart finds the resource it already created instead of creating a duplicate
(``find`` before ``create``). One :class:`ResourceService` per kind keeps the surface small
and lets one generic reconciler drive all IaaS kinds; a provider is the set of services it
offers. Errors are typed so controllers can turn them into conditions and decide whether to
retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

State = Literal["PENDING", "ACTIVE", "ERROR", "DELETING"]
"""Provider-neutral lifecycle: BUILD/creating → PENDING, usable → ACTIVE, failed → ERROR."""


class ProviderError(Exception):
    """Base of every error a provider raises; ``retryable`` tells the controller to back off
    and try again rather than report a terminal failure."""

    reason = "ProviderError"
    retryable = True


class NotFound(ProviderError):
    reason = "NotFound"
    retryable = False


class Conflict(ProviderError):
    reason = "Conflict"


class QuotaExceeded(ProviderError):
    """The tenant's quota would be exceeded; retried (someone may free capacity)."""

    reason = "QuotaExceeded"


class BackendUnavailable(ProviderError):
    """The backend did not answer (down, timeout); always retried."""

    reason = "BackendUnavailable"


class InvalidRequest(ProviderError):
    """The backend refuses the desired state as such (unknown flavor, bad CIDR)."""

    reason = "InvalidRequest"
    retryable = False


HealthCheck = Callable[[], Awaitable[None]]
"""A cheap request to one backend service: returns if it answered, raises
:class:`ProviderError` (or any exception) saying why not (the status page's probes)."""


@dataclass(frozen=True)
class Scope:
    """Where a resource lives in the backend: one project per Central API namespace."""

    namespace: str
    tenant: str = ""
    credentials: Mapping[str, Any] | None = None
    """Backend credentials for this namespace (e.g. a clouds.yaml entry), if per tenant."""


@dataclass
class BackendResource:
    id: str
    owner_uid: str
    state: State
    message: str = ""
    desired: dict[str, Any] = field(default_factory=dict)
    """The desired state the backend currently has (for drift detection)."""
    observed: dict[str, Any] = field(default_factory=dict)
    """What the backend reports beyond the spec: addresses, ports, VIPs..."""


class ResourceService(Protocol):
    """One kind of backend resource (networks, servers, ...)."""

    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        """The resource created for ``owner_uid``, if any (idempotency on retries)."""

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource: ...

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        """Bring ``resource`` to ``desired``; raise InvalidRequest for immutable changes."""

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        """Start deletion; safe to call again. ``find`` returns None once it is gone."""


class Labelled:
    """How users read of a backend: by name, and told when it is simulated."""

    name: str
    simulated: bool

    @property
    def label(self) -> str:
        return f"{self.name} (simulated)" if self.simulated else self.name

    def labelled(self, message: str) -> str:
        """``message`` naming the backend once (the sandbox's own messages already do)."""
        return message if message.startswith(self.name) else f"{self.label}: {message}"


@dataclass
class Provider(Labelled):
    name: str
    services: dict[str, ResourceService]
    """Kind name (``Network``, ``Server``, ...) → service."""
    simulated: bool = False
    """True for the sandbox: users see that nothing real is created."""
    tenant_credentials: bool = False
    """The backend acts with each tenant's own credentials (onboarding's application
    credential), so a tenant's objects land in the tenant's project, never the operator's."""
    probes: dict[str, HealthCheck] = field(default_factory=dict)
    """Health probe name (``compute``, ``network``, ...) → a cheap check of that service
    (:mod:`.health`); empty where the provider cannot check without a tenant's credentials."""

    def service(self, kind: str) -> ResourceService:
        try:
            return self.services[kind]
        except KeyError:
            raise InvalidRequest(f"provider {self.name} does not offer {kind}") from None
