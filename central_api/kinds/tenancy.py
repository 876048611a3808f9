"""``tenancy.scs.community``: the Tenant, one customer of the cloud provider."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .common import READY_COLUMN_PATH, Model, Reconciled, Status
from .kind import Column, ResourceType, declare

SERVICES = ("iaas", "kaas", "iam", "status", "metering")


class TenantQuotas(Model):
    """Upper limits for the tenant as a whole; unset means the operator's default."""

    cores: int | None = Field(None, ge=0, description="vCPUs across all servers.")
    ramMiB: int | None = Field(None, ge=0, description="RAM across all servers, in MiB.")
    instances: int | None = Field(None, ge=0, description="Number of servers.")
    volumes: int | None = Field(None, ge=0, description="Number of volumes.")
    gigabytes: int | None = Field(None, ge=0, description="Block storage in GiB.")
    floatingIPs: int | None = Field(None, ge=0, description="Number of floating IPs.")
    networks: int | None = Field(None, ge=0, description="Number of networks.")
    clusters: int | None = Field(None, ge=0, description="Number of Kubernetes clusters.")
    namespaces: int | None = Field(None, ge=1, description="Number of namespaces.")
    apiObjects: int | None = Field(
        None, ge=0, description="API objects stored in the tenant's namespaces (Secrets, "
                                "Servers, RoleBindings, ...); creating more is refused.")
    apiBytes: int | None = Field(
        None, ge=0, description="Bytes those objects take in the Central API's store (their "
                                "JSON encoding); writes that would exceed it are refused.")


UNIFIED_LIMITS = {"cores": "compute:cores", "ramMiB": "compute:ram_mib",
                  "instances": "compute:instances", "volumes": "block-storage:volumes",
                  "gigabytes": "block-storage:gigabytes", "floatingIPs": "network:floatingip",
                  "networks": "network:network"}
"""Tenant quota → the Keystone unified limit (service:resource) onboarding sets on the
tenant's project, which the cloud enforces; the other quotas are the Central API's own."""


def project_name(tenant: str) -> str:
    """The tenant's default project, in the identity domain named like the tenant."""
    return f"{tenant}-default"


class ClaimMappings(Model):
    username: str = Field("email", description="Token claim used as the user name.")
    groups: str = Field("groups", description="Token claim listing the user's groups.")


class Federation(Model):
    """The customer's own OpenID Connect identity provider."""

    issuerURL: str = Field(pattern=r"^https://", description="OIDC issuer URL (https).")
    clientID: str = Field(min_length=1, description="OAuth client ID registered for SCS.")
    claimMappings: ClaimMappings = Field(default_factory=ClaimMappings)


class TenantSpec(Model):
    displayName: str = Field(min_length=1, max_length=128,
                             description="Human-readable customer name.")
    contact: str = Field("", max_length=254, description="Contact e-mail of the customer.")
    admins: list[str] = Field(default_factory=list,
                              description="User names or e-mails granted tenant-admin.",
                              json_schema_extra={"x-kubernetes-list-type": "set"})
    quotas: TenantQuotas = Field(default_factory=TenantQuotas)
    enabledServices: list[str] = Field(
        default=["iaas", "iam"],
        description=f"Services the tenant may use: {', '.join(SERVICES)}.",
        json_schema_extra={"x-kubernetes-list-type": "set",
                           "items": {"type": "string", "enum": list(SERVICES)}})
    federation: Federation | None = Field(
        None, description="Optional customer IdP. Its users log in to the Central API as "
                          "'<tenant>:<name>'; admins then name IdP users (without the prefix).")


class ApiUsage(Model):
    """What the tenant stores in the Central API itself (counted against its quotas)."""

    objects: int = Field(0, description="API objects in the tenant's namespaces.")
    bytes: int = Field(0, description="Their size in the store (JSON encoding).")


class TenantStatus(Status):
    namespaces: list[str] = Field(default_factory=list,
                                  description="Namespaces owned by the tenant.")
    identity: str = Field("", description="The identity backend onboarding used, e.g. "
                                        "'keystone https://...' or 'sandbox (simulated)'.")
    domainID: str = Field("", description="Keystone domain of the tenant.")
    projectID: str = Field("", description="Default Keystone project of the tenant.")
    apiUsage: ApiUsage | None = Field(
        None, description="Objects and bytes the tenant stores in the Central API now "
                          "(updated within seconds of a change).")


class Tenant(Reconciled):
    """A customer of the cloud: its namespaces, quotas, admins and enabled services."""

    spec: TenantSpec
    status: TenantStatus = Field(default_factory=TenantStatus)


TENANT: ResourceType = declare(
    "tenancy.scs.community/v1alpha1", "Tenant", Tenant, namespaced=False,
    short_names=["tn"], categories=["scs"], dns_label_names=True,
    columns=[
        Column("Display Name", ".spec.displayName"),
        Column("Ready", READY_COLUMN_PATH),
        Column("Contact", ".spec.contact", priority=1),
        Column("Domain", ".status.domainID", priority=1),
        Column("Identity", ".status.identity", priority=1),
    ])


def federated_name(tenant: str, name: str) -> str:
    """The Central API name of a user or group that logged in through a tenant's own IdP.

    The tenant prefix is what makes a tenant IdP safe to trust: whatever names that IdP
    asserts, they can only ever match subjects in the ``<tenant>:`` namespace, never an
    operator, another tenant's admin or a built-in group. Tenant names are DNS labels, so
    they contain no ``:`` and one tenant's prefix can never be another's.
    """
    return f"{tenant}:{name}"


def admin_usernames(tenant: dict[str, Any]) -> list[str]:
    """The Central API user names of a Tenant's admins: with federation the admins are the
    tenant IdP's users, so their names carry the tenant prefix."""
    spec = tenant.get("spec") or {}
    admins = sorted(spec.get("admins") or [])
    if spec.get("federation"):
        return [federated_name(tenant["metadata"]["name"], admin) for admin in admins]
    return admins
