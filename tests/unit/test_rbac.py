"""Kubernetes RBAC on a real SQLite store: matching, bindings, aggregation, escalation and the
built-in SCS roles (no HTTP)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from central_api.auth.authz import Attributes, MastersAuthorizer
from central_api.auth.bootstrap_roles import (
    AUTOUPDATE,
    BASIC_USER,
    BOOTSTRAP_LABEL,
    bootstrap_policy,
    ensure_bootstrap_roles,
)
from central_api.auth.rbac import (
    InformerRuleSource,
    RbacAuthorizer,
    Rule,
    check_binding_write,
    check_role_write,
    cluster_role_rules,
    covers,
    escalation_violations,
    rule_allows,
    rules_for,
)
from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.kinds.common import Model, Status
from central_api.kinds.kind import ResourceType, declare
from central_api.kinds.rbac import CLUSTER_ROLE, CLUSTER_ROLE_BINDING, ROLE, ROLE_BINDING
from central_api.machinery.errors import ApiError
from central_api.machinery.user import AUTHENTICATED, BOOTSTRAP_ADMIN, User
from central_api.registry.informers import Informers
from central_api.registry.resources import DeleteOptions, ListOptions, Resources, WriteOptions
from central_api.registry.watch import WatchHub
from central_api.server.tables import row
from central_api.store.sqlite import SqliteStore

RBAC = "rbac.authorization.k8s.io"
IAAS, KAAS, IAM = "iaas.scs.community", "kaas.scs.community", "iam.scs.community"
STATUS, METERING = "status.scs.community", "metering.scs.community"
TENANCY = "tenancy.scs.community"


class Thing(Model):
    """A stand-in SCS kind (the real ones are declared elsewhere)."""

    spec: dict[str, str] = Field(default_factory=dict)
    status: Status = Field(default_factory=Status)


def scs_kind(group: str, kind: str, actions: dict[str, tuple[str, ...]] | None = None
             ) -> ResourceType:
    rt = declare(f"{group}/v1alpha1", kind, Thing)
    for sub, verbs in (actions or {}).items():
        rt.action_subresources[sub] = ("Thing", verbs)
    return rt


FAKE_SCS_KINDS = [scs_kind(IAAS, "Server", {"console": ("get",)}),
                  scs_kind(KAAS, "Cluster", {"kubeconfig": ("get",)}),
                  scs_kind(IAM, "User"), scs_kind(STATUS, "Incident"),
                  scs_kind(METERING, "UsageRecord")]

ALICE = User("alice", ("team", AUTHENTICATED))
BOB = User("bob", (AUTHENTICATED,))
CI = User("system:serviceaccount:team-a:ci", ("system:serviceaccounts", AUTHENTICATED))


@pytest.fixture
def resources(tmp_path: Path) -> Iterator[Resources]:
    store = SqliteStore(tmp_path / "state.db")
    res = Resources(store, Catalog([*builtin_kinds(), *FAKE_SCS_KINDS]))
    namespaces = res.catalog.lookup("", "v1", "namespaces")
    assert namespaces is not None
    for ns in ("default", "team-a", "team-b"):
        res.create(namespaces, "", {"metadata": {"name": ns}}, WriteOptions())
    yield res
    store.close()


class StoredRules:
    """The RBAC objects read from the store at every call: the rules under test with no
    cache in between (the informers are tested on their own)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def _items(self, rt: ResourceType, namespace: str | None) -> list[dict[str, Any]]:
        return list(self.resources.list(rt, namespace, ListOptions())["items"])

    def roles(self, namespace: str) -> list[dict[str, Any]]:
        return self._items(ROLE, namespace)

    def role_bindings(self, namespace: str) -> list[dict[str, Any]]:
        return self._items(ROLE_BINDING, namespace)

    def cluster_roles(self) -> list[dict[str, Any]]:
        return self._items(CLUSTER_ROLE, None)

    def cluster_role_bindings(self) -> list[dict[str, Any]]:
        return self._items(CLUSTER_ROLE_BINDING, None)


@pytest.fixture
def source(resources: Resources) -> StoredRules:
    return StoredRules(resources)


@pytest.fixture
def authz(source: StoredRules) -> RbacAuthorizer:
    return RbacAuthorizer(source)


# -- helpers ---------------------------------------------------------------------------------
def rule(verbs: list[str], groups: list[str] | None = None, resources: list[str] | None = None,
         names: list[str] | None = None, urls: list[str] | None = None) -> Rule:
    out: Rule = {"verbs": verbs}
    for key, value in (("apiGroups", groups), ("resources", resources),
                       ("resourceNames", names), ("nonResourceURLs", urls)):
        if value is not None:
            out[key] = value
    return out


