"""Data sources: one object of a kind by name, and the credential subresources.

``data "scs_tenant" "acme" { metadata = { name = "acme" } }`` reads the object; a missing
object is an error (a data source states a precondition). An action data source
(``scs_cluster_adminkubeconfig``, ``scs_service_account_token``) POSTs its request on every
read — a fresh kubeconfig or token each plan — and its answer's credential is sensitive.
"""

from __future__ import annotations

from typing import Any

from tf.utils import Diagnostics

from ..client import Client
from .diagnostics import report
from .resource import object_id, where
from .types import TfAction, TfKind
from .values import to_api, to_tf


def read_object(client: Client, kind: TfKind, diags: Diagnostics, config: dict[str, Any]
                ) -> dict[str, Any] | None:
    namespace, name = where(config)
    res = kind.res.sdk()
    try:
        obj = client.get(res, name, namespace or None)
    except Exception as exc:  # noqa: BLE001 - every failure is a diagnostic
        report(diags, exc, f"read {kind.res.kind} {object_id(namespace, name)}")
        return None
    state = to_tf(kind.data, obj)
    state["id"] = object_id(namespace, name)
    return state


def read_action(client: Client, action: TfAction, diags: Diagnostics, config: dict[str, Any]
                ) -> dict[str, Any] | None:
    namespace, name = where(config)
    spec_node = action.data.child("spec")
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    body = {"apiVersion": action.api_version, "kind": action.request_kind, "metadata": meta,
            "spec": to_api(spec_node, config.get("spec")) or {}}
    what = f"request {action.subresource} of {action.res.kind} {object_id(namespace, name)}"
    try:
        answer = client.create_subresource(action.res.sdk(), name,
                                           action.subresource, body, namespace or None)
    except Exception as exc:  # noqa: BLE001 - every failure is a diagnostic
        report(diags, exc, what)
        return None
    state = to_tf(action.data, {"metadata": config.get("metadata") and
                                _metadata(namespace, name),
                                "status": answer.get("status")})
    state["spec"] = config.get("spec")
    state["id"] = object_id(namespace, name)
    return state


def _metadata(namespace: str, name: str) -> dict[str, Any]:
    return {"name": name, **({"namespace": namespace} if namespace else {})}
