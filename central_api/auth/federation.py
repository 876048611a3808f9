"""Identity providers that tenants bring, trusted for Central API login at run time.

A customer's own OpenID provider is registered in two places: ``Tenant.spec.federation``
(set by the operator at onboarding) and ``IdentityProvider`` objects (created by the tenant's
admins in their namespaces). The onboarding and IAM controllers federate those issuers into
the tenant's Keystone domain; this module makes the *same* login work for the Central API,
so one customer login reaches both.

Trusting an issuer that a customer controls is safe only with three limits, all enforced
here rather than left to configuration:

* Names are confined to the tenant: every user and group the IdP asserts becomes
  ``<tenant>:<name>`` (:func:`~central_api.kinds.tenancy.federated_name`). A tenant IdP can
  mint any claim it likes and still only ever match subjects of its own tenant.
* An issuer the operator configured (``--oidc-config``) is never taken over by a tenant. An
  issuer the operator assigned to a tenant (``Tenant.spec.federation``) beats any
  ``IdentityProvider`` a tenant admin creates, so no tenant can squat on another customer's
  IdP ahead of its onboarding. Otherwise the first registration wins (creation time, whole
  seconds; a tie goes to the source name that sorts first).
* Discovery and key fetches go only to public addresses (unless the operator allows private
  ones for a lab), so registering ``https://10.0.0.5`` cannot turn the server into a probe of
  the provider's network.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..kinds.tenancy import federated_name
from ..machinery.user import User
from ..registry.informers import Handlers, Informers, on_any_change
from .oidc import OidcAuthenticator, OidcConfigError, OidcIssuer
from .tenants import TENANTS, tenant_label

log = logging.getLogger("central_api.federation")

IDENTITY_PROVIDERS = "iam.scs.community/identityproviders"
NAMESPACES = "core/namespaces"


@dataclass(frozen=True)
class FederationSettings:
    """Operator settings for tenant identity providers (config section ``federation``)."""

    allow_private_issuers: bool = False
    ca_file: Path | None = None


@dataclass(frozen=True)
class Registration:
    """One tenant's claim on an issuer: where it came from and how to map its tokens."""

    tenant: str
    source: str  # "Tenant/acme" or "IdentityProvider/acme-team/corp", for logs
    created: str
    spec: dict[str, Any]

    def precedence(self) -> tuple[bool, str, str]:
        """Operator assignments first, then the older registration."""
        return not self.source.startswith("Tenant/"), self.created, self.source


class TenantIssuers:
    """:class:`~central_api.auth.authn.Authenticator` for tokens of tenant-registered IdPs.

    Registrations come from the shared informers of Tenants, IdentityProviders and
    Namespaces (whose tenant label says which tenant an IdentityProvider speaks for), so
    every replica trusts a new issuer as soon as its watch delivers the registration. A
    change only marks the issuers stale; the next login derives them again."""

    def __init__(self, informers: Informers, settings: FederationSettings,
                 reserved: set[str]) -> None:
        self.settings = settings
        self.reserved = reserved
        self.oidc = OidcAuthenticator([])
        self._tenants = informers.informer(TENANTS)
        self._idps = informers.informer(IDENTITY_PROVIDERS)
        self._namespaces = informers.informer(NAMESPACES)
        self._current = False
        self._by_tenant: dict[str, list[OidcIssuer]] = {}
        for informer in (self._tenants, self._idps):
            informer.add_handlers(on_any_change(self._stale))
        self._namespaces.add_handlers(Handlers(
            on_add=lambda ns: self._stale_if_labelled(None, ns),
            on_update=self._stale_if_labelled,
            on_delete=lambda ns: self._stale_if_labelled(ns, None)))

    def _stale(self) -> None:
        self._current = False

    def _stale_if_labelled(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Only a namespace's tenant label matters here (not every namespace change)."""
        if tenant_label(old) != tenant_label(new):
            self._current = False

    async def authenticate(self, token: str) -> User | None:
        self._refresh()
        return await self.oidc.authenticate(token)

    def trusted_for(self, tenant: str) -> list[OidcIssuer]:
        """The issuers that log users in to ``tenant`` right now: what :meth:`authenticate`
        trusts, so a squatted or superseded registration is never offered (web console)."""
        self._refresh()
        return list(self._by_tenant.get(tenant, ()))

    def _refresh(self) -> None:
        if self._current:
            return
        self._current = True  # before reading: a change meanwhile marks it stale again
        issuers: list[OidcIssuer] = []
        owners: dict[str, str] = {}  # issuer URL → the tenant whose users it logs in
        by_tenant: dict[str, list[OidcIssuer]] = {}
        for registration in sorted(self._registrations(), key=Registration.precedence):
            issuer = self._issuer(registration)
            url = issuer.issuer_url
            if url in self.reserved or url in owners:
                log.warning("federation: %s registers issuer %s, which %s; ignored",
                            registration.source, url, "the operator configured"
                            if url in self.reserved else f"tenant {owners[url]} registered first")
                continue
            try:
                issuer.validate()
            except OidcConfigError as exc:
                log.warning("federation: %s: %s; ignored", registration.source, exc)
                continue
            issuers.append(issuer)
            owners[url] = registration.tenant
            by_tenant.setdefault(registration.tenant, []).append(issuer)
        self.oidc.set_issuers(issuers)
        self._by_tenant = by_tenant

    def _issuer(self, registration: Registration) -> OidcIssuer:
        spec = registration.spec
        claims = spec.get("claimMappings") or {}
        prefix = federated_name(registration.tenant, "")
        return OidcIssuer(
            issuer_url=str(spec.get("issuerURL", "")), audience=str(spec.get("clientID", "")),
            username_claim=claims.get("username", "email"), username_prefix=prefix,
            groups_claim=claims.get("groups", "groups"), groups_prefix=prefix,
            ca_file=self.settings.ca_file,
            public_only=not self.settings.allow_private_issuers)

    def _registrations(self) -> Iterator[Registration]:
        for tenant in self._tenants.list():
            federation = (tenant.get("spec") or {}).get("federation")
            if federation and not tenant["metadata"].get("deletionTimestamp"):
                name = tenant["metadata"]["name"]
                yield Registration(name, f"Tenant/{name}",
                                   tenant["metadata"]["creationTimestamp"], federation)
        for idp in self._idps.list():
            meta = idp["metadata"]
            tenant_name = tenant_label(self._namespaces.get("", meta["namespace"]))
            if tenant_name and not meta.get("deletionTimestamp"):
                yield Registration(tenant_name,
                                   f"IdentityProvider/{meta['namespace']}/{meta['name']}",
                                   meta["creationTimestamp"], idp.get("spec") or {})