def subject(kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    out = {"kind": kind, "name": name}
    if namespace:
        out["namespace"] = namespace
    return out


def make_role(res: Resources, name: str, rules: list[Rule], namespace: str = "team-a",
              labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if namespace:
        return res.create(ROLE, namespace, {"metadata": meta, "rules": rules}, WriteOptions())
    return res.create(CLUSTER_ROLE, "", {"metadata": meta, "rules": rules}, WriteOptions())


def make_binding(res: Resources, name: str, ref_kind: str, ref_name: str,
                 subjects: list[dict[str, Any]], namespace: str = "team-a") -> dict[str, Any]:
    body = {"metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": ref_kind, "name": ref_name},
            "subjects": subjects}
    rt = ROLE_BINDING if namespace else CLUSTER_ROLE_BINDING
    return res.create(rt, namespace, body, WriteOptions())


def can(authz: RbacAuthorizer | MastersAuthorizer, user: User, verb: str, group: str = "",
        resource: str = "", namespace: str = "", name: str = "", sub: str = "",
        path: str = "") -> bool:
    return authz.authorize(Attributes(user, verb, group, resource, sub, namespace, name,
                                      path)).allowed


def error_of(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


# -- rule matching ---------------------------------------------------------------------------
def req(verb: str, group: str = "", resource: str = "pods", sub: str = "", name: str = "",
        path: str = "") -> Attributes:
    if path:
        return Attributes(BOB, verb, path=path)
    return Attributes(BOB, verb, group, resource, sub, "ns", name)


MATCH_TABLE = [
    (rule(["get"], [""], ["pods"]), req("get"), True),
    (rule(["get"], [""], ["pods"]), req("list"), False),
    (rule(["*"], [""], ["pods"]), req("deletecollection"), True),
    (rule(["get"], ["*"], ["pods"]), req("get", "apps"), True),
    (rule(["get"], ["apps"], ["pods"]), req("get", ""), False),
    (rule(["get"], [""], ["*"]), req("get", resource="secrets"), True),
    (rule(["get"], [""], ["*"]), req("get", sub="log"), True),
    (rule(["get"], [""], ["pods"]), req("get", sub="log"), False),
    (rule(["get"], [""], ["pods/log"]), req("get", sub="log"), True),
    (rule(["get"], [""], ["pods/log"]), req("get"), False),
    (rule(["get"], [""], ["*/log"]), req("get", resource="nodes", sub="log"), True),
    (rule(["get"], [""], ["*/log"]), req("get", sub="status"), False),
    (rule(["get"], [""], ["*/log"]), req("get"), False),
    (rule(["get"], [""], ["pods"], names=["a"]), req("get", name="a"), True),
    (rule(["get"], [""], ["pods"], names=["a"]), req("get", name="b"), False),
    (rule(["list"], [""], ["pods"], names=["a"]), req("list"), False),
    (rule(["create"], [""], ["pods"], names=["a"]), req("create"), False),
    (rule(["*"], [""], ["pods"], names=["a"]), req("deletecollection"), False),
    (rule(["get"], [""], ["pods"], names=[]), req("get", name="z"), True),
    (rule(["get"], urls=["/healthz"]), req("get", path="/healthz"), True),
    (rule(["get"], urls=["/healthz"]), req("get", path="/healthz/etcd"), False),
    (rule(["get"], urls=["/apis/*"]), req("get", path="/apis/apps/v1"), True),
    (rule(["get"], urls=["/apis/*"]), req("get", path="/apis"), False),
    (rule(["get"], urls=["/apis*"]), req("get", path="/apis"), True),
    (rule(["get"], urls=["*"]), req("get", path="/metrics"), True),
    (rule(["get"], urls=["*"]), req("post", path="/metrics"), False),
    (rule(["get"], [""], ["pods"]), req("get", path="/api"), False),
    (rule(["get"], urls=["*"]), req("get"), False),
]


@pytest.mark.parametrize(("policy", "attrs", "allowed"), MATCH_TABLE)
def test_rule_matching_follows_kubernetes(policy: Rule, attrs: Attributes,
                                          allowed: bool) -> None:
    assert rule_allows(attrs, policy) is allowed


# -- bindings and subjects -------------------------------------------------------------------
def test_role_binding_grants_only_in_its_namespace(resources: Resources,
                                                   authz: RbacAuthorizer) -> None:
    make_role(resources, "reader", [rule(["get", "list"], [""], ["secrets"])])
    make_binding(resources, "alice-reads", "Role", "reader", [subject("User", "alice")])
    assert can(authz, ALICE, "list", "", "secrets", "team-a")
    assert not can(authz, ALICE, "list", "", "secrets", "team-b")
    assert not can(authz, ALICE, "list", "", "secrets", "")
    assert not can(authz, ALICE, "delete", "", "secrets", "team-a", "x")
    assert not can(authz, BOB, "list", "", "secrets", "team-a")


def test_allowed_reason_names_the_binding(resources: Resources, authz: RbacAuthorizer) -> None:
    make_role(resources, "reader", [rule(["get"], [""], ["secrets"])])
    make_binding(resources, "alice-reads", "Role", "reader", [subject("User", "alice")])
    decision = authz.authorize(Attributes(ALICE, "get", "", "secrets", "", "team-a", "x"))
    assert decision.allowed
    assert decision.reason == ('RBAC: allowed by RoleBinding "alice-reads/team-a" of Role '
                               '"reader" to User "alice"')
    assert authz.authorize(Attributes(BOB, "get", "", "secrets", "", "team-a", "x")) \
        .reason == ""


def test_cluster_role_in_role_binding_is_limited_to_the_namespace(
        resources: Resources, authz: RbacAuthorizer) -> None:
    make_role(resources, "ops", [rule(["*"], [""], ["secrets"]),
                                 rule(["get"], urls=["/metrics"])], namespace="")
    make_binding(resources, "ops", "ClusterRole", "ops", [subject("User", "alice")])
    assert can(authz, ALICE, "delete", "", "secrets", "team-a", "x")
    assert not can(authz, ALICE, "delete", "", "secrets", "team-b", "x")
    assert not can(authz, ALICE, "get", path="/metrics")


def test_cluster_role_binding_grants_everywhere(resources: Resources,
                                                authz: RbacAuthorizer) -> None:
    make_role(resources, "ops", [rule(["*"], [""], ["secrets"]),
                                 rule(["get"], urls=["/metrics"])], namespace="")
    make_binding(resources, "ops", "ClusterRole", "ops", [subject("User", "alice")],
                 namespace="")
    for ns in ("team-a", "team-b", ""):
        assert can(authz, ALICE, "list", "", "secrets", ns)
    assert can(authz, ALICE, "get", path="/metrics")
    decision = authz.authorize(Attributes(ALICE, "get", path="/metrics"))
    assert decision.reason == ('RBAC: allowed by ClusterRoleBinding "ops" of ClusterRole '
                               '"ops" to User "alice"')


def test_group_subject(resources: Resources, authz: RbacAuthorizer) -> None:
    make_role(resources, "reader", [rule(["get"], [""], ["secrets"])])
    make_binding(resources, "team", "Role", "reader", [subject("Group", "team")])
    assert can(authz, ALICE, "get", "", "secrets", "team-a", "x")
    assert not can(authz, BOB, "get", "", "secrets", "team-a", "x")


def test_service_account_subject_defaults_to_the_binding_namespace(
        resources: Resources, authz: RbacAuthorizer) -> None:
    make_role(resources, "deployer", [rule(["create"], [IAAS], ["servers"])])
    make_binding(resources, "ci", "Role", "deployer", [subject("ServiceAccount", "ci")])
    assert can(authz, CI, "create", IAAS, "servers", "team-a")
    other = User("system:serviceaccount:team-b:ci")
    assert not can(authz, other, "create", IAAS, "servers", "team-a")


def test_service_account_subject_in_cluster_role_binding(resources: Resources,
                                                         authz: RbacAuthorizer) -> None:
    make_role(resources, "lister", [rule(["list"], [IAAS], ["servers"])], namespace="")
    error = error_of(lambda: make_binding(resources, "ci", "ClusterRole", "lister",
                                          [subject("ServiceAccount", "ci")], namespace=""))
    assert error.code == 422 and error.causes[0].field == "subjects[0].namespace"
    make_binding(resources, "ci", "ClusterRole", "lister",
                 [subject("ServiceAccount", "ci", "team-a")], namespace="")
    assert can(authz, CI, "list", IAAS, "servers", "team-b")
    decision = authz.authorize(Attributes(CI, "list", IAAS, "servers", namespace="team-b"))
    assert decision.reason.endswith('to ServiceAccount "ci/team-a"')


def test_missing_role_grants_nothing(resources: Resources, authz: RbacAuthorizer) -> None:
    make_binding(resources, "dangling", "Role", "nope", [subject("User", "alice")])
    assert not can(authz, ALICE, "get", "", "secrets", "team-a", "x")


def test_resource_names_restrict_named_requests(resources: Resources,
                                                authz: RbacAuthorizer) -> None:
    make_role(resources, "one", [rule(["get", "update", "list", "create"], [""], ["secrets"],
                                      names=["db"])])
    make_binding(resources, "one", "Role", "one", [subject("User", "alice")])
    assert can(authz, ALICE, "get", "", "secrets", "team-a", "db")
    assert can(authz, ALICE, "update", "", "secrets", "team-a", "db")
    assert not can(authz, ALICE, "get", "", "secrets", "team-a", "other")
    assert not can(authz, ALICE, "list", "", "secrets", "team-a")
    assert not can(authz, ALICE, "create", "", "secrets", "team-a")


def test_aggregated_cluster_role_unions_selected_roles(resources: Resources,
                                                       authz: RbacAuthorizer,
                                                       source: StoredRules) -> None:
    resources.create(CLUSTER_ROLE, "", {
        "metadata": {"name": "monitoring"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "mon"}}]},
        "rules": [rule(["*"], ["*"], ["*"])]}, WriteOptions())  # stomped, as in kube
    make_binding(resources, "mon", "ClusterRole", "monitoring", [subject("User", "alice")],
                 namespace="")
    assert not can(authz, ALICE, "get", "", "secrets", "team-a", "x")
    make_role(resources, "mon-secrets", [rule(["get"], [""], ["secrets"])], namespace="",
              labels={"agg": "mon"})
    make_role(resources, "mon-urls", [rule(["get"], urls=["/metrics"])], namespace="",
              labels={"agg": "mon"})
    make_role(resources, "unrelated", [rule(["get"], [""], ["pods"])], namespace="")
    assert can(authz, ALICE, "get", "", "secrets", "team-a", "x")
    assert can(authz, ALICE, "get", path="/metrics")
    assert not can(authz, ALICE, "get", "", "pods", "team-a", "x")
    assert not can(authz, ALICE, "delete", "", "secrets", "team-a", "x")


