"""The identity provider contract (Keystone): what onboarding and IAM controllers need.

Every call is idempotent and keyed by names derived from Central API objects, so retries and
restarts never create duplicates: the tenant ``acme`` is the domain ``acme`` (its ID is kept
in the Tenant's status), its default project ``acme-default``, users are matched by name in
the domain. Errors are the typed errors of :mod:`providers.base`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Domain:
    id: str
    name: str
    enabled: bool = True


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    domain_id: str


@dataclass(frozen=True)
class IdentityUser:
    id: str
    name: str
    domain_id: str
    email: str = ""
    federated: bool = False


@dataclass(frozen=True)
class IdentityGroup:
    id: str
    name: str
    domain_id: str
    members: tuple[str, ...] = ()
    """User IDs."""


@dataclass(frozen=True)
class AppCredential:
    id: str
    name: str
    secret: str = ""
    """Only known right after creation (Keystone never shows it again)."""
    auth: Mapping[str, str] = field(default_factory=dict)
    """A clouds.yaml ``auth`` block (auth_url, application_credential_id/secret)."""


@dataclass(frozen=True)
class RoleGrant:
    role: str
    """Keystone role name: manager, member or reader."""
    user_id: str = ""
    group_id: str = ""
    domain_id: str = ""
    project_id: str = ""


class IdentityService(Protocol):
    simulated: bool
    """True for the sandbox identity: nothing it creates exists outside the Central API."""
    label: str
    """Which backend, for status and logs: ``keystone <auth URL>``, ``sandbox (simulated)``."""

    async def health(self) -> None:
        """A cheap request that shows the backend answers (the ``identity`` probe);
        raises a ProviderError saying why not."""
    # domains and projects -------------------------------------------------------------------
    async def ensure_domain(self, name: str, description: str,
                            expect_new: bool = False) -> Domain:
        """``expect_new`` here and below: a hint that the object most likely does not exist
        yet, so the backend may try to create it before looking (the result is the same)."""
    async def delete_domain(self, domain_id: str) -> None:
        """Disable, then delete (Keystone refuses to delete an enabled domain)."""
    async def ensure_project(self, domain_id: str, name: str,
                             expect_new: bool = False) -> Project: ...
    async def delete_project(self, project_id: str) -> None: ...
    # users and groups ------------------------------------------------------------------------
    async def ensure_user(self, domain_id: str, name: str, email: str = "",
                          expect_new: bool = False) -> IdentityUser: ...
    async def delete_user(self, user_id: str) -> None: ...
    async def ensure_group(self, domain_id: str, name: str,
                           member_ids: list[str]) -> IdentityGroup: ...
    async def delete_group(self, group_id: str) -> None: ...
    # role assignments ------------------------------------------------------------------------
    async def grant(self, grant: RoleGrant) -> None: ...
    async def revoke(self, grant: RoleGrant) -> None: ...
    async def grants(self, domain_id: str, projects: bool = True) -> list[RoleGrant]:
        """Every assignment on the domain and, with ``projects``, on its projects."""
    # quotas ----------------------------------------------------------------------------------
    async def set_limits(self, project_id: str, limits: Mapping[str, int]) -> None:
        """Unified limits on the project (resource name → limit); removes unlisted ones."""
    async def limits(self, project_id: str) -> dict[str, int]: ...
    # credentials -----------------------------------------------------------------------------
    async def ensure_app_credential(self, user_id: str, project_id: str,
                                    name: str) -> AppCredential: ...
    async def delete_app_credential(self, user_id: str, credential_id: str) -> None: ...
    # federation ------------------------------------------------------------------------------
    async def ensure_federation(self, domain_id: str, idp_name: str, issuer: str,
                                mapping_rules: list[dict[str, object]]) -> None:
        """Identity provider + mapping + ``openid`` protocol for a customer IdP."""
    async def delete_federation(self, idp_name: str) -> None: ...
