"""``rbac.authorization.k8s.io/v1``: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

The four kinds have exactly Kubernetes' shape, so ``kubectl create role``, ``kubectl auth
can-i``, Helm charts and GitOps tools that ship RBAC manifests work unchanged. Who may do what
is decided from these objects by :mod:`central_api.auth.rbac`; this module only declares them
and enforces the validation kube-apiserver applies (``pkg/apis/rbac/validation``), including
defaulting ``roleRef.apiGroup`` and the ``apiGroup`` of User/Group subjects.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..machinery.errors import Cause
from ..machinery.metadata import DNS_SUBDOMAIN, path_segment_problem
from .catalog import Catalog
from .common import Model, Resource
from .kind import Column, ResourceType, Strategy, declare

GROUP = "rbac.authorization.k8s.io"
ATOMIC: dict[str, Any] = {"x-kubernetes-list-type": "atomic"}
SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


class PolicyRule(Model):
    """What a rule allows: verbs on resources of API groups, or on non-resource URLs."""

    verbs: list[str] = Field(
        description="Verbs that apply to all resources in this rule; '*' means all.",
        json_schema_extra=ATOMIC)
    apiGroups: list[str] | None = Field(
        None, description="API groups of the resources; '' is the core group, '*' all.",
        json_schema_extra=ATOMIC)
    resources: list[str] | None = Field(
        None, description="Resources ('*' all, 'res/sub' a subresource, '*/sub' every one).",
        json_schema_extra=ATOMIC)
    resourceNames: list[str] | None = Field(
        None, description="Optional white list of object names; empty means all.",
        json_schema_extra=ATOMIC)
    nonResourceURLs: list[str] | None = Field(
        None, description="Partial URLs ('/healthz', '/apis/*'); only in ClusterRoles.",
        json_schema_extra=ATOMIC)


class LabelSelectorRequirement(Model):
    key: str
    operator: str = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] | None = Field(None, json_schema_extra=ATOMIC)


class LabelSelector(Model):
    """A metav1.LabelSelector: matchLabels and matchExpressions are ANDed."""

    matchLabels: dict[str, str] | None = None
    matchExpressions: list[LabelSelectorRequirement] | None = Field(
        None, json_schema_extra=ATOMIC)


class AggregationRule(Model):
    """Makes a ClusterRole the union of the rules of the ClusterRoles it selects."""

    clusterRoleSelectors: list[LabelSelector] | None = Field(
        None, description="ClusterRoles matching any selector contribute their rules.",
        json_schema_extra=ATOMIC)


class RoleRef(Model):
    """The role a binding grants; it cannot change once the binding exists."""

    apiGroup: str = Field(GROUP, description="API group of the referenced role.")
    kind: str = Field(description="Role or ClusterRole.")
    name: str = Field(description="Name of the referenced role.")


class Subject(Model):
    """Who a binding applies to: a user, a group or a service account."""

    kind: str = Field(description="User, Group or ServiceAccount.")
    apiGroup: str | None = Field(
        None, description="'' for ServiceAccount, rbac.authorization.k8s.io otherwise.")
    name: str = Field(description="Name of the user, group or service account.")
    namespace: str | None = Field(
        None, description="Namespace of a ServiceAccount; required in ClusterRoleBindings.")


class Role(Resource):
    """A namespaced set of permissions, granted by a RoleBinding in the same namespace."""

    rules: list[PolicyRule] | None = Field(None, json_schema_extra=ATOMIC)


class ClusterRole(Resource):
    """A cluster-wide set of permissions, granted in one namespace by a RoleBinding or
    everywhere by a ClusterRoleBinding."""

    rules: list[PolicyRule] | None = Field(None, json_schema_extra=ATOMIC)
    aggregationRule: AggregationRule | None = Field(
        None, description="If set, the rules are the union of the selected ClusterRoles'.")


class RoleBinding(Resource):
    """Grants a Role or ClusterRole to subjects within the binding's namespace."""

    subjects: list[Subject] | None = Field(None, json_schema_extra=ATOMIC)
    roleRef: RoleRef