def test_nested_and_cyclic_aggregation_terminates(resources: Resources,
                                                  source: StoredRules) -> None:
    for name, selects, labels in (("a", "b", {"name": "a"}), ("b", "a", {"name": "b"})):
        resources.create(CLUSTER_ROLE, "", {
            "metadata": {"name": name, "labels": {**labels, "agg": "x"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"name": selects}}]},
        }, WriteOptions())
    make_role(resources, "leaf", [rule(["get"], [""], ["pods"])], namespace="",
              labels={"name": "b"})
    assert cluster_role_rules(source, "a") == [rule(["get"], [""], ["pods"])]


def test_the_informer_source_follows_bindings_from_the_watch(resources: Resources) -> None:
    async def scenario() -> None:
        hub = WatchHub(resources.store, poll_seconds=0.05)
        hub.start()
        informers = Informers(resources.catalog)
        authz = RbacAuthorizer(InformerRuleSource(informers))
        informers.start(hub)
        try:
            await informers.wait_synced(5)
            assert not can(authz, ALICE, "get", "", "secrets", "team-a", "x")
            make_role(resources, "reader", [rule(["get"], [""], ["secrets"])])
            make_binding(resources, "r", "Role", "reader", [subject("User", "alice")])
            await until(lambda: can(authz, ALICE, "get", "", "secrets", "team-a", "x"))
            resources.delete(ROLE_BINDING, "team-a", "r", DeleteOptions())
            await until(lambda: not can(authz, ALICE, "get", "", "secrets", "team-a", "x"))
        finally:
            await informers.stop()
            await hub.stop()

    asyncio.run(scenario())


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():
            await asyncio.sleep(0.01)


