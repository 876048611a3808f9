"""Kubernetes RBAC: who may do what, decided from Roles, ClusterRoles and their bindings.

The semantics follow ``k8s.io/kubernetes/pkg/registry/rbac/validation`` and
``plugin/pkg/auth/authorizer/rbac`` to the letter, because users bring RBAC manifests and
``kubectl auth can-i`` habits from Kubernetes and must get the same answers here:

- rule matching (:func:`rule_allows`): verbs and apiGroups with ``*``; resources ``*``,
  ``res/sub`` and ``*/sub``; resourceNames restrict named requests only, so a rule with names
  never allows list, watch, create or deletecollection; nonResourceURLs with a ``*`` suffix;
- bindings: a RoleBinding grants only inside its own namespace, a ClusterRoleBinding
  everywhere and for non-resource URLs; subjects are Users, Groups and ServiceAccounts
  (``system:serviceaccount:<ns>:<name>``);
- aggregated ClusterRoles: the rules are the union of the ClusterRoles their selectors match
  (computed when read, where Kubernetes runs a controller that writes them back);
- escalation prevention (:func:`check_role_write`, :func:`check_binding_write`): nobody can
  grant permissions they do not hold, unless allowed to ``escalate`` (roles) or ``bind``
  (bindings). This is what lets a tenant admin manage its own team's access safely.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

from ..kinds.rbac import CLUSTER_ROLE, CLUSTER_ROLE_BINDING, GROUP, ROLE, ROLE_BINDING
from ..machinery.errors import ApiError
from ..machinery.selectors import from_label_selector_object
from ..machinery.user import MASTERS, User
from ..registry.informers import Informers, on_any_change
from .authz import Attributes, Authorizer, Decision

Rule = dict[str, Any]
SA_PREFIX = "system:serviceaccount:"
FULL_AUTHORITY: list[Rule] = [
    {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
    {"verbs": ["*"], "nonResourceURLs": ["*"]},
]
"""What it takes to set an aggregationRule: it can gather anything (kube's fullAuthority)."""


# -- rule matching (rbac/v1 helpers) ---------------------------------------------------------
def verb_matches(rule: Rule, verb: str) -> bool:
    return any(v in ("*", verb) for v in rule.get("verbs") or ())


def api_group_matches(rule: Rule, group: str) -> bool:
    return any(g in ("*", group) for g in rule.get("apiGroups") or ())


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    """``combined`` is ``res`` or ``res/sub``; ``*/sub`` matches that subresource of anything."""
    for res in rule.get("resources") or ():
        if res in ("*", combined):
            return True
        if subresource and res == "*/" + subresource:
            return True
    return False


def resource_name_matches(rule: Rule, name: str) -> bool:
    """No names means every object; with names, a request without a name never matches."""
    names = rule.get("resourceNames") or ()
    return not names or name in names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Rule) -> bool:
    """Kube's RuleAllows: does this one rule allow the request?"""
    if not attrs.is_resource:
        return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return (verb_matches(rule, attrs.verb) and api_group_matches(rule, attrs.api_group)
            and resource_matches(rule, combined, attrs.subresource)
            and resource_name_matches(rule, attrs.name))


# -- covering (policy_comparator.go) ---------------------------------------------------------
def breakdown_rule(rule: Rule) -> list[Rule]:
    """Split a rule into one rule per (group, resource, verb[, name]) and (url, verb)."""
    out: list[Rule] = []
    names = rule.get("resourceNames") or []
    for group in rule.get("apiGroups") or ():
        for resource in rule.get("resources") or ():
            for verb in rule.get("verbs") or ():
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                out += [{**base, "resourceNames": [n]} for n in names] if names else [base]
    for url in rule.get("nonResourceURLs") or ():
        out += [{"nonResourceURLs": [url], "verbs": [verb]} for verb in rule.get("verbs") or ()]
    return out


def _has_all(owned: list[str], wanted: list[str]) -> bool:
    return set(wanted) <= set(owned)


