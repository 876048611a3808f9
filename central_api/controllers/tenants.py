"""Onboarding: one Tenant object becomes a working, isolated customer account.

For a Tenant ``acme`` the reconciler converges, step by step and idempotently (every step is
an ``ensure`` keyed by names, so a retry or a restart never duplicates anything):

1. ``NamespaceReady``   the namespace ``acme`` labelled ``tenancy.scs.community/tenant=acme``
                        (the tenant-access controller then binds the admins there);
2. ``DomainReady``      the Keystone domain ``acme`` and its default project ``acme-default``;
3. ``AdminsReady``      the admins as Keystone users holding ``manager`` (the SCS domain
                        manager) on the domain — or, with ``spec.federation``, the customer's
                        IdP mapped so its admins land in a group holding ``manager``;
4. ``QuotasApplied``    the quotas as unified limits on the default project;
5. ``CredentialsReady`` an application credential of a service user, as a clouds.yaml in the
                        Secret ``openstack-credentials`` of the namespace (encrypted at rest).

Each step reports one condition, then ``Ready``. A failing step stops the pass (later steps
depend on it), says why in its condition and is retried with backoff; the periodic resync
repeats everything, which recreates what was deleted in Keystone behind our back.

Offboarding is deliberately hard to do by accident: deletion waits in the finalizer until the
Tenant carries ``tenancy.scs.community/confirm-deletion: <name>``, and refuses while the
tenant's namespaces still hold Servers or Clusters unless ``tenancy.scs.community/cascade:
"true"`` asks to delete them too. The tenant's other IaaS objects are deleted next (their backend
resources need the project and credentials that go after them), then the backend goes in
reverse order, and the namespaces last.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

from ..auth.tenants import TENANT_LABEL, tenant_label
from ..config import IdentityConfig
from ..kinds.core import NAMESPACE, SECRET, Namespace
from ..kinds.iaas import IAAS_KINDS, SERVER
from ..kinds.kaas import CLUSTER
from ..kinds.tenancy import (
    TENANT,
    UNIFIED_LIMITS,
    Federation,
    Tenant,
    TenantQuotas,
    TenantSpec,
    project_name,
)
from ..machinery.errors import ApiError
from ..providers.base import InvalidRequest, NotFound
from ..providers.identity import AppCredential, Domain, IdentityService, Project, RoleGrant
from .client import Client, Kind
from .outcomes import Blocked, Failed, Outcome, report, settle
from .runtime import Key, Result
from .typed import fetch, kind_of

log = logging.getLogger("central_api.tenants")

FINALIZER = "tenancy.scs.community/onboarding"
CONFIRM = "tenancy.scs.community/confirm-deletion"
CASCADE = "tenancy.scs.community/cascade"
TENANTS = kind_of(TENANT)
NAMESPACES = kind_of(NAMESPACE)
SECRETS = kind_of(SECRET)
SERVERS = kind_of(SERVER)
CLUSTERS = kind_of(CLUSTER)
OWNED_KINDS = (SERVERS, CLUSTERS)
"""What offboarding refuses to delete silently."""
BACKEND_KINDS = (*(kind_of(rt) for rt in IAAS_KINDS), CLUSTERS)
"""Everything with a backend resource in the tenant's project: deleted before the project."""
CREDENTIALS_SECRET = "openstack-credentials"  # noqa: S105  # nosec B105 - a Secret's name
CREDENTIAL_ID = "tenancy.scs.community/application-credential-id"
SERVICE_USER = "scs-provider"
"""The tenant's own provider identity: owner of the application credential."""
APP_CREDENTIAL = "scs-central-api"
OPTIONAL_SERVICE_ROLES = ("load-balancer_member",)
"""Roles the service user also needs where the cloud has the service: Octavia admits only
``load-balancer_member`` (or more) to create load balancers, ``member`` is not enough."""
ADMINS_GROUP = "tenant-admins"
"""With federation, admins are shadow users: the IdP mapping puts them in this group."""
MANAGER_ROLE = "manager"
STEPS = ("NamespaceReady", "DomainReady", "AdminsReady", "QuotasApplied", "CredentialsReady")
RETRY_BLOCKED = 2.0


def build_identity(config: IdentityConfig) -> IdentityService | None:
    """The configured identity backend, or None (then no onboarding controllers run)."""
    if config.type == "none":
        return None
    from ..providers.keystone import KeystoneIdentity

    service: IdentityService = KeystoneIdentity(config.auth(), config.region)
    return service


T = TypeVar("T")


def _set(value: T | None, what: str) -> T:
    """A value an earlier step of the same pass produced (steps run in order)."""
    if value is None:
        raise RuntimeError(f"onboarding step ran before the {what} was known")
    return value