def test_rules_for_splits_resource_and_non_resource_rules(resources: Resources,
                                                          source: StoredRules) -> None:
    make_role(resources, "reader", [rule(["get"], [""], ["secrets"], names=["db"])])
    make_binding(resources, "r", "Role", "reader", [subject("User", "alice")])
    make_role(resources, "urls", [rule(["get"], urls=["/version"])], namespace="")
    make_binding(resources, "u", "ClusterRole", "urls", [subject("Group", "team")],
                 namespace="")
    res_rules, url_rules = rules_for(source, ALICE, "team-a")
    assert res_rules == [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"],
                          "resourceNames": ["db"]}]
    assert url_rules == [{"verbs": ["get"], "nonResourceURLs": ["/version"]}]
    assert rules_for(source, ALICE, "team-b") == ([], url_rules)


# -- validation ------------------------------------------------------------------------------
def test_names_may_contain_colons_but_not_slashes_or_percent(resources: Resources) -> None:
    make_role(resources, "system:basic-user", [rule(["get"], urls=["/api"])], namespace="")
    for bad in ("a%b", ".."):
        error = error_of(lambda bad=bad: make_role(resources, bad, [], namespace=""))
        assert error.code == 422 and error.causes[0].field == "metadata.name"


def test_role_ref_cannot_change(resources: Resources) -> None:
    make_role(resources, "a", [rule(["get"], [""], ["pods"])])
    make_role(resources, "b", [rule(["get"], [""], ["pods"])])
    binding = make_binding(resources, "x", "Role", "a", [subject("User", "alice")])
    changed = copy.deepcopy(binding)
    changed["roleRef"]["name"] = "b"
    error = error_of(lambda: resources.update(ROLE_BINDING, "team-a", "x", changed,
                                              WriteOptions()))
    assert error.code == 422
    assert [(c.field, c.message) for c in error.causes] == [
        ("roleRef", "Invalid value: cannot change roleRef")]
    changed["roleRef"]["name"] = "a"
    changed["subjects"].append(subject("Group", "team"))
    updated = resources.update(ROLE_BINDING, "team-a", "x", changed, WriteOptions())
    assert updated["subjects"][1]["apiGroup"] == RBAC


