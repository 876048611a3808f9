"""The built-in ClusterRoles of the SCS role model, created and repaired at every start.

Each role is meant to be bound in a tenant's namespaces with a RoleBinding (a controller binds
``tenant-admin`` to a Tenant's ``spec.admins``); only ``cloud-admin`` and ``scs:basic-user``
make sense in a ClusterRoleBinding. Rights of a RoleBinding end at its namespace, so none of
the tenant roles reaches cluster-scoped objects (Tenants, Namespaces, CRDs, ClusterRoles).

====================  ==========================================================================
role                  may
====================  ==========================================================================
``cloud-admin``       everything: every verb on every resource of every group, and every
                      non-resource URL (the cloud operator)
``tenant-admin``      the SCS domain manager, in its tenant's namespaces: create, get, list,
                      watch, update, patch, delete, deletecollection of the kinds of
                      ``iaas``, ``kaas`` and ``iam.scs.community`` (users, groups, role
                      assignments) and their action subresources; get/list/watch of
                      ``status`` and ``metering.scs.community``; the same full control of
                      Secrets, ServiceAccounts, Roles and RoleBindings; create
                      ``serviceaccounts/token`` (a token's account may hold no more than its
                      requester); get/list/watch its Namespace. Never Tenants,
                      CRDs, ClusterRoles, ClusterRoleBindings or deleting Namespaces; never
                      granting more than it holds (RBAC escalation checks)
``member``            create, get, list, watch, update, patch, delete of the kinds of ``iaas``
                      and ``kaas.scs.community`` (and their action subresources, except
                      ``clusters/adminkubeconfig``: a member reaches a cluster with its own
                      OIDC login through ``clusters/kubeconfig``), Secrets and
                      ServiceAccounts (no ``serviceaccounts/token``: a token acts as its
                      account, even when the account is bound a role only after the token was
                      minted, and a member cannot vouch for what a tenant admin will bind to
                      an account later); get/list/watch of
                      ``iam``, ``status``, ``metering.scs.community``, Roles, RoleBindings and
                      its Namespace. No RBAC writes
``viewer``            get, list, watch of the kinds of all SCS groups above (and their
                      ``/status``), ServiceAccounts, Roles, RoleBindings and its Namespace. Not
                      Secrets, no action subresources (they can hand out credentials)
``status-editor``     every verb on the kinds of ``status.scs.community`` (components,
                      incidents, impact types, severities, phase lists; cluster-scoped) and
                      get of ``components/status``: who writes the status page, through its
                      REST API or kubectl. Bind it with a ClusterRoleBinding
``status-reader``     get, list, watch of the same kinds and ``components/status``, bound to
                      every authenticated user: the status page is public anyway
``metering-ingest``   create of ``ceilometersamples`` in ``metering.scs.community`` (a virtual
                      resource): what Ceilometer's publisher token needs to post to
                      ``/webhooks/ceilometer``. Bind it with a ClusterRoleBinding
``scs:basic-user``    bound to every authenticated user (group ``system:authenticated``):
                      create SelfSubjectReview, SelfSubjectAccessReview and
                      SelfSubjectRulesReview (``kubectl auth whoami`` / ``can-i``); get of
                      ``/api``, ``/apis``, ``/openapi`` (and below), ``/version``,
                      ``/healthz``, ``/readyz``, ``/livez`` (discovery)
====================  ==========================================================================

The SCS roles list the kinds the server serves when it starts, not ``*``: a wildcard would
also match subresources, and a viewer must not ``get`` e.g. a cluster's kubeconfig. Status
subresources are readable by every tenant role and writable by none (controllers own status).
Kinds a CRD adds to an SCS group later are covered at the next start.

Every object carries the label ``scs.community/bootstrapping: rbac-defaults``. Drift is reset
at start unless the object is annotated ``rbac.authorization.kubernetes.io/autoupdate:
"false"`` (kube's opt-out). Objects with other names are never touched.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ..kinds.catalog import Catalog
from ..kinds.kind import ResourceType
from ..kinds.rbac import CLUSTER_ROLE, CLUSTER_ROLE_BINDING, GROUP
from ..machinery.errors import ApiError
from ..machinery.user import AUTHENTICATED
from ..registry.resources import DeleteOptions, Resources, WriteOptions

log = logging.getLogger("central_api.rbac")

BOOTSTRAP_LABEL = "scs.community/bootstrapping"
BOOTSTRAP_VALUE = "rbac-defaults"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
MANAGER = "scs-rbac-bootstrap"

CLOUD_ADMIN, TENANT_ADMIN, MEMBER, VIEWER = "cloud-admin", "tenant-admin", "member", "viewer"
BASIC_USER = "scs:basic-user"
STATUS_EDITOR, STATUS_READER = "status-editor", "status-reader"
METERING_INGEST = "metering-ingest"

IAAS, KAAS, IAM = "iaas.scs.community", "kaas.scs.community", "iam.scs.community"
STATUS, METERING = "status.scs.community", "metering.scs.community"
SCS_GROUPS = [IAAS, KAAS, IAM, STATUS, METERING]

READ = ["get", "list", "watch"]
MEMBER_WRITE = ["create", "delete", "get", "list", "patch", "update", "watch"]
FULL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
ADMIN_CREDENTIALS = frozenset({"clusters/adminkubeconfig"})
"""Action subresources that hand out an admin credential of a backend: tenant admins (and
cloud admins) only, like Gardener's project viewers lack ``shoots/adminkubeconfig``."""
DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version",
                  "/healthz", "/readyz", "/livez"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