class ClusterRoleBinding(Resource):
    """Grants a ClusterRole to subjects in every namespace and cluster-wide."""

    subjects: list[Subject] | None = Field(None, json_schema_extra=ATOMIC)
    roleRef: RoleRef


class RbacStrategy(Strategy):
    """Kube's RBAC validation; ``namespaced`` and ``binding`` select the kind's rules."""

    def __init__(self, *, namespaced: bool, binding: bool) -> None:
        self.namespaced = namespaced
        self.binding = binding

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        _default_subjects(obj)

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        _default_subjects(new)

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None,
                 catalog: Catalog) -> list[Cause]:
        if self.binding:
            return self._validate_binding(obj, old)
        causes: list[Cause] = []
        for i, rule in _dicts(obj.get("rules")):
            causes += validate_policy_rule(rule, self.namespaced, f"rules[{i}]")
        return causes

    def _validate_binding(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        ref = obj.get("roleRef")
        causes = validate_role_ref(ref if isinstance(ref, dict) else {},
                                   allow_role=self.namespaced)
        for i, subject in _dicts(obj.get("subjects")):
            causes += validate_subject(subject, self.namespaced, f"subjects[{i}]")
        if old is not None and (old.get("roleRef") or {}) != (obj.get("roleRef") or {}):
            causes.append(Cause("roleRef", "Invalid value: cannot change roleRef"))
        return causes


def _dicts(value: Any) -> list[tuple[int, dict[str, Any]]]:
    """The objects of a list field with their index; the schema reports anything malformed."""
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _default_subjects(obj: dict[str, Any]) -> None:
    """Kube's SetDefaults_Subject: User and Group subjects belong to the RBAC group."""
    for _, subject in _dicts(obj.get("subjects")):
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = GROUP


def validate_policy_rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[Cause]:
    """A rule names verbs and either (groups and resources) or non-resource URLs, not both."""
    causes: list[Cause] = []
    if not rule.get("verbs"):
        causes.append(Cause(f"{path}.verbs", "Required value: verbs must contain at least one "
                            "value", "FieldValueRequired"))
    if rule.get("nonResourceURLs"):
        if namespaced:
            causes.append(Cause(f"{path}.nonResourceURLs", "Invalid value: namespaced rules "
                                "cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(Cause(f"{path}.nonResourceURLs", "Invalid value: rules cannot apply "
                                "to both regular resources and non-resource URLs"))
        return causes
    if not rule.get("apiGroups"):
        causes.append(Cause(f"{path}.apiGroups", "Required value: resource rules must supply "
                            "at least one api group", "FieldValueRequired"))
    if not rule.get("resources"):
        causes.append(Cause(f"{path}.resources", "Required value: resource rules must supply "
                            "at least one resource", "FieldValueRequired"))
    return causes


def validate_role_ref(ref: dict[str, Any], allow_role: bool) -> list[Cause]:
    """RoleBindings may reference a Role or a ClusterRole, ClusterRoleBindings only the latter."""
    causes: list[Cause] = []
    if ref.get("apiGroup") != GROUP:
        causes.append(Cause("roleRef.apiGroup", f'Unsupported value: "{ref.get("apiGroup")}": '
                            f'supported values: "{GROUP}"', "FieldValueNotSupported"))
    kinds = ["Role", "ClusterRole"] if allow_role else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        supported = ", ".join(f'"{k}"' for k in kinds)
        causes.append(Cause("roleRef.kind", f'Unsupported value: "{ref.get("kind")}": '
                            f"supported values: {supported}", "FieldValueNotSupported"))
    name = ref.get("name") or ""
    if not name:
        causes.append(Cause("roleRef.name", "Required value", "FieldValueRequired"))
    elif problem := path_segment_problem(name):
        causes.append(Cause("roleRef.name", f'Invalid value: "{name}": {problem}'))
    return causes


def validate_subject(subject: dict[str, Any], namespaced: bool, path: str) -> list[Cause]:
    """Kube's ValidateRoleBindingSubject."""
    causes: list[Cause] = []
    name, kind, group = subject.get("name") or "", subject.get("kind"), subject.get("apiGroup")
    if not name:
        causes.append(Cause(f"{path}.name", "Required value", "FieldValueRequired"))
    if kind == "ServiceAccount":
        if name and (len(name) > 253 or not DNS_SUBDOMAIN.match(name)):
            causes.append(Cause(f"{path}.name", f'Invalid value: "{name}": a lowercase RFC 1123 '
                                "subdomain must consist of lower case alphanumeric characters, "
                                "'-' or '.'"))
        if group:
            causes.append(Cause(f"{path}.apiGroup", f'Unsupported value: "{group}": supported '
                                'values: ""', "FieldValueNotSupported"))
        if not namespaced and not subject.get("namespace"):
            causes.append(Cause(f"{path}.namespace", "Required value", "FieldValueRequired"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            causes.append(Cause(f"{path}.apiGroup", f'Unsupported value: "{group}": supported '
                                f'values: "{GROUP}"', "FieldValueNotSupported"))
    else:
        causes.append(Cause(f"{path}.kind", f'Unsupported value: "{kind}": supported values: '
                            '"ServiceAccount", "User", "Group"', "FieldValueNotSupported"))
    return causes


def _role_column(obj: dict[str, Any]) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _subjects_column(kind: str) -> Column:
    """kubectl's wide columns: the users, groups or service accounts a binding names."""
    def names(obj: dict[str, Any]) -> str:
        chosen = [s for s in obj.get("subjects") or [] if s.get("kind") == kind]
        return ", ".join(f"{s.get('namespace', '')}/{s.get('name', '')}"
                         if kind == "ServiceAccount" else s.get("name", "") for s in chosen)
    title = {"User": "Users", "Group": "Groups", "ServiceAccount": "ServiceAccounts"}[kind]
    return Column(title, f'.subjects[?(@.kind=="{kind}")].name', priority=1, compute=names)


CREATED_AT = Column("Created At", ".metadata.creationTimestamp", "date",
                    "Time the role was created",
                    compute=lambda o: (o.get("metadata") or {}).get("creationTimestamp"))
"""Kubectl shows roles with their creation time (RFC 3339), not an age."""

BINDING_COLUMNS = [Column("Role", ".roleRef.name", description="The granted role",
                          compute=_role_column),
                   *(_subjects_column(k) for k in SUBJECT_KINDS)]

ROLE: ResourceType = declare(
    f"{GROUP}/v1", "Role", Role, status_subresource=False, columns=[CREATED_AT],
    strategy=RbacStrategy(namespaced=True, binding=False), path_segment_names=True)

CLUSTER_ROLE: ResourceType = declare(
    f"{GROUP}/v1", "ClusterRole", ClusterRole, namespaced=False, status_subresource=False,
    columns=[CREATED_AT], strategy=RbacStrategy(namespaced=False, binding=False),
    path_segment_names=True)

ROLE_BINDING: ResourceType = declare(
    f"{GROUP}/v1", "RoleBinding", RoleBinding, status_subresource=False,
    columns=BINDING_COLUMNS, strategy=RbacStrategy(namespaced=True, binding=True),
    path_segment_names=True)

CLUSTER_ROLE_BINDING: ResourceType = declare(
    f"{GROUP}/v1", "ClusterRoleBinding", ClusterRoleBinding, namespaced=False,
    status_subresource=False, columns=BINDING_COLUMNS,
    strategy=RbacStrategy(namespaced=False, binding=True), path_segment_names=True)

RBAC_KINDS = (ROLE, CLUSTER_ROLE, ROLE_BINDING, CLUSTER_ROLE_BINDING)