def _resources_cover(owned: list[str], wanted: list[str]) -> bool:
    if "*" in owned or _has_all(owned, wanted):
        return True
    for res in wanted:
        if res in owned:
            continue
        if "/" not in res or "*/" + res.split("/", 1)[1] not in owned:
            return False
    return True


def _url_covers(owner: str, sub: str) -> bool:
    return owner == sub or (owner.endswith("*") and sub.startswith(owner.rstrip("*")))


def _urls_cover(owned: list[str], wanted: list[str]) -> bool:
    return all(any(_url_covers(o, w) for o in owned) for w in wanted)


def rule_covers(owner: Rule, sub: Rule) -> bool:
    """Kube's ruleCovers: does ``owner`` allow everything the (broken-down) ``sub`` does?"""
    def get(rule: Rule, key: str) -> list[str]:
        return list(rule.get(key) or [])

    verbs = "*" in get(owner, "verbs") or _has_all(get(owner, "verbs"), get(sub, "verbs"))
    groups = "*" in get(owner, "apiGroups") or _has_all(get(owner, "apiGroups"),
                                                        get(sub, "apiGroups"))
    resources = _resources_cover(get(owner, "resources"), get(sub, "resources"))
    urls = _urls_cover(get(owner, "nonResourceURLs"), get(sub, "nonResourceURLs"))
    owner_names, sub_names = get(owner, "resourceNames"), get(sub, "resourceNames")
    names = not owner_names or (bool(sub_names) and _has_all(owner_names, sub_names))
    return verbs and groups and resources and urls and names


def covers(owner_rules: list[Rule], servant_rules: list[Rule]) -> tuple[bool, list[Rule]]:
    """Kube's Covers: whether the owner holds every servant rule, and the pieces it lacks."""
    missing = [sub for rule in servant_rules for sub in breakdown_rule(rule)
               if not any(rule_covers(owner, sub) for owner in owner_rules)]
    return not missing, missing


def compact_rules(rules: list[Rule]) -> list[Rule]:
    """Merge single group/resource rules that differ only in verbs (kube's CompactRules)."""
    merged: dict[str, Rule] = {}
    out: list[Rule] = []
    for rule in rules:
        if rule.get("nonResourceURLs") or rule.get("resourceNames") \
                or len(rule.get("apiGroups") or []) != 1 or len(rule.get("resources") or []) != 1:
            out.append(rule)
            continue
        key = json.dumps([rule["apiGroups"], rule["resources"]])
        if key in merged:
            merged[key]["verbs"] += [v for v in rule["verbs"] if v not in merged[key]["verbs"]]
        else:
            merged[key] = {**rule, "verbs": list(rule["verbs"])}
            out.append(merged[key])
    return out


def compact_string(rule: Rule) -> str:
    """``{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}`` as kube prints rules."""
    def q(values: list[str]) -> str:
        return "[" + " ".join(json.dumps(v) for v in values) + "]"

    parts = [f"{label}:{q(rule[key])}" for key, label in (
        ("apiGroups", "APIGroups"), ("resources", "Resources"),
        ("nonResourceURLs", "NonResourceURLs"), ("resourceNames", "ResourceNames"),
        ("verbs", "Verbs")) if rule.get(key)]
    return "{" + ", ".join(parts) + "}"


# -- where the RBAC objects come from --------------------------------------------------------
class RuleSource(Protocol):
    """The RBAC objects the authorizer decides from (kube's RoleGetter & co.)."""

    def roles(self, namespace: str) -> list[dict[str, Any]]: ...

    def role_bindings(self, namespace: str) -> list[dict[str, Any]]: ...

    def cluster_roles(self) -> list[dict[str, Any]]: ...

    def cluster_role_bindings(self) -> list[dict[str, Any]]: ...