def _kinds(catalog: Catalog, group: str) -> list[ResourceType]:
    return [rt for rt in catalog.all() if rt.group == group and rt.namespaced]


def _group_rules(catalog: Catalog, groups: list[str], verbs: list[str],
                 actions: bool, withheld: frozenset[str] = frozenset()
                 ) -> list[dict[str, Any]]:
    """One rule per group over its served namespaced kinds (none if it serves none yet);
    ``actions`` adds each action subresource with the verbs it answers, limited to ``verbs``,
    except the ``withheld`` ones (``plural/subresource``)."""
    rules = []
    for group in groups:
        kinds = _kinds(catalog, group)
        if plurals := sorted({rt.plural for rt in kinds}):
            rules.append(_rule([group], plurals, verbs))
        if actions:
            rules += _action_rules(kinds, group, verbs, withheld)
    return rules


def _status_rules(catalog: Catalog) -> list[dict[str, Any]]:
    """Read access to the ``/status`` of every SCS kind: every tenant role has it, so a
    tenant admin holds (and may therefore bind) everything member and viewer grant."""
    rules = []
    for group in SCS_GROUPS:
        subs = sorted({f"{rt.plural}/status" for rt in _kinds(catalog, group)
                       if rt.status_subresource})
        if subs:
            rules.append(_rule([group], subs, READ))
    return rules


def _action_rules(kinds: list[ResourceType], group: str, verbs: list[str],
                  withheld: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    by_verbs: dict[tuple[str, ...], set[str]] = {}
    for rt in kinds:
        for sub, (_kind, sub_verbs) in rt.action_subresources.items():
            allowed = tuple(v for v in sub_verbs if v in verbs)
            if allowed and f"{rt.plural}/{sub}" not in withheld:
                by_verbs.setdefault(allowed, set()).add(f"{rt.plural}/{sub}")
    return [_rule([group], sorted(subs), list(v)) for v, subs in sorted(by_verbs.items())]


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {BOOTSTRAP_LABEL: BOOTSTRAP_VALUE}},
            "rules": rules}


def cloud_admin_rules() -> list[dict[str, Any]]:
    return [_rule(["*"], ["*"], ["*"]), {"verbs": ["*"], "nonResourceURLs": ["*"]}]


def tenant_admin_rules(catalog: Catalog) -> list[dict[str, Any]]:
    return [*_group_rules(catalog, [IAAS, KAAS, IAM], FULL, actions=True),
            *_group_rules(catalog, [STATUS, METERING], READ, actions=False),
            *_status_rules(catalog),
            _rule([""], ["secrets", "serviceaccounts"], FULL),
            _rule([""], ["serviceaccounts/token"], ["create"]),
            _rule([GROUP], ["rolebindings", "roles"], FULL),
            _rule([""], ["namespaces"], READ)]


def member_rules(catalog: Catalog) -> list[dict[str, Any]]:
    return [*_group_rules(catalog, [IAAS, KAAS], MEMBER_WRITE, actions=True,
                          withheld=ADMIN_CREDENTIALS),
            *_group_rules(catalog, [IAM, STATUS, METERING], READ, actions=False),
            *_status_rules(catalog),
            _rule([""], ["secrets", "serviceaccounts"], MEMBER_WRITE),
            _rule([GROUP], ["rolebindings", "roles"], READ),
            _rule([""], ["namespaces"], READ)]


def viewer_rules(catalog: Catalog) -> list[dict[str, Any]]:
    return [*_group_rules(catalog, SCS_GROUPS, READ, actions=False),
            *_status_rules(catalog),
            _rule([""], ["serviceaccounts"], READ),
            _rule([GROUP], ["rolebindings", "roles"], READ),
            _rule([""], ["namespaces"], READ)]


