"""Reconcilers of the IAM kinds: mirror a tenant's people and rights into Keystone.

Every object lives in a namespace of a tenant; the tenant's Keystone domain (and default
project) come from the Tenant's status, so an IAM object waits (condition ``TenantReady``
False) until onboarding has created them. All Keystone calls are ``ensure``/``grant`` by name,
so the periodic resync recreates what was deleted behind our back.

A RoleAssignment is written to Keystone and to Central API RoleBindings in the same pass:
``tenant-admin`` → Keystone ``manager``, ``member`` → ``member``, ``viewer`` → ``reader``; scope
``namespace`` → the default project and a RoleBinding in this namespace, scope ``tenant`` → the
domain and a RoleBinding in every namespace of the tenant (namespaces added later, and group
members added later, are picked up on the next resync).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..auth.tenants import TENANT_LABEL
from ..kinds.common import Reconciled
from ..kinds.core import Namespace
from ..kinds.iam import (
    GROUP,
    IDENTITY_PROVIDER,
    ROLE_ASSIGNMENT,
    USER,
    Group,
    IdentityProvider,
    IdentityProviderSpec,
    RoleAssignment,
    Subject,
    User,
)
from ..kinds.tenancy import Tenant, federated_name
from ..providers.base import NotFound
from ..providers.identity import IdentityService, RoleGrant
from .client import Client, Kind
from .outcomes import Blocked, Failed, report, settle
from .runtime import Result
from .tenants import NAMESPACES, TENANTS, tenant_namespaces
from .typed import fetch, kind_of, load

log = logging.getLogger("central_api.iam")

FINALIZER = "iam.scs.community/keystone"
USERS = kind_of(USER)
GROUPS = kind_of(GROUP)
ROLE_ASSIGNMENTS = kind_of(ROLE_ASSIGNMENT)
IDENTITY_PROVIDERS = kind_of(IDENTITY_PROVIDER)
ROLEBINDINGS = Kind("rbac.authorization.k8s.io", "v1", "rolebindings")
RBAC_GROUP = "rbac.authorization.k8s.io"
KEYSTONE_ROLES = {"tenant-admin": "manager", "member": "member", "viewer": "reader"}
SOURCE_LABEL = "iam.scs.community/role-assignment"
SOURCE_NS_LABEL = "iam.scs.community/role-assignment-namespace"
TENANT_REASONS = frozenset({"NoTenant", "TenantNotReady"})
"""Blocked reasons that concern the tenant (condition TenantReady), not the object."""


@dataclass(frozen=True)
class TenantScope:
    """The tenant a namespace belongs to and its Keystone objects."""

    tenant: str
    domain_id: str
    project_id: str


async def tenant_scope(client: Client, namespace: str) -> TenantScope:
    ns = await client.get(NAMESPACES, "", namespace)
    tenant = load(Namespace, ns).metadata.labels.get(TENANT_LABEL) if ns else None
    if not tenant:
        raise Blocked("NoTenant", f"namespace {namespace} belongs to no tenant (label "
                                  f"{TENANT_LABEL})")
    found = await client.get(TENANTS, "", tenant)
    status = load(Tenant, found).status if found else None
    if status is None or not status.domainID or not status.projectID:
        raise Blocked("TenantNotReady", f"tenant {tenant} has no Keystone domain yet")
    return TenantScope(tenant, status.domainID, status.projectID)


def login_name(user: User) -> str:
    return user.spec.name or user.metadata.name


def _user_subject(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC_GROUP, "kind": "User", "name": name}


M = TypeVar("M", bound=Reconciled)


class IamReconciler(Generic[M]):
    """Shared flow: find the tenant, converge, report ``TenantReady``/``Synced``/``Ready``."""

    kind: Kind
    model: type[M]
    finalizer = FINALIZER
    resync_seconds: float | None = None
    """Set by :func:`~.reconcilers.all_reconcilers` from the identity configuration."""

    def __init__(self, client: Client, identity: IdentityService) -> None:
        self.client = client
        self.identity = identity

    async def reconcile(self, obj: M) -> Result:
        obj.status.observedGeneration = obj.metadata.generation
        try:
            scope = await tenant_scope(self.client, obj.metadata.namespace)
            obj.set_condition("TenantReady", True, "Found", f"tenant {scope.tenant}")
            message = await self.converge(scope, obj)
        except Blocked as exc:
            report(obj, "TenantReady" if exc.reason in TENANT_REASONS else "Synced", exc)
            return settle(exc)
        except Exception as exc:  # the backend said no or did not answer: say so, retry
            failed = Failed.of(exc)
            report(obj, "Synced", failed)
            return settle(failed)
        obj.set_condition("Synced", True, "Synced", message)
        obj.set_condition("Ready", True, "Ready", message)
        return Result()

    async def converge(self, scope: TenantScope, obj: M) -> str:
        """Bring Keystone (and RBAC) to ``obj``, noting in its status what it did; a
        one-line summary for the condition."""
        raise NotImplementedError

    async def finalize(self, obj: M) -> bool:
        """Remove what ``converge`` created; True once it is gone."""
        raise NotImplementedError


class UserReconciler(IamReconciler[User]):
    kind = USERS
    model = User

    async def converge(self, scope: TenantScope, obj: User) -> str:
        user = await self.identity.ensure_user(scope.domain_id, login_name(obj),
                                               obj.spec.email)
        obj.status.keystoneID = user.id
        return f"Keystone user {user.name} ({user.id})"

    async def finalize(self, obj: User) -> bool:
        if obj.status.keystoneID:
            await _ignore_missing(self.identity.delete_user(obj.status.keystoneID))
        return True


class GroupReconciler(IamReconciler[Group]):
    kind = GROUPS
    model = Group

    async def converge(self, scope: TenantScope, obj: Group) -> str:
        namespace = obj.metadata.namespace
        member_ids = [await self._member_id(scope, namespace, name)
                      for name in obj.spec.members]
        group = await self.identity.ensure_group(scope.domain_id, obj.metadata.name,
                                                 member_ids)
        obj.status.keystoneID, obj.status.memberIDs = group.id, member_ids
        return f"Keystone group {group.name} with {len(member_ids)} member(s)"

    async def _member_id(self, scope: TenantScope, namespace: str, name: str) -> str:
        user = await fetch(self.client, User, USERS, namespace, name)
        if user is None:
            raise Blocked("MemberNotFound", f"user {name!r} does not exist in namespace "
                                            f"{namespace}")
        # ensure, not status: the member may have been created a moment ago
        found = await self.identity.ensure_user(scope.domain_id, login_name(user),
                                                user.spec.email)
        return found.id

    async def finalize(self, obj: Group) -> bool:
        if obj.status.keystoneID:
            await _ignore_missing(self.identity.delete_group(obj.status.keystoneID))
        return True


class RoleAssignmentReconciler(IamReconciler[RoleAssignment]):
    kind = ROLE_ASSIGNMENTS
    model = RoleAssignment

    async def converge(self, scope: TenantScope, obj: RoleAssignment) -> str:
        grant = await self._grant(scope, obj)
        await self.identity.grant(grant)
        namespaces = await self._bind(scope, obj)
        obj.status.keystoneRole, obj.status.bindings = grant.role, namespaces
        where = "domain" if grant.domain_id else "default project"
        return (f"Keystone role {grant.role} on the tenant's {where}; RoleBinding in "
                f"{len(namespaces)} namespace(s)")

    async def _grant(self, scope: TenantScope, obj: RoleAssignment) -> RoleGrant:
        spec = obj.spec
        subject_id = await self._subject_id(obj.metadata.namespace, spec.subject)
        role = KEYSTONE_ROLES[spec.role]
        target = ({"domain_id": scope.domain_id} if spec.scope == "tenant"
                  else {"project_id": scope.project_id})
        who = {"user_id": subject_id} if spec.subject.kind == "User" \
            else {"group_id": subject_id}
        return RoleGrant(role, **who, **target)

    async def _subject_id(self, namespace: str, subject: Subject) -> str:
        """The subject's Keystone ID, once its own controller has created it."""
        found = await fetch(self.client, User, USERS, namespace, subject.name) \
            if subject.kind == "User" else \
            await fetch(self.client, Group, GROUPS, namespace, subject.name)
        keystone_id = found.status.keystoneID if found else ""
        if not keystone_id:
            raise Blocked("SubjectNotReady", f"{subject.kind} {subject.name!r} is not "
                                             "in Keystone yet")
        return keystone_id

    async def _bind(self, scope: TenantScope, obj: RoleAssignment) -> list[str]:
        """The RoleBindings this assignment needs, and none it no longer needs."""
        namespace = obj.metadata.namespace
        if obj.spec.scope == "tenant":
            targets = sorted(ns["metadata"]["name"] for ns in
                             await tenant_namespaces(self.client, scope.tenant)
                             if not ns["metadata"].get("deletionTimestamp"))
        else:
            targets = [namespace]
        subjects = await self._rbac_subjects(scope.tenant, obj)
        desired = {ns: self._binding(obj, ns, subjects) for ns in targets}
        for ns, binding in desired.items():
            await self._apply_binding(ns, binding)
        await self._prune(obj, set(desired))
        return targets

    async def _rbac_subjects(self, tenant: str, obj: RoleAssignment) -> list[dict[str, str]]:
        """Who the RoleBindings name: a User by its login; a Group as the tenant IdP's group
        of that name (``<tenant>:<group>``, the only form no other tenant's IdP can assert)
        plus its members by login, so local users get the rights too."""
        source_ns, subject = obj.metadata.namespace, obj.spec.subject
        if subject.kind == "User":
            user = await fetch(self.client, User, USERS, source_ns, subject.name)
            return [_user_subject(login_name(user) if user else subject.name)]
        group = await fetch(self.client, Group, GROUPS, source_ns, subject.name)
        members = []
        for member in sorted(group.spec.members if group else []):
            found = await fetch(self.client, User, USERS, source_ns, member)
            if found is not None:
                members.append(_user_subject(login_name(found)))
        return [{"apiGroup": RBAC_GROUP, "kind": "Group",
                 "name": federated_name(tenant, subject.name)}, *members]

    @staticmethod
    def _binding(obj: RoleAssignment, namespace: str,
                 subjects: list[dict[str, str]]) -> dict[str, Any]:
        source_ns, source = obj.metadata.namespace, obj.metadata.name
        return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
                "metadata": {"name": binding_name(source_ns, source, namespace),
                             "namespace": namespace,
                             "labels": {SOURCE_LABEL: source, SOURCE_NS_LABEL: source_ns}},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole",
                            "name": obj.spec.role},
                "subjects": subjects}

    async def _apply_binding(self, namespace: str, desired: dict[str, Any]) -> None:
        name = desired["metadata"]["name"]
        current = await self.client.get(ROLEBINDINGS, namespace, name)
        if current is None:
            await self.client.create(ROLEBINDINGS, desired)
        elif current.get("roleRef") != desired["roleRef"]:
            # roleRef is immutable (as in Kubernetes): replace the binding
            await self.client.delete(ROLEBINDINGS, namespace, name)
            await self.client.create(ROLEBINDINGS, desired)
        elif current.get("subjects") != desired["subjects"]:
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.client.update(ROLEBINDINGS, desired)

    async def _prune(self, obj: RoleAssignment, keep: set[str]) -> None:
        for binding in await self._owned_bindings(obj):
            if binding["metadata"]["namespace"] not in keep:
                await self.client.delete(ROLEBINDINGS, binding["metadata"]["namespace"],
                                         binding["metadata"]["name"])

    async def _owned_bindings(self, obj: RoleAssignment) -> list[dict[str, Any]]:
        items, _ = await self.client.list(ROLEBINDINGS)
        meta = obj.metadata
        return [b for b in items
                if (b["metadata"].get("labels") or {}).get(SOURCE_LABEL) == meta.name
                and b["metadata"]["labels"].get(SOURCE_NS_LABEL) == meta.namespace]

    async def finalize(self, obj: RoleAssignment) -> bool:
        """Revoke in Keystone (if the tenant still exists) and drop every RoleBinding."""
        try:
            scope = await tenant_scope(self.client, obj.metadata.namespace)
            grant = await self._grant(scope, obj)
        except Blocked:
            grant = None  # tenant or subject gone: so is the Keystone assignment
        if grant is not None:
            await _ignore_missing(self.identity.revoke(grant))
        await self._prune(obj, set())
        return True


