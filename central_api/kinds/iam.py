"""``iam.scs.community/v1alpha1``: people and their rights inside one tenant.

The objects live in a namespace of a tenant (labelled ``tenancy.scs.community/tenant``), so
a tenant admin — the SCS domain manager — manages them with plain RBAC in its own namespaces
and never sees another tenant's. Controllers mirror them into the tenant's Keystone domain and,
for role assignments, into Central API RoleBindings at the same time, so one grant gives the
same rights in OpenStack and in the Central API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import READY_COLUMN_PATH, Model, Reconciled, Status
from .kind import Column, ResourceType, declare

API_VERSION = "iam.scs.community/v1alpha1"
READY = Column("Ready", READY_COLUMN_PATH)
KEYSTONE_ID = Column("Keystone ID", ".status.keystoneID", priority=1)
ROLES = ("tenant-admin", "member", "viewer")
"""Central API ClusterRoles a tenant may hand out; each maps to one Keystone role."""


class IamStatus(Status):
    keystoneID: str = Field("", description="ID of the Keystone object.")


# -- User --------------------------------------------------------------------------------------
class UserSpec(Model):
    name: str = Field("", max_length=255,
                      description="Login name (usually the e-mail); default: metadata.name.")
    email: str = Field("", max_length=254, description="E-mail address.")
    displayName: str = Field("", max_length=128, description="Human-readable name.")


class User(Reconciled):
    """A person (or robot) of the tenant: a Keystone user in the tenant's domain."""

    spec: UserSpec = Field(default_factory=UserSpec)
    status: IamStatus = Field(default_factory=IamStatus)


# -- Group -------------------------------------------------------------------------------------
class GroupSpec(Model):
    description: str = Field("", max_length=255)
    members: list[str] = Field(
        default_factory=list, max_length=1000,
        description="Users in the group: names of User objects in this namespace.",
        json_schema_extra={"x-kubernetes-list-type": "set"})


class GroupStatus(IamStatus):
    memberIDs: list[str] = Field(default_factory=list,
                                 description="Keystone IDs of the members.")


class Group(Reconciled):
    """A set of users that receive roles together: a Keystone group in the tenant's domain."""

    spec: GroupSpec = Field(default_factory=GroupSpec)
    status: GroupStatus = Field(default_factory=GroupStatus)


# -- RoleAssignment ----------------------------------------------------------------------------
class Subject(Model):
    kind: Literal["User", "Group"]
    name: str = Field(min_length=1, max_length=253,
                      description="Name of the User or Group object in this namespace.")


class RoleAssignmentSpec(Model):
    subject: Subject
    role: Literal["tenant-admin", "member", "viewer"] = Field(
        description="tenant-admin (Keystone manager), member (member) or viewer (reader).")
    scope: Literal["namespace", "tenant"] = Field(
        "namespace", description="namespace: this namespace (Keystone: the tenant's default "
                                 "project); tenant: every namespace of the tenant (Keystone: "
                                 "the tenant's domain).")


class RoleAssignmentStatus(Status):
    keystoneRole: str = Field("", description="The Keystone role granted.")
    bindings: list[str] = Field(default_factory=list,
                                description="Namespaces holding the matching RoleBinding.")


class RoleAssignment(Reconciled):
    """Grants a role to a user or group, in Keystone and in the Central API together."""

    spec: RoleAssignmentSpec
    status: RoleAssignmentStatus = Field(default_factory=RoleAssignmentStatus)


# -- IdentityProvider --------------------------------------------------------------------------
class ClaimMapping(Model):
    username: str = Field("email", description="Token claim used as the user name.")
    groups: str = Field("groups", description="Token claim listing the user's groups.")


class IdentityProviderSpec(Model):
    issuerURL: str = Field(pattern=r"^https://", max_length=2048,
                           description="OIDC issuer URL (https), exactly the IdP's issuer.")
    clientID: str = Field(min_length=1, max_length=255,
                          description="OAuth client ID registered at the IdP for SCS.")
    claimMappings: ClaimMapping = Field(default_factory=ClaimMapping)


class IdentityProvider(Reconciled):
    """The tenant's own OpenID Connect IdP, federated into its Keystone domain."""

    spec: IdentityProviderSpec
    status: IamStatus = Field(default_factory=IamStatus)


def _iam(kind: str, model: type[Reconciled], columns: list[Column],
         short_names: list[str]) -> ResourceType:
    return declare(API_VERSION, kind, model, columns=[*columns, READY, KEYSTONE_ID],
                   short_names=short_names, categories=["scs", "iam"])


USER = _iam("User", User, [Column("Login", ".spec.name"), Column("E-Mail", ".spec.email")],
            [])
GROUP = _iam("Group", Group, [Column("Members", ".spec.members")], [])
ROLE_ASSIGNMENT = declare(
    API_VERSION, "RoleAssignment", RoleAssignment, short_names=["ra"],
    categories=["scs", "iam"],
    columns=[Column("Role", ".spec.role"), Column("Subject Kind", ".spec.subject.kind"),
             Column("Subject", ".spec.subject.name"), Column("Scope", ".spec.scope"), READY,
             Column("Keystone Role", ".status.keystoneRole", priority=1)])
IDENTITY_PROVIDER = _iam("IdentityProvider", IdentityProvider,
                         [Column("Issuer", ".spec.issuerURL"),
                          Column("Client", ".spec.clientID", priority=1)], ["idp"])

IAM_KINDS = [USER, GROUP, ROLE_ASSIGNMENT, IDENTITY_PROVIDER]