def test_binding_validation(resources: Resources) -> None:
    error = error_of(lambda: make_binding(resources, "x", "Role", "a", [], namespace=""))
    assert error.causes[0].field == "roleRef.kind"
    error = error_of(lambda: make_binding(resources, "x", "Secret", "a", []))
    assert error.causes[0].field == "roleRef.kind"
    error = error_of(lambda: make_binding(resources, "x", "Role", "a",
                                          [subject("Robot", "r"), {"kind": "ServiceAccount",
                                           "name": "ci", "apiGroup": RBAC}]))
    assert {c.field for c in error.causes} == {"subjects[0].kind", "subjects[1].apiGroup"}
    created = make_binding(resources, "y", "Role", "a", [subject("User", "u")])
    assert created["roleRef"]["apiGroup"] == RBAC and created["subjects"][0]["apiGroup"] == RBAC


def test_rule_validation(resources: Resources) -> None:
    error = error_of(lambda: make_role(resources, "r", [rule(["get"], urls=["/healthz"])]))
    assert "namespaced rules cannot apply to non-resource URLs" in error.causes[0].message
    error = error_of(lambda: make_role(resources, "r", [
        rule(["get"], [""], ["pods"], urls=["/x"])], namespace=""))
    assert "both regular resources and non-resource URLs" in error.causes[0].message
    error = error_of(lambda: make_role(resources, "r", [rule([], [""])]))
    assert {c.field for c in error.causes} == {"rules[0].verbs", "rules[0].resources"}


def test_malformed_bodies_give_422_not_a_crash(resources: Resources) -> None:
    for rt, body in ((CLUSTER_ROLE, {"rules": 5}), (CLUSTER_ROLE, {"rules": ["x"]}),
                     (CLUSTER_ROLE_BINDING, {"roleRef": "x", "subjects": 3})):
        error = error_of(lambda rt=rt, body=body: resources.create(
            rt, "", {"metadata": {"name": "m"}, **body}, WriteOptions()))
        assert error.code == 422


def test_binding_printer_column_shows_the_role(resources: Resources) -> None:
    binding = make_binding(resources, "x", "ClusterRole", "viewer",
                           [subject("User", "alice"), subject("ServiceAccount", "ci")])
    cells = row(ROLE_BINDING, binding, "None", datetime.now(UTC))["cells"]
    names = [c.name for c in ROLE_BINDING.display_columns]
    assert names == ["Name", "Role", "Users", "Groups", "ServiceAccounts", "Age"]
    assert cells[:5] == ["x", "ClusterRole/viewer", "alice", "", "/ci"]  # as kubectl prints
    role = make_role(resources, "r", [])
    assert row(ROLE, role, "None", datetime.now(UTC))["cells"] == [
        "r", role["metadata"]["creationTimestamp"]]


# -- escalation ------------------------------------------------------------------------------
def test_cannot_create_a_role_with_more_than_held(resources: Resources,
                                                  authz: RbacAuthorizer,
                                                  source: StoredRules) -> None:
    make_role(resources, "editor", [rule(["get", "create"], [""], ["secrets"]),
                                    rule(["create", "update"], [RBAC], ["roles"])])
    make_binding(resources, "alice", "Role", "editor", [subject("User", "alice")])
    ok = {"metadata": {"name": "sub"}, "rules": [rule(["get"], [""], ["secrets"])]}
    assert check_role_write(authz, source, ALICE, "roles", "team-a", ok) is None
    more = {"metadata": {"name": "sub"},
            "rules": [rule(["get", "delete", "list"], [""], ["secrets"])]}
    message = check_role_write(authz, source, ALICE, "roles", "team-a", more)
    assert message == ('user "alice" (groups=["team" "system:authenticated"]) is attempting '
                       "to grant RBAC permissions not currently held:\n"
                       '{APIGroups:[""], Resources:["secrets"], Verbs:["delete" "list"]}')
    assert check_role_write(authz, source, ALICE, "roles", "team-b", ok) is not None
    assert check_role_write(authz, source, BOOTSTRAP_ADMIN, "roles", "team-a", more) is None


def test_escalate_verb_allows_creating_a_bigger_role(resources: Resources,
                                                     authz: RbacAuthorizer,
                                                     source: StoredRules) -> None:
    make_role(resources, "escalator", [rule(["escalate"], [RBAC], ["roles"], names=["big"])])
    make_binding(resources, "alice", "Role", "escalator", [subject("User", "alice")])
    big = {"metadata": {"name": "big"}, "rules": [rule(["*"], ["*"], ["*"])]}
    assert check_role_write(authz, source, ALICE, "roles", "team-a", big) is None
    other = {**big, "metadata": {"name": "other"}}
    assert check_role_write(authz, source, ALICE, "roles", "team-a", other) is not None