def basic_user_rules() -> list[dict[str, Any]]:
    """Every signed-in user: who am I, what may I, discovery, and the KaaS backend's offer
    (public like Gardener's CloudProfiles: it names versions, nothing of anyone's)."""
    return [_rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
            _rule([KAAS], ["clusterprofiles"], READ),
            _rule(["authorization.k8s.io"],
                  ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
            {"verbs": ["get"], "nonResourceURLs": list(DISCOVERY_URLS)}]


def status_rules(catalog: Catalog, verbs: list[str]) -> list[dict[str, Any]]:
    """``verbs`` on the served status.scs.community kinds (cluster-scoped, so none of the
    tenant roles above reaches them), and reading the Components' derived status."""
    kinds = [rt for rt in catalog.all() if rt.group == STATUS]
    if not kinds:
        return []
    rules = [_rule([STATUS], sorted({rt.plural for rt in kinds}), verbs)]
    if subs := sorted({f"{rt.plural}/status" for rt in kinds if rt.status_subresource}):
        rules.append(_rule([STATUS], subs, READ))
    return rules


def metering_ingest_rules() -> list[dict[str, Any]]:
    """Posting Ceilometer's samples (``server/ceilometer.py``); listed even where the
    metering service is off, so a binding made beforehand works once it is on."""
    return [_rule([METERING], ["ceilometersamples"], ["create"])]


def _cluster_binding(name: str, role: str, group: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {BOOTSTRAP_LABEL: BOOTSTRAP_VALUE}},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": group}]}


def bootstrap_policy(catalog: Catalog) -> list[tuple[ResourceType, dict[str, Any]]]:
    """Every built-in RBAC object, in creation order (roles before their binding)."""
    roles = [_cluster_role(CLOUD_ADMIN, cloud_admin_rules()),
             _cluster_role(TENANT_ADMIN, tenant_admin_rules(catalog)),
             _cluster_role(MEMBER, member_rules(catalog)),
             _cluster_role(VIEWER, viewer_rules(catalog)),
             _cluster_role(BASIC_USER, basic_user_rules()),
             _cluster_role(STATUS_EDITOR, status_rules(catalog, FULL)),
             _cluster_role(STATUS_READER, status_rules(catalog, READ)),
             _cluster_role(METERING_INGEST, metering_ingest_rules())]
    bindings = [_cluster_binding(BASIC_USER, BASIC_USER, AUTHENTICATED),
                _cluster_binding(STATUS_READER, STATUS_READER, AUTHENTICATED)]
    return [*((CLUSTER_ROLE, role) for role in roles),
            *((CLUSTER_ROLE_BINDING, binding) for binding in bindings)]


def ensure_bootstrap_roles(resources: Resources) -> None:
    """Create the built-in RBAC objects, or reset drifted ones; idempotent, and safe when
    several replicas start at once (a lost race is simply left to the winner)."""
    for rt, desired in bootstrap_policy(resources.catalog):
        try:
            _ensure(resources, rt, desired)
        except ApiError as exc:
            if exc.code != 409:
                raise
            log.info("%s %s changed concurrently: %s", rt.kind, desired["metadata"]["name"], exc)


SPEC_FIELDS = ("rules", "aggregationRule", "roleRef", "subjects")


def _ensure(resources: Resources, rt: ResourceType, desired: dict[str, Any]) -> None:
    name = desired["metadata"]["name"]
    try:
        live = resources.get(rt, "", name)
    except ApiError as exc:
        if exc.code != 404:
            raise
        resources.create(rt, "", desired, WriteOptions(field_manager=MANAGER))
        log.info("created %s %s", rt.kind, name)
        return
    meta = live["metadata"]
    if (meta.get("annotations") or {}).get(AUTOUPDATE) == "false" or not _drifted(live, desired):
        return
    if live.get("roleRef") != desired.get("roleRef"):  # immutable: replace the binding
        resources.delete(rt, "", name, DeleteOptions(precondition_uid=meta["uid"]))
        resources.create(rt, "", desired, WriteOptions(field_manager=MANAGER))
    else:
        resources.update(rt, "", name, _repaired(live, desired),
                         WriteOptions(field_manager=MANAGER))
    log.info("reset drifted %s %s", rt.kind, name)


def _drifted(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    labels = live["metadata"].get("labels") or {}
    return (labels.get(BOOTSTRAP_LABEL) != BOOTSTRAP_VALUE
            or any(live.get(f) != desired.get(f) for f in SPEC_FIELDS))


def _repaired(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The live object with the desired content; other labels and annotations are kept."""
    out = copy.deepcopy(live)
    for f in SPEC_FIELDS:
        if f in desired:
            out[f] = copy.deepcopy(desired[f])
        else:
            out.pop(f, None)
    out["metadata"].setdefault("labels", {})[BOOTSTRAP_LABEL] = BOOTSTRAP_VALUE
    return out