class IdentityProviderReconciler(IamReconciler[IdentityProvider]):
    kind = IDENTITY_PROVIDERS
    model = IdentityProvider

    async def converge(self, scope: TenantScope, obj: IdentityProvider) -> str:
        spec = obj.spec
        name = idp_name(scope.tenant, obj)
        await self.identity.ensure_federation(scope.domain_id, name, spec.issuerURL,
                                              mapping_rules(spec, scope.domain_id))
        obj.status.keystoneID = name
        return f"Keystone identity provider {name} (protocol openid) for {spec.issuerURL}"

    async def finalize(self, obj: IdentityProvider) -> bool:
        if obj.status.keystoneID:
            await _ignore_missing(self.identity.delete_federation(obj.status.keystoneID))
        return True


def idp_name(tenant: str, obj: IdentityProvider) -> str:
    """Keystone IdP IDs are global: prefix with the tenant so tenants never collide."""
    return f"{tenant}-{obj.metadata.name}"


def mapping_rules(spec: IdentityProviderSpec, domain_id: str) -> list[dict[str, object]]:
    """Every user of the IdP becomes a shadow user of the tenant's domain (the IdP's domain)
    and joins the tenant's Keystone groups named in the groups claim. Two rules, because
    Keystone merges what all matching rules yield and a user without groups must still log
    in."""
    username, groups = spec.claimMappings.username, spec.claimMappings.groups
    return [{"local": [{"user": {"name": "{0}"}}],
             "remote": [{"type": f"OIDC-{username}"}]},
            {"local": [{"groups": "{0}", "domain": {"id": domain_id}}],
             "remote": [{"type": f"OIDC-{groups}"}]}]


def binding_name(source_ns: str, source: str, namespace: str) -> str:
    """``scs:iam:NAME`` in its own namespace, ``scs:iam:SOURCE_NS.NAME`` elsewhere."""
    return f"scs:iam:{source}" if namespace == source_ns else f"scs:iam:{source_ns}.{source}"


async def _ignore_missing(call: Any) -> None:
    try:
        await call
    except NotFound:
        pass


def iam_reconcilers(client: Client, identity: IdentityService) -> list[IamReconciler[Any]]:
    return [UserReconciler(client, identity), GroupReconciler(client, identity),
            RoleAssignmentReconciler(client, identity),
            IdentityProviderReconciler(client, identity)]
