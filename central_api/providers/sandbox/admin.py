"""Operator and test tooling: look at the whole simulated cloud, and change it behind the
API's back.

``inventory`` backs the admin endpoint and the acceptance check "after deleting everything,
the sandbox shows nothing left". ``delete_behind_the_back`` and ``modify_behind_the_back``
play the user who goes to the cloud console directly, so drift detection has something to
detect; neither is reachable through the provider contract.
"""

from __future__ import annotations

from typing import Any

from ...store.base import KeyNotFound, Store
from ...store.offload import off_loop
from .compute import disassociate_floating_ips
from .keys import KINDS, record_key
from .records import Records
from .settings import SandboxSettings


async def inventory(store: Store, settings: SandboxSettings | None = None
                    ) -> dict[str, list[dict[str, Any]]]:
    """Every sandbox resource (DELETING ones included) by kind; every kind is a key. Read
    off the event loop on PostgreSQL."""
    return await off_loop(store, _inventory, store, settings or SandboxSettings())


def _inventory(store: Store, settings: SandboxSettings) -> dict[str, list[dict[str, Any]]]:
    from . import build_services
    from .clusters import ClusterService
    from .services import Sandbox

    sandbox_services = {**build_services(store, settings),
                        "Cluster": ClusterService(Sandbox(store, settings))}
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, service in sandbox_services.items():
        items = []
        for rec in service.records.all(kind, None):
            view = service.view(rec)
            items.append({"id": view.id, "namespace": rec["namespace"],
                          "ownerUID": view.owner_uid, "state": view.state,
                          "message": view.message, "desired": view.desired,
                          "observed": view.observed, "createdAt": rec["createdAt"]})
        out[kind] = items
    return out


def delete_behind_the_back(store: Store, kind: str, scope_namespace: str,
                           backend_id: str) -> bool:
    """Remove a backend resource at once, as if deleted in the cloud directly (no dependency
    checks, no DELETING phase). Returns False if it did not exist."""
    records = Records(store, SandboxSettings())
    try:
        rec = store.get(record_key(kind, scope_namespace, backend_id))
    except KeyNotFound:
        return False
    if kind == "Server":
        disassociate_floating_ips(records, scope_namespace, backend_id)
    records.purge(rec)
    return True


def modify_behind_the_back(store: Store, kind: str, scope_namespace: str, backend_id: str,
                           **desired: Any) -> dict[str, Any]:
    """Change fields of a resource's backend state directly (e.g. ``mtu=1400``), so the
    backend no longer matches the spec. Raises KeyError if the resource does not exist."""
    if kind not in KINDS:
        raise ValueError(f"the sandbox has no kind {kind!r}")
    key = record_key(kind, scope_namespace, backend_id)
    try:
        rec = store.get(key)
    except KeyNotFound:
        raise KeyError(f"{kind} {backend_id} does not exist in {scope_namespace}") from None
    rec["desired"].update(desired)
    return store.update(key, rec, int(rec["metadata"]["resourceVersion"]))