class InformerRuleSource:
    """The RBAC objects from the process's shared informers: authorizing a request costs no
    store read, and every replica follows every change to them from the watch."""

    def __init__(self, informers: Informers) -> None:
        self._roles = informers.informer(ROLE.storage_resource)
        self._role_bindings = informers.informer(ROLE_BINDING.storage_resource)
        self._cluster_roles = informers.informer(CLUSTER_ROLE.storage_resource)
        self._cluster_role_bindings = informers.informer(CLUSTER_ROLE_BINDING.storage_resource)
        self.generation = 0
        """Counts the changes to the RBAC objects: decisions taken at another generation
        are not reused (:class:`RbacAuthorizer`)."""
        for informer in (self._roles, self._role_bindings, self._cluster_roles,
                         self._cluster_role_bindings):
            informer.add_handlers(on_any_change(self._changed))

    def _changed(self) -> None:
        self.generation += 1

    def roles(self, namespace: str) -> list[dict[str, Any]]:
        return self._roles.list(namespace)

    def role_bindings(self, namespace: str) -> list[dict[str, Any]]:
        return self._role_bindings.list(namespace)

    def cluster_roles(self) -> list[dict[str, Any]]:
        return self._cluster_roles.list()

    def cluster_role_bindings(self) -> list[dict[str, Any]]:
        return self._cluster_role_bindings.list()


# -- resolving bindings to rules -------------------------------------------------------------
def _named(objects: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["metadata"]["name"] == name), None)


def _selected(role: dict[str, Any], selectors: list[Any]) -> bool:
    labels = role["metadata"].get("labels") or {}
    for sel in selectors:
        try:
            if from_label_selector_object(sel).matches(labels):
                return True
        except ApiError:
            continue  # an invalid selector selects nothing
    return False


def cluster_role_rules(source: RuleSource, name: str) -> list[Rule] | None:
    """The effective rules of a ClusterRole, None if it does not exist.

    An aggregated ClusterRole's own ``rules`` are ignored (kube's controller overwrites them);
    it gets the union of the effective rules of every other ClusterRole a selector matches.
    """
    roles = source.cluster_roles()
    return _effective(roles, name, frozenset())


def _effective(roles: list[dict[str, Any]], name: str,
               visiting: frozenset[str]) -> list[Rule] | None:
    role = _named(roles, name)
    if role is None:
        return None
    aggregation = role.get("aggregationRule")
    if aggregation is None:
        return list(role.get("rules") or [])
    selectors = aggregation.get("clusterRoleSelectors") or []
    rules: list[Rule] = []
    for other in roles:
        other_name = other["metadata"]["name"]
        if other_name == name or other_name in visiting or not _selected(other, selectors):
            continue
        for rule in _effective(roles, other_name, visiting | {name}) or []:
            if rule not in rules:
                rules.append(rule)
    return rules


def role_ref_rules(source: RuleSource, ref: dict[str, Any], namespace: str) -> list[Rule] | None:
    """The rules a roleRef names (a Role in ``namespace`` or a ClusterRole), None if missing."""
    if ref.get("kind") == "ClusterRole":
        return cluster_role_rules(source, ref.get("name", ""))
    if ref.get("kind") == "Role" and namespace:
        role = _named(source.roles(namespace), ref.get("name", ""))
        return None if role is None else list(role.get("rules") or [])
    return None


def applies_to(user: User, subject: dict[str, Any], namespace: str) -> bool:
    """Kube's appliesToUser; ``namespace`` is the binding's ("" for ClusterRoleBindings)."""
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user.name == f"{SA_PREFIX}{sa_namespace}:{name}"
    return False


def _describe_subject(subject: dict[str, Any], namespace: str) -> str:
    name = subject.get("name", "")
    if subject.get("kind") == "ServiceAccount":
        name = f"{name}/{subject.get('namespace') or namespace}"
    return f'{subject.get("kind")} "{name}"'