def quota_limits(quotas: TenantQuotas) -> dict[str, int]:
    """The unified limits for ``spec.quotas``; unset quotas are not limited in Keystone."""
    values = quotas.model_dump(exclude_none=True)
    return {limit: values[field] for field, limit in UNIFIED_LIMITS.items() if field in values}


async def tenant_namespaces(client: Client, tenant: str) -> list[dict[str, Any]]:
    """Every namespace labelled as the tenant's (the label is the ownership record)."""
    items, _ = await client.list(NAMESPACES)
    return [ns for ns in items if tenant_label(ns)
            == tenant]


def _owning_tenant(namespace: dict[str, Any]) -> list[Key]:
    tenant = tenant_label(namespace)
    return [("", tenant)] if tenant else []


@dataclass
class Pass:
    """What one reconcile pass learned so far; later steps use earlier results."""

    tenant: Tenant
    first: bool
    """No earlier pass got as far as the domain: its Keystone objects are most likely still
    to be created (a hint; the ensure calls are correct either way)."""
    domain: Domain | None = None
    project: Project | None = None

    @property
    def name(self) -> str:
        return self.tenant.metadata.name

    @property
    def spec(self) -> TenantSpec:
        return self.tenant.spec


class TenantReconciler:
    kind = TENANTS
    model = Tenant
    finalizer = FINALIZER
    resync_seconds: float | None = None
    """Set by :func:`~.reconcilers.all_reconcilers` from the identity configuration."""

    def __init__(self, client: Client, identity: IdentityService, region: str = "") -> None:
        self.client = client
        self.identity = identity
        self.region = region

    def watches(self) -> list[tuple[Kind, Callable[[dict[str, Any]], Iterable[Key]]]]:
        """A namespace joining or leaving a tenant changes its ``status.namespaces``, which
        the console's namespace switcher and usage page read: without this it waited for
        the tenant's next resync."""
        return [(NAMESPACES, _owning_tenant)]

    # -- reconcile -----------------------------------------------------------------------
    async def reconcile(self, obj: Tenant) -> Result:
        run = Pass(obj, first=not obj.status.domainID)
        try:
            return await self._steps(run)
        finally:
            await self._observe(run)

    async def _steps(self, run: Pass) -> Result:
        steps: list[Callable[[Pass], Awaitable[str]]] = [
            self._namespace, self._domain, self._admins, self._quotas, self._credentials]
        for type_, step in zip(STEPS, steps, strict=True):
            try:
                message = await step(run)
            except Outcome as exc:
                return self._failed(run, type_, exc)
            except Exception as exc:  # an unexpected backend error is a condition too
                return self._failed(run, type_, Failed.of(exc))
            run.tenant.set_condition(type_, True, "Done", message)
        run.tenant.set_condition("Ready", True, "Onboarded", "the tenant is ready to use")
        return Result()

    @staticmethod
    def _failed(run: Pass, type_: str, outcome: Outcome) -> Result:
        """Report the step that did not complete (Ready says which step waits)."""
        report(run.tenant, type_, outcome)
        run.tenant.set_condition("Ready", False, outcome.reason, f"{type_}: {outcome}")
        return settle(outcome)

    async def _observe(self, run: Pass) -> None:
        """The status besides conditions: what the pass found, however far it got."""
        status = run.tenant.status
        status.observedGeneration = run.tenant.metadata.generation
        status.identity = self.identity.label
        if run.domain is not None:
            status.domainID = run.domain.id
        if run.project is not None:
            status.projectID = run.project.id
        status.namespaces = sorted(ns["metadata"]["name"] for ns in
                                   await tenant_namespaces(self.client, run.name))

    # -- steps ---------------------------------------------------------------------------
    async def _namespace(self, run: Pass) -> str:
        """The default namespace; a same-named namespace of someone else is never taken."""
        current = await fetch(self.client, Namespace, NAMESPACES, "", run.name)
        if current is None:
            await self.client.create(NAMESPACES, {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": run.name, "labels": {TENANT_LABEL: run.name}}})
            return f"namespace {run.name} created"
        owner = current.metadata.labels.get(TENANT_LABEL)
        if owner != run.name:
            raise Blocked("NamespaceTaken", f"namespace {run.name} exists and does not "
                          f"belong to this tenant (label {TENANT_LABEL}={owner!r})",
                          RETRY_BLOCKED)
        if current.metadata.deletionTimestamp:
            raise Failed("NamespaceTerminating", f"namespace {run.name} is being deleted")
        return f"namespace {run.name}"

    async def _domain(self, run: Pass) -> str:
        run.domain = await self.identity.ensure_domain(
            run.name, run.spec.displayName or run.name, expect_new=run.first)
        run.project = await self.identity.ensure_project(run.domain.id, project_name(run.name),
                                                         expect_new=run.first)
        return f"domain {run.name} ({run.domain.id}), project {run.project.name}"

    async def _admins(self, run: Pass) -> str:
        domain = _set(run.domain, "domain")
        admins = list(run.spec.admins)
        if run.spec.federation is not None:
            return await self._federated_admins(run.name, run.spec.federation, domain, admins)
        wanted: set[str] = set()
        for admin in admins:
            user = await self.identity.ensure_user(domain.id, admin,
                                                   admin if "@" in admin else "",
                                                   expect_new=run.first)
            await self.identity.grant(RoleGrant(MANAGER_ROLE, user_id=user.id,
                                                domain_id=domain.id))
            wanted.add(user.id)
        await self._revoke_managers(domain, wanted)
        return f"{len(admins)} admin(s) hold {MANAGER_ROLE} on the domain"

    async def _federated_admins(self, tenant: str, federation: Federation, domain: Domain,
                                admins: list[str]) -> str:
        """Federated admins exist in Keystone only after their first login, so the mapping
        puts them into a group that holds the role (Keystone's way of pre-authorising)."""
        group = await self.identity.ensure_group(domain.id, ADMINS_GROUP, [])
        await self.identity.grant(RoleGrant(MANAGER_ROLE, group_id=group.id,
                                            domain_id=domain.id))
        claim = federation.claimMappings.username
        rules: list[dict[str, object]] = [{
            "local": [{"user": {"name": "{0}"}},
                      {"group": {"name": ADMINS_GROUP, "domain": {"id": domain.id}}}],
            "remote": [{"type": f"OIDC-{claim}", "any_one_of": admins}]}]
        await self.identity.ensure_federation(domain.id, tenant, federation.issuerURL, rules)
        return f"{len(admins)} federated admin(s) from {federation.issuerURL}"

    async def _revoke_managers(self, domain: Domain, wanted: set[str]) -> None:
        """An admin removed from the spec loses the domain-manager role (not the user)."""
        for grant in await self.identity.grants(domain.id, projects=False):
            if (grant.role == MANAGER_ROLE and grant.user_id and grant.domain_id == domain.id
                    and grant.user_id not in wanted):
                await self.identity.revoke(grant)

    async def _quotas(self, run: Pass) -> str:
        project = _set(run.project, "project")
        limits = quota_limits(run.spec.quotas)
        await self.identity.set_limits(project.id, limits)
        return f"{len(limits)} limit(s) on project {project.name}"

    async def _credentials(self, run: Pass) -> str:
        """Keystone shows a credential's secret only once: the Secret is its only copy, so a
        lost Secret means a new credential (the old one is deleted, never left dangling)."""
        domain, project = _set(run.domain, "domain"), _set(run.project, "project")
        user = await self.identity.ensure_user(domain.id, SERVICE_USER, expect_new=run.first)
        await self.identity.grant(RoleGrant("member", user_id=user.id,
                                            project_id=project.id))
        for role in OPTIONAL_SERVICE_ROLES:
            try:
                await self.identity.grant(RoleGrant(role, user_id=user.id,
                                                    project_id=project.id))
            except InvalidRequest:
                pass  # the cloud has no such service (no role); nothing to grant
        secret = await self.client.get(SECRETS, run.name, CREDENTIALS_SECRET)
        credential = await self.identity.ensure_app_credential(user.id, project.id,
                                                               APP_CREDENTIAL)
        if not credential.secret and _credential_id(secret) != credential.id:
            await self.identity.delete_app_credential(user.id, credential.id)
            credential = await self.identity.ensure_app_credential(user.id, project.id,
                                                                   APP_CREDENTIAL)
        if credential.secret:
            await self._store_credential(run, secret, credential)
        return f"application credential {credential.id} in Secret {CREDENTIALS_SECRET}"

    async def _store_credential(self, run: Pass, current: dict[str, Any] | None,
                                credential: AppCredential) -> None:
        desired = credentials_secret(run.name, credential, self.region)
        if current is None:
            await self.client.create(SECRETS, desired)
            return
        desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await self.client.update(SECRETS, desired)

    # -- offboarding ---------------------------------------------------------------------
    async def finalize(self, obj: Tenant) -> bool:
        name = obj.metadata.name
        annotations = obj.metadata.annotations
        if annotations.get(CONFIRM) != name:
            _block(obj, "ConfirmationRequired",
                              f"deleting tenant {name} removes its Keystone domain, users and "
                              f"namespaces; confirm with: kubectl annotate tenant {name} "
                              f"{CONFIRM}={name}")
            return False
        owned = await self._owned(name)
        if owned:
            if annotations.get(CASCADE) != "true":
                _block(obj, "ResourcesRemain",
                                  f"the tenant still owns {', '.join(owned)}; delete them "
                                  f"first or annotate {CASCADE}=true to delete them too")
                return False
            await self._delete_owned(name)
            _block(obj, "DeletingResources", f"deleting {', '.join(owned)}", blocked=False)
            return False
        remaining = await self._owned(name, BACKEND_KINDS)
        if remaining:
            # Networks, volumes, ... go before the project and the credentials they need:
            # removing the project first would leak them in the backend.
            await self._delete_owned(name, BACKEND_KINDS)
            _block(obj, "DeletingResources", f"deleting {', '.join(remaining)}",
                   blocked=False)
            return False
        await self._remove_backend(obj)
        return await self._remove_namespaces(name)

    async def _owned(self, tenant: str, kinds: tuple[Kind, ...] = OWNED_KINDS) -> list[str]:
        """``"2 servers in acme"``-style descriptions of what the tenant still holds."""
        found = []
        for ns in await tenant_namespaces(self.client, tenant):
            namespace = ns["metadata"]["name"]
            for kind in kinds:
                count = len(await _list_or_empty(self.client, kind, namespace))
                if count:
                    found.append(f"{count} {kind.plural} in {namespace}")
        return found

    async def _delete_owned(self, tenant: str, kinds: tuple[Kind, ...] = OWNED_KINDS) -> None:
        for ns in await tenant_namespaces(self.client, tenant):
            namespace = ns["metadata"]["name"]
            for kind in kinds:
                for item in await _list_or_empty(self.client, kind, namespace):
                    if not item["metadata"].get("deletionTimestamp"):
                        await self.client.delete(kind, namespace, item["metadata"]["name"])

    async def _remove_backend(self, obj: Tenant) -> None:
        """Reverse order of onboarding; deleting the domain takes its users, groups and
        their credentials with it. Missing objects count as removed."""
        name = obj.metadata.name
        await self.client.delete(SECRETS, name, CREDENTIALS_SECRET)
        domain_id, project_id = obj.status.domainID, obj.status.projectID
        if not domain_id and obj.status.condition("DomainReady") is None:
            return  # the domain step never ran: nothing was created in Keystone
        if not domain_id:
            domain_id = (await self.identity.ensure_domain(name, name)).id
        if project_id:
            await _ignore_missing(self.identity.set_limits(project_id, {}))
            await _ignore_missing(self.identity.delete_project(project_id))
        if obj.spec.federation is not None:
            await _ignore_missing(self.identity.delete_federation(name))
        await _ignore_missing(self.identity.delete_domain(domain_id))

    async def _remove_namespaces(self, tenant: str) -> bool:
        """True once every namespace of the tenant is gone (their finalizers may take a
        while: the garbage collector empties them first)."""
        remaining = await tenant_namespaces(self.client, tenant)
        for ns in remaining:
            if not ns["metadata"].get("deletionTimestamp"):
                await self.client.delete(NAMESPACES, "", ns["metadata"]["name"])
        return not remaining


def _block(obj: Tenant, reason: str, message: str, blocked: bool = True) -> None:
    """Why deletion waits (``DeletionBlocked`` False while the deletion just takes time)."""
    obj.set_condition("DeletionBlocked", blocked, reason, message)
    obj.set_condition("Ready", False, "Deleting", message)


def credentials_secret(tenant: str, credential: AppCredential, region: str
                       ) -> dict[str, Any]:
    """A Secret with a clouds.yaml for the tenant's own tools (cloud name = tenant)."""
    auth = dict(credential.auth)
    auth.setdefault("application_credential_id", credential.id)
    auth.setdefault("application_credential_secret", credential.secret)
    cloud: dict[str, Any] = {"auth_type": "v3applicationcredential", "auth": auth,
                             "identity_api_version": 3}
    if region:
        cloud["region_name"] = region
    clouds = yaml.safe_dump({"clouds": {tenant: cloud}}, sort_keys=False)
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": CREDENTIALS_SECRET, "namespace": tenant,
                         "annotations": {CREDENTIAL_ID: credential.id}},
            "data": {"clouds.yaml": base64.b64encode(clouds.encode()).decode()}}


def _credential_id(secret: dict[str, Any] | None) -> str:
    if secret is None:
        return ""
    return str((secret["metadata"].get("annotations") or {}).get(CREDENTIAL_ID, ""))


async def _list_or_empty(client: Client, kind: Kind, namespace: str) -> list[dict[str, Any]]:
    """Objects of a kind that may not be served at all (an operator offering no IaaS)."""
    try:
        items, _ = await client.list(kind, namespace)
    except LookupError:  # LocalClient: the kind is not in the catalog
        return []
    except ApiError as exc:  # HttpClient: the API does not serve it
        if exc.code == 404:
            return []
        raise
    return items


async def _ignore_missing(call: Awaitable[None]) -> None:
    try:
        await call
    except NotFound:
        pass
