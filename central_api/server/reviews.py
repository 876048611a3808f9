"""Answers about the caller: who am I, may I, what may I (kubectl auth whoami / can-i).

These are create-only "virtual" resources: nothing is stored, the answer is computed from the
authenticated user and the authorizer, exactly as kube-apiserver does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..auth.authz import Attributes, Authorizer
from ..auth.user import User
from . import errors

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
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise _invalid("spec", "Required value: spec is required")
    resource: Any = spec.get("resourceAttributes")
    non_resource: Any = spec.get("nonResourceAttributes")
    if bool(resource) == bool(non_resource) or not isinstance(resource or non_resource, dict):
        raise _invalid("spec.resourceAttributes", "Invalid value: exactly one of "
                       "resourceAttributes or nonResourceAttributes must be set")
    if resource:
        attrs = Attributes(user, str(resource.get("verb", "")), str(resource.get("group", "")),
                           str(resource.get("resource", "")),
                           str(resource.get("subresource", "")),
                           str(resource.get("namespace", "")), str(resource.get("name", "")))
    else:
        attrs = Attributes(user, str(non_resource.get("verb", "")),
                           path=str(non_resource.get("path", "")) or "/")
    decision = authorizer.authorize(attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    if not decision.allowed:
        status["denied"] = False  # "no opinion": RBAC never denies explicitly
    return _review("SelfSubjectAccessReview", "authorization.k8s.io/v1", spec, status)


def self_subject_rules_review(user: User, body: dict[str, Any], rules_for: RulesFor
                              ) -> dict[str, Any]:
    spec = body.get("spec") or {}
    namespace = spec.get("namespace", "") if isinstance(spec, dict) else ""
    if not isinstance(namespace, str):
        raise _invalid("spec.namespace", "Invalid value: must be a string")
    resource_rules, non_resource_rules = rules_for(user, namespace)
    return _review("SelfSubjectRulesReview", "authorization.k8s.io/v1", spec,
                   {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                    "incomplete": False})


def _invalid(field: str, message: str) -> errors.ApiError:
    return errors.invalid("SelfSubjectAccessReview", "", [errors.Cause(field, message)],
                          "authorization.k8s.io")
