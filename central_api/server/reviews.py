"""Answers about the caller: who am I, may I, what may I (kubectl auth whoami / can-i).

These are create-only "virtual" resources: nothing is stored, the answer is computed from the
authenticated user and the authorizer, exactly as kube-apiserver does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..auth.authz import Attributes, Authorizer
from ..machinery import errors
from ..machinery.user import User

RulesFor = Callable[[User, str], tuple[list[dict[str, Any]], list[dict[str, Any]]]]


def _review(kind: str, api_version: str, spec: dict[str, Any], status: dict[str, Any]
            ) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": api_version, "metadata": {"creationTimestamp": None},
            "spec": spec, "status": status}


def self_subject_review(user: User, version: str) -> dict[str, Any]:
    info: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    if user.extra:
        info["extra"] = {k: list(v) for k, v in user.extra.items()}
    review = _review("SelfSubjectReview", f"authentication.k8s.io/{version}", {},
                     {"userInfo": info})
    del review["spec"]
    return review


def self_subject_access_review(user: User, body: dict[str, Any], authorizer: Authorizer
                               ) -> dict[str, Any]:
    kind = "SelfSubjectAccessReview"
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise _invalid(kind, "spec", "Required value: spec is required")
    resource: Any = spec.get("resourceAttributes")
    non_resource: Any = spec.get("nonResourceAttributes")
    if bool(resource) == bool(non_resource) or not isinstance(resource or non_resource, dict):
        raise _invalid(kind, "spec.resourceAttributes", "Invalid value: exactly one of "
                       "resourceAttributes or nonResourceAttributes must be set")
    if resource:
        field = "spec.resourceAttributes"
        values = _strings(kind, field, resource, ("verb", "group", "resource", "subresource",
                                                 "namespace", "name"))
        attrs = Attributes(user, values["verb"], values["group"], values["resource"],
                           values["subresource"], values["namespace"], values["name"])
    else:
        values = _strings(kind, "spec.nonResourceAttributes", non_resource, ("verb", "path"))
        attrs = Attributes(user, values["verb"], path=values["path"] or "/")
    decision = authorizer.authorize(attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    if not decision.allowed:
        status["denied"] = False  # "no opinion": RBAC never denies explicitly
    return _review(kind, "authorization.k8s.io/v1", spec, status)


def _strings(kind: str, field: str, attributes: dict[str, Any],
             names: tuple[str, ...]) -> dict[str, str]:
    """The named attributes, each a string ("" when missing): a number or an object where
    kube's API has a string is a 422 naming it, not an answer about something else."""
    values = {}
    for name in names:
        value = attributes.get(name, "")
        if not isinstance(value, str):
            raise _invalid(kind, f"{field}.{name}", "Invalid value: must be a string")
        values[name] = value
    return values


def self_subject_rules_review(user: User, body: dict[str, Any], rules_for: RulesFor
                              ) -> dict[str, Any]:
    kind = "SelfSubjectRulesReview"
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise _invalid(kind, "spec", "Invalid value: must be an object")
    namespace = _strings(kind, "spec", spec, ("namespace",))["namespace"]
    resource_rules, non_resource_rules = rules_for(user, namespace)
    return _review(kind, "authorization.k8s.io/v1", spec,
                   {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                    "incomplete": False})


def _invalid(kind: str, field: str, message: str) -> errors.ApiError:
    return errors.invalid(kind, "", [errors.Cause(field, message)], "authorization.k8s.io")