def _binding_grants(source: RuleSource, user: User, binding: dict[str, Any],
                    namespace: str) -> tuple[str, list[Rule]] | None:
    """(why, rules) if ``binding`` applies to ``user``; rules are resolved only then."""
    subject = next((s for s in binding.get("subjects") or []
                    if applies_to(user, s, namespace)), None)
    if subject is None:
        return None
    ref = binding.get("roleRef") or {}
    rules = role_ref_rules(source, ref, namespace) or []
    meta = binding["metadata"]
    what = (f'RoleBinding "{meta["name"]}/{namespace}"' if namespace
            else f'ClusterRoleBinding "{meta["name"]}"')
    why = (f'{what} of {ref.get("kind")} "{ref.get("name")}" to '
           f"{_describe_subject(subject, namespace)}")
    return why, rules


def grants(source: RuleSource, user: User, namespace: str) -> Iterator[tuple[str, list[Rule]]]:
    """Every binding that applies to ``user`` in ``namespace`` with its rules, lazily:
    ClusterRoleBindings first, then the namespace's RoleBindings (kube's visit order)."""
    for binding in source.cluster_role_bindings():
        if found := _binding_grants(source, user, binding, ""):
            yield found
    if namespace:
        for binding in source.role_bindings(namespace):
            if found := _binding_grants(source, user, binding, namespace):
                yield found


def effective_rules(source: RuleSource, user: User, namespace: str) -> list[Rule]:
    """All rules ``user`` holds in ``namespace`` ("" = cluster-wide only), kube's RulesFor."""
    return [rule for _, rules in grants(source, user, namespace) for rule in rules]


def rules_for(source: RuleSource, user: User,
              namespace: str) -> tuple[list[Rule], list[Rule]]:
    """(resource rules, non-resource rules) in SelfSubjectRulesReview's shape."""
    resource: list[Rule] = []
    non_resource: list[Rule] = []
    for rule in effective_rules(source, user, namespace):
        if rule.get("resources"):
            entry = {"verbs": list(rule.get("verbs") or []),
                     "apiGroups": list(rule.get("apiGroups") or []),
                     "resources": list(rule["resources"])}
            if rule.get("resourceNames"):
                entry["resourceNames"] = list(rule["resourceNames"])
            resource.append(entry)
        if rule.get("nonResourceURLs"):
            non_resource.append({"verbs": list(rule.get("verbs") or []),
                                 "nonResourceURLs": list(rule["nonResourceURLs"])})
    return resource, non_resource


DECISIONS_KEPT = 8192
"""Decisions remembered per RBAC generation (a user's requests repeat a few dozen)."""

DecisionKey = tuple[str, tuple[str, ...], str, str, str, str, str, str, str]


class RbacAuthorizer:
    """Allows what some binding of the user grants; otherwise no opinion (a denial).

    Deciding walks every ClusterRoleBinding and the namespace's RoleBindings and resolves
    their roles, on every request. With a source that counts its changes (``generation``,
    the informers'), a decision is kept until the next change to any RBAC object: the
    informer's handler bumps the count as it applies the change, so a role or binding
    change holds from the next request on, as without the cache.
    """

    def __init__(self, source: RuleSource) -> None:
        self.source = source
        self._decisions: tuple[int, dict[DecisionKey, Decision]] = (-1, {})

    def authorize(self, attrs: Attributes) -> Decision:
        generation: int | None = getattr(self.source, "generation", None)
        if generation is None:
            return self._decide(attrs)
        kept_at, decisions = self._decisions
        if kept_at != generation or len(decisions) >= DECISIONS_KEPT:
            decisions = {}
            self._decisions = (generation, decisions)
        key = (attrs.user.name, attrs.user.groups, attrs.verb, attrs.api_group, attrs.resource,
               attrs.subresource, attrs.namespace, attrs.name, attrs.path)
        decision = decisions.get(key)
        if decision is None:
            # kept in the dict of the generation read before deciding: if a change came
            # meanwhile (admission decides in worker threads), that dict is dropped
            decision = decisions[key] = self._decide(attrs)
        return decision

    def _decide(self, attrs: Attributes) -> Decision:
        namespace = attrs.namespace if attrs.is_resource else ""
        for why, rules in grants(self.source, attrs.user, namespace):
            if any(rule_allows(attrs, rule) for rule in rules):
                return Decision(True, f"RBAC: allowed by {why}")
        return Decision(False, "")