def test_role_update_of_gc_fields_only_is_not_checked(resources: Resources,
                                                      authz: RbacAuthorizer,
                                                      source: StoredRules) -> None:
    old = make_role(resources, "big", [rule(["*"], ["*"], ["*"])])
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["x"]
    assert check_role_write(authz, source, BOB, "roles", "team-a", new, old) is None
    new["metadata"]["labels"] = {"a": "b"}
    assert check_role_write(authz, source, BOB, "roles", "team-a", new, old) is not None


def test_aggregation_rule_needs_full_authority(resources: Resources, authz: RbacAuthorizer,
                                               source: StoredRules) -> None:
    ensure_bootstrap_roles(resources)
    make_binding(resources, "alice", "ClusterRole", "tenant-admin",
                 [subject("User", "alice")], namespace="")
    agg = {"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [{}]}}
    assert check_role_write(authz, source, ALICE, "clusterroles", "", agg) == \
        "must have cluster-admin privileges to use the aggregationRule"
    make_binding(resources, "alice-admin", "ClusterRole", "cloud-admin",
                 [subject("User", "alice")], namespace="")
    assert check_role_write(authz, source, ALICE, "clusterroles", "", agg) is None


def test_binding_needs_the_roles_rules_or_bind(resources: Resources, authz: RbacAuthorizer,
                                               source: StoredRules) -> None:
    ensure_bootstrap_roles(resources)
    make_binding(resources, "alice", "ClusterRole", "tenant-admin",
                 [subject("User", "alice")])

    def bind(role: str, namespace: str = "team-a") -> str | None:
        body = {"metadata": {"name": "b"}, "subjects": [subject("User", "bob")],
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role}}
        return check_binding_write(authz, source, ALICE, namespace, body)

    assert bind("member") is None and bind("viewer") is None and bind("tenant-admin") is None
    message = bind("cloud-admin")
    assert message is not None and "not currently held" in message
    assert 'NonResourceURLs:["*"]' in message
    assert bind("member", "team-b") is not None
    assert bind("member", "") is not None  # a ClusterRoleBinding
    assert bind("nope") == 'clusterroles.rbac.authorization.k8s.io "nope" not found'
    make_role(resources, "binder", [rule(["bind"], [RBAC], ["clusterroles"],
                                         names=["cloud-admin"])])
    make_binding(resources, "binder", "Role", "binder", [subject("User", "alice")])
    assert bind("cloud-admin") is None
    assert bind("cloud-admin", "team-b") is not None


def test_binding_a_namespaced_role(resources: Resources, authz: RbacAuthorizer,
                                   source: StoredRules) -> None:
    make_role(resources, "small", [rule(["get"], [""], ["secrets"])])
    body = {"metadata": {"name": "b"}, "subjects": [subject("User", "bob")],
            "roleRef": {"kind": "Role", "name": "small"}}
    assert check_binding_write(authz, source, ALICE, "team-a", body) is not None
    make_binding(resources, "alice", "Role", "small", [subject("User", "alice")])
    assert check_binding_write(authz, source, ALICE, "team-a", body) is None
    assert check_binding_write(MastersAuthorizer(authz), source, BOOTSTRAP_ADMIN, "team-b",
                               body) is None


def test_escalation_violations_lists_the_missing_pieces(resources: Resources,
                                                        source: StoredRules) -> None:
    make_role(resources, "r", [rule(["get"], [""], ["pods", "pods/log"])])
    make_binding(resources, "r", "Role", "r", [subject("User", "alice")])
    wanted = [rule(["get", "list"], [""], ["pods"])]
    assert escalation_violations(source, ALICE, "team-a", wanted) == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]


