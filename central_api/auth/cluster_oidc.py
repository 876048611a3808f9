"""A new Cluster trusts its tenant's identity provider unless it names another one.

Why: one customer login should reach the Central API, OpenStack and the tenant's clusters
(federation across IaaS and KaaS). The operator registers the tenant's IdP in
``Tenant.spec.federation``; the Central API then logs its users in as ``<tenant>:<name>``
(:mod:`~central_api.auth.federation`). A cluster created without ``spec.oidc`` gets the same
issuer, client and claims, and the same ``<tenant>:`` prefix for users and groups, so RBAC
inside the cluster names a person or group exactly as the Central API's RBAC does.

Only at creation: later updates are not defaulted (the cluster's API server is not
reconfigured behind the user's back when the tenant's IdP changes; an update that leaves
``oidc`` out removes it). Without ``spec.federation`` the field stays unset (the backend's
default: no OIDC).

Who may change it (:class:`ClusterTrustAdmission`): whoever chooses the issuer an existing
cluster trusts, and its prefixes, can sign in there as anyone (an IdP of one's own, an empty
``groupsPrefix`` and a ``kubeadm:cluster-admins`` groups claim), so pointing ``spec.oidc`` of
an existing Cluster somewhere new takes what an admin credential of it takes: ``create`` on
its ``clusters/adminkubeconfig``. Members, who are refused admin kubeconfigs, may still scale
and upgrade the cluster, and remove its OIDC trust (that grants nothing).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..kinds.kaas import Oidc
from ..kinds.kaas_access import ADMIN_KUBECONFIG
from ..kinds.kind import ResourceType
from ..kinds.tenancy import federated_name
from ..machinery.errors import ApiError, Cause
from ..registry.informers import Informers
from ..registry.resources import WriteOptions
from ..store.base import Store
from .authz import Attributes, Authorizer
from .cluster_quota import CLUSTERS, ComputeUsage, stored_tenant, tenant_of
from .tenants import TENANTS


def oidc_of_tenant(tenant: str, federation: dict[str, Any]) -> dict[str, Any] | None:
    """A Cluster's ``spec.oidc`` for the tenant's IdP, mapped as the Central API maps its
    tokens (claims from ``claimMappings``, names prefixed ``<tenant>:``); None if the IdP
    does not fit the field (e.g. a longer issuer URL than a Cluster allows), since admission
    must not store what the schema would refuse."""
    claims = federation.get("claimMappings") or {}
    prefix = federated_name(tenant, "")
    found = {"issuerURL": federation.get("issuerURL"), "clientID": federation.get("clientID"),
             "usernameClaim": claims.get("username") or "email",
             "groupsClaim": claims.get("groups") or "groups",
             "usernamePrefix": prefix, "groupsPrefix": prefix}
    try:
        Oidc.model_validate(found)
    except ValidationError:
        return None
    return found


class ClusterOidcDefault:
    """Mutating admission: default a new Cluster's ``spec.oidc`` from its Tenant."""

    def __init__(self, usage: ComputeUsage, informers: Informers, store: Store) -> None:
        self.usage = usage
        self.tenants = informers.informer(TENANTS)
        self.store = store

    def __call__(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                 opts: WriteOptions) -> None:
        if rt.storage_resource != CLUSTERS or old is not None:
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict) or spec.get("oidc"):
            return
        tenant = tenant_of(self.usage, self.store, obj["metadata"]["namespace"])
        found = stored_tenant(self.tenants, self.store, tenant) if tenant else None
        federation = ((found or {}).get("spec") or {}).get("federation")
        oidc = oidc_of_tenant(tenant, federation) \
            if tenant and isinstance(federation, dict) else None
        if oidc is not None:
            spec["oidc"] = oidc


class ClusterTrustAdmission:
    """Refuses a change of an existing Cluster's ``spec.oidc`` to a new issuer or prefixes
    by a writer who may not get an admin kubeconfig of it (module doc)."""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    def __call__(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                 opts: WriteOptions) -> None:
        if rt.storage_resource != CLUSTERS or old is None or opts.user is None:
            return
        wanted = (obj.get("spec") or {}).get("oidc")
        if not wanted or wanted == (old.get("spec") or {}).get("oidc"):
            return
        name = obj["metadata"]["name"]
        if self.authorizer.authorize(Attributes(
                opts.user, "create", rt.group, rt.plural, ADMIN_KUBECONFIG,
                obj["metadata"].get("namespace", ""), name)).allowed:
            return
        why = (f"changing whom the cluster trusts needs create on {rt.plural}/"
               f"{ADMIN_KUBECONFIG} (the issuer and prefixes decide who can sign in there "
               "as anyone); ask a tenant admin")
        raise ApiError(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: User '
                       f'"{opts.user.name}" cannot change spec.oidc: {why}',
                       causes=[Cause("spec.oidc", f"Forbidden: {why}", "FieldValueForbidden")],
                       group=rt.group, kind=rt.plural, name=name)