# -- escalation prevention -------------------------------------------------------------------
def escalation_violations(source: RuleSource, user: User, namespace: str,
                          requested_rules: list[Rule]) -> list[Rule]:
    """The parts of ``requested_rules`` the user does not hold in ``namespace`` (kube's
    ConfirmNoEscalation); empty when granting them would not escalate."""
    return covers(effective_rules(source, user, namespace), requested_rules)[1]


def _not_held_message(user: User, missing: list[Rule]) -> str:
    groups = "[" + " ".join(json.dumps(g) for g in user.groups) + "]"
    lines = sorted({compact_string(rule) for rule in compact_rules(missing)})
    return (f'user "{user.name}" (groups={groups}) is attempting to grant RBAC permissions '
            "not currently held:\n" + "\n".join(lines))


GC_FIELDS = ("ownerReferences", "finalizers")
IGNORED_META = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp",
                "deletionTimestamp", "deletionGracePeriodSeconds")


def only_gc_fields_changed(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """Kube's IsOnlyMutatingGCFields: such updates (by the garbage collector) skip the checks."""
    if old is None:
        return False

    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items()
                if k not in GC_FIELDS + IGNORED_META}
        return {**{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")},
                "metadata": meta}

    return strip(new) == strip(old)


def _allowed(authorizer: Authorizer, user: User, verb: str, resource: str, namespace: str,
             name: str) -> bool:
    attrs = Attributes(user, verb, GROUP, resource, namespace=namespace, name=name)
    return MASTERS in user.groups or authorizer.authorize(attrs).allowed


def check_role_write(authorizer: Authorizer, source: RuleSource, user: User, resource: str,
                     namespace: str, obj: dict[str, Any],
                     old: dict[str, Any] | None = None) -> str | None:
    """Why writing this Role (``resource`` "roles") or ClusterRole ("clusterroles", namespace
    "") would escalate the user's privileges, or None when it may proceed.

    Allowed when the user holds every rule, or may ``escalate`` on the role; an aggregationRule
    needs full authority since it can gather anything. The message is kube's; the caller
    answers 403 ``<resource>.rbac.authorization.k8s.io "<name>" is forbidden: <message>``.
    """
    name = (obj.get("metadata") or {}).get("name", "")
    if only_gc_fields_changed(obj, old) or _allowed(authorizer, user, "escalate", resource,
                                                    namespace, name):
        return None
    if resource == "clusterroles" and obj.get("aggregationRule") is not None \
            and escalation_violations(source, user, "", FULL_AUTHORITY):
        return "must have cluster-admin privileges to use the aggregationRule"
    missing = escalation_violations(source, user, namespace, list(obj.get("rules") or []))
    return _not_held_message(user, missing) if missing else None


def check_binding_write(authorizer: Authorizer, source: RuleSource, user: User,
                        namespace: str, obj: dict[str, Any],
                        old: dict[str, Any] | None = None) -> str | None:
    """Why writing this RoleBinding (in ``namespace``) or ClusterRoleBinding (namespace "")
    would grant more than the user holds, or None when it may proceed.

    Allowed when the user may ``bind`` the referenced role (``roles``/``clusterroles`` with
    its name, checked in the binding's namespace) or already holds all of its rules there.
    A roleRef that validation will reject is left to validation.
    """
    ref = dict(obj.get("roleRef") or {})
    ref.setdefault("apiGroup", GROUP)
    resource = {"Role": "roles", "ClusterRole": "clusterroles"}.get(ref.get("kind", ""))
    if resource is None or ref["apiGroup"] != GROUP or only_gc_fields_changed(obj, old):
        return None
    if _allowed(authorizer, user, "bind", resource, namespace, ref.get("name", "")):
        return None
    rules = role_ref_rules(source, ref, namespace)
    if rules is None:
        return f'{resource}.{GROUP} "{ref.get("name", "")}" not found'
    missing = escalation_violations(source, user, namespace, rules)
    return _not_held_message(user, missing) if missing else None