# -- built-in roles --------------------------------------------------------------------------
NS = "team-a"
SCOPE_OTHER = "team-b"
TENANT_ROLES_MATRIX: list[tuple[str, str, str, str, str, bool, bool, bool]] = [
    # verb, group, resource, subresource, namespace → tenant-admin, member, viewer
    ("create", IAAS, "servers", "", NS, True, True, False),
    ("delete", IAAS, "servers", "", NS, True, True, False),
    ("deletecollection", IAAS, "servers", "", NS, True, False, False),
    ("list", IAAS, "servers", "", NS, True, True, True),
    ("update", IAAS, "servers", "status", NS, False, False, False),
    ("get", IAAS, "servers", "status", NS, True, True, True),
    ("get", IAAS, "servers", "console", NS, True, True, False),
    ("get", KAAS, "clusters", "kubeconfig", NS, True, True, False),
    ("patch", KAAS, "clusters", "", NS, True, True, False),
    ("create", IAM, "users", "", NS, True, False, False),
    ("watch", IAM, "users", "", NS, True, True, True),
    ("create", STATUS, "incidents", "", NS, False, False, False),
    ("get", STATUS, "incidents", "", NS, True, True, True),
    ("create", METERING, "usagerecords", "", NS, False, False, False),
    ("list", METERING, "usagerecords", "", NS, True, True, True),
    ("get", "", "secrets", "", NS, True, True, False),
    ("create", "", "secrets", "", NS, True, True, False),
    ("list", "", "serviceaccounts", "", NS, True, True, True),
    ("create", "", "serviceaccounts", "token", NS, True, False, False),  # issue 22
    ("create", RBAC, "rolebindings", "", NS, True, False, False),
    ("create", RBAC, "roles", "", NS, True, False, False),
    ("list", RBAC, "roles", "", NS, True, True, True),
    ("get", "", "namespaces", "", NS, True, True, True),
    ("delete", "", "namespaces", "", NS, False, False, False),
    ("create", RBAC, "clusterroles", "", "", False, False, False),
    ("create", RBAC, "clusterrolebindings", "", "", False, False, False),
    ("list", RBAC, "clusterroles", "", "", False, False, False),
    ("get", TENANCY, "tenants", "", "", False, False, False),
    ("create", "apiextensions.k8s.io", "customresourcedefinitions", "", "", False, False,
     False),
    ("list", "", "namespaces", "", "", False, False, False),
    ("list", IAAS, "servers", "", SCOPE_OTHER, False, False, False),
    ("get", "", "secrets", "", SCOPE_OTHER, False, False, False),
    ("escalate", RBAC, "roles", "", NS, False, False, False),
    ("bind", RBAC, "clusterroles", "", NS, False, False, False),
    ("impersonate", "", "users", "", NS, False, False, False),
]


@pytest.mark.parametrize("role_index", [0, 1, 2], ids=["tenant-admin", "member", "viewer"])
def test_builtin_tenant_roles_matrix(resources: Resources, authz: RbacAuthorizer,
                                     role_index: int) -> None:
    role = ("tenant-admin", "member", "viewer")[role_index]
    ensure_bootstrap_roles(resources)
    make_binding(resources, "who", "ClusterRole", role, [subject("User", "bob")], NS)
    wrong = []
    for verb, group, res, sub, ns, *expected in TENANT_ROLES_MATRIX:
        name = "" if verb in ("list", "watch", "create", "deletecollection") else "x"
        if res == "namespaces":
            name = ns
        if can(authz, BOB, verb, group, res, ns, name, sub) != expected[role_index]:
            wrong.append((verb, group, res, sub, ns, expected[role_index]))
    assert wrong == []


def test_cloud_admin_may_do_everything(resources: Resources, authz: RbacAuthorizer) -> None:
    ensure_bootstrap_roles(resources)
    make_binding(resources, "ops", "ClusterRole", "cloud-admin", [subject("Group", "ops")],
                 namespace="")
    op = User("carol", ("ops",))
    assert can(authz, op, "create", TENANCY, "tenants")
    assert can(authz, op, "delete", "", "namespaces", "team-a", "team-a")
    assert can(authz, op, "escalate", RBAC, "clusterroles", "", "x")
    assert can(authz, op, "get", path="/metrics")
    assert can(authz, op, "update", IAAS, "servers", "team-b", "s", "status")


def test_basic_user_is_bound_to_every_authenticated_user(resources: Resources,
                                                         authz: RbacAuthorizer) -> None:
    ensure_bootstrap_roles(resources)
    assert can(authz, BOB, "create", "authorization.k8s.io", "selfsubjectaccessreviews")
    assert can(authz, BOB, "create", "authorization.k8s.io", "selfsubjectrulesreviews")
    assert can(authz, BOB, "create", "authentication.k8s.io", "selfsubjectreviews")
    for path in ("/api", "/api/v1", "/apis/iaas.scs.community/v1alpha1", "/openapi/v3",
                 "/version", "/healthz", "/livez", "/readyz"):
        assert can(authz, BOB, "get", path=path), path
    assert not can(authz, BOB, "get", path="/metrics")
    assert not can(authz, BOB, "post", path="/api")
    assert not can(authz, User("anon"), "get", path="/api")
    assert not can(authz, BOB, "create", "authorization.k8s.io", "subjectaccessreviews")


def test_tenant_admin_holds_everything_member_and_viewer_grant(resources: Resources) -> None:
    policy = {obj["metadata"]["name"]: obj for _, obj in bootstrap_policy(resources.catalog)}
    admin = policy["tenant-admin"]["rules"]
    assert covers(admin, policy["member"]["rules"]) == (True, [])
    assert covers(admin, policy["viewer"]["rules"]) == (True, [])
    assert covers(policy["member"]["rules"], policy["viewer"]["rules"]) == (True, [])
    assert not covers(policy["member"]["rules"], admin)[0]


