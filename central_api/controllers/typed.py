"""Stored objects as their kind's declared type, and the status a pass set written back.

The registry and the client work on dicts (custom resources have no Python type); a
reconciler gets an instance of the kind's pydantic model and sets status fields on it. The
runtime then writes the declared status fields that differ from the stored ones onto the
stored object, so fields the model does not know (written by a newer version, say) stay as
they are.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from ..kinds.common import Reconciled, Resource
from ..kinds.kind import ResourceType
from ..machinery.errors import ApiError
from .client import Client, Kind

R = TypeVar("R", bound=Resource)


class InvalidObject(Exception):
    """A stored object that does not fit its declared model. Admission validated it against
    the same declaration, so this means data written around the API or by another version;
    retrying cannot help, only a change of the object can."""

    reason = "InvalidObject"


def kind_of(rt: ResourceType) -> Kind:
    """How a controller addresses a declared kind."""
    return Kind(rt.group, rt.version, rt.plural, rt.namespaced)


def load(model: type[R], raw: dict[str, Any]) -> R:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        meta = raw.get("metadata") or {}
        raise InvalidObject(f"{model.__name__} {meta.get('namespace', '')}/"
                            f"{meta.get('name', '')} does not match its declaration: "
                            f"{exc.error_count()} error(s), first: "
                            f"{exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from None


async def fetch(client: Client, model: type[R], kind: Kind, namespace: str, name: str
                ) -> R | None:
    """The object ``name`` as its declared type, or None if it does not exist."""
    found = await client.get(kind, namespace, name)
    return load(model, found) if found is not None else None


async def write_status(client: Client, kind: Kind, raw: dict[str, Any], obj: Reconciled
                       ) -> None:
    """Write the status fields of ``obj`` that differ from the stored ``raw`` (nothing if
    none do); fields the model does not declare stay as stored.

    Another writer of the same status (the tenant storage usage report) makes the write
    conflict: then these fields are applied onto the latest version once (client-go's
    RetryOnConflict) instead of failing the pass and redoing its backend calls."""
    stored = raw.get("status") or {}
    after = obj.status.model_dump(mode="json", exclude_none=True)
    changed = {key for key, value in after.items() if stored.get(key) != value}
    changed |= {key for key in type(obj.status).model_fields
                if key not in after and stored.get(key) is not None}
    if not changed:
        return
    try:
        await client.update_status(kind, _with_status(raw, after, changed))
        return
    except ApiError as exc:
        if exc.code != 409:
            raise
    live = await client.get(kind, obj.metadata.namespace, obj.metadata.name)
    if live is not None and live["metadata"].get("uid") == obj.metadata.uid:
        await client.update_status(kind, _with_status(live, after, changed))


def _with_status(raw: dict[str, Any], after: dict[str, Any], changed: set[str]
                 ) -> dict[str, Any]:
    """``raw`` with the changed fields of ``after`` in its status (absent ones removed)."""
    status = dict(raw.get("status") or {})
    for key in changed:
        if key in after:
            status[key] = after[key]
        else:
            status.pop(key, None)
    return {**raw, "status": status}