def all_rbac(res: Resources) -> list[dict[str, Any]]:
    return [obj for rt in (CLUSTER_ROLE, CLUSTER_ROLE_BINDING)
            for obj in res.list(rt, None, ListOptions())["items"]]


def test_ensure_bootstrap_roles_is_idempotent(resources: Resources) -> None:
    ensure_bootstrap_roles(resources)
    first = all_rbac(resources)
    assert {o["metadata"]["name"] for o in first} == {
        "cloud-admin", "tenant-admin", "member", "viewer", BASIC_USER, "status-editor",
        "status-reader", "metering-ingest"}
    assert all(o["metadata"]["labels"][BOOTSTRAP_LABEL] == "rbac-defaults" for o in first)
    ensure_bootstrap_roles(resources)
    assert all_rbac(resources) == first


def test_ensure_bootstrap_roles_repairs_drift(resources: Resources) -> None:
    ensure_bootstrap_roles(resources)
    viewer = resources.get(CLUSTER_ROLE, "", "viewer")
    expected_rules = copy.deepcopy(viewer["rules"])
    viewer["rules"].append(rule(["get"], [""], ["secrets"]))
    viewer["metadata"]["labels"] = {"mine": "yes"}
    resources.update(CLUSTER_ROLE, "", "viewer", viewer, WriteOptions())
    resources.delete(CLUSTER_ROLE_BINDING, "", BASIC_USER, DeleteOptions())
    make_binding(resources, BASIC_USER, "ClusterRole", "viewer",
                 [subject("Group", "x")], namespace="")
    mine = make_role(resources, "mine", [rule(["get"], [""], ["pods"])], namespace="")
    ensure_bootstrap_roles(resources)
    repaired = resources.get(CLUSTER_ROLE, "", "viewer")
    assert repaired["rules"] == expected_rules
    assert repaired["metadata"]["labels"] == {"mine": "yes", BOOTSTRAP_LABEL: "rbac-defaults"}
    binding = resources.get(CLUSTER_ROLE_BINDING, "", BASIC_USER)
    assert binding["roleRef"]["name"] == BASIC_USER
    assert binding["subjects"] == [{"kind": "Group", "apiGroup": RBAC, "name": AUTHENTICATED}]
    assert resources.get(CLUSTER_ROLE, "", "mine") == mine


def test_ensure_bootstrap_roles_respects_autoupdate_false(resources: Resources) -> None:
    ensure_bootstrap_roles(resources)
    member = resources.get(CLUSTER_ROLE, "", "member")
    member["metadata"]["annotations"] = {AUTOUPDATE: "false"}
    member["rules"] = [rule(["get"], [""], ["pods"])]
    kept = resources.update(CLUSTER_ROLE, "", "member", member, WriteOptions())
    ensure_bootstrap_roles(resources)
    assert resources.get(CLUSTER_ROLE, "", "member") == kept


# -- properties of covers --------------------------------------------------------------------
VERBS = st.sampled_from(["get", "list", "create", "delete", "*"])
WORDS = st.sampled_from(["", "apps", "*", "pods", "pods/log", "*/log", "secrets", "a", "b"])
URLS = st.sampled_from(["/api", "/api/*", "/apis", "*", "/healthz", "/a*"])
RESOURCE_RULES = st.builds(
    lambda v, g, r, n: {"verbs": v, "apiGroups": g, "resources": r,
                        **({"resourceNames": n} if n else {})},
    st.lists(VERBS, min_size=1, max_size=3), st.lists(WORDS, min_size=1, max_size=2),
    st.lists(WORDS, min_size=1, max_size=3), st.lists(st.sampled_from(["x", "y"]), max_size=2))
URL_RULES = st.builds(lambda v, u: {"verbs": v, "nonResourceURLs": u},
                      st.lists(VERBS, min_size=1, max_size=2),
                      st.lists(URLS, min_size=1, max_size=2))
RULE_SETS = st.lists(st.one_of(RESOURCE_RULES, URL_RULES), max_size=5)


@settings(max_examples=200)
@given(RULE_SETS)
def test_a_rule_set_covers_itself(rules: list[Rule]) -> None:
    assert covers(rules, rules) == (True, [])


@settings(max_examples=200)
@given(RULE_SETS, RULE_SETS, RULE_SETS)
def test_covers_is_monotonic_in_the_owner(owner: list[Rule], extra: list[Rule],
                                          servant: list[Rule]) -> None:
    allowed, missing = covers(owner, servant)
    more_allowed, more_missing = covers(owner + extra, servant)
    assert not allowed or more_allowed
    assert all(m in missing for m in more_missing)
