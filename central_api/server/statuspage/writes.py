"""The status-page API's writes, as registry calls: the same admission, validation, RBAC
escalation checks and watch events as a kubectl write of the same object.

These functions block on the store; callers run them with ``off_loop``. A
read-modify-write (adding an incident update, patching a field) reads the object, changes
it and updates it with that resourceVersion: if another writer (a probe, kubectl) got in
between, the update conflicts and is retried on the new version, so no write is lost.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

from ...kinds.kind import ResourceType
from ...kinds.status import PHASE_LIST, phase_list_name
from ...machinery.errors import ApiError
from ...registry.resources import DeleteOptions, ListOptions, Resources, WriteOptions
from ...registry.retry import retry_on_conflict

T = TypeVar("T")
Object = dict[str, Any]


def create(resources: Resources, rt: ResourceType, obj: Object, opts: WriteOptions) -> Object:
    return resources.create(rt, "", obj, opts)


def modify(resources: Resources, rt: ResourceType, name: str, change: Callable[[Object], T],
           opts: WriteOptions) -> tuple[Object, T]:
    """Apply ``change`` to the live object and store it; retried on concurrent writes.
    ``change`` edits its argument in place and may raise to refuse (nothing is stored)."""
    def attempt() -> tuple[Object, T]:
        obj = copy.deepcopy(resources.get(rt, "", name))
        result = change(obj)
        return resources.update(rt, "", name, obj, opts), result
    return retry_on_conflict(attempt)


def delete(resources: Resources, rt: ResourceType, name: str) -> Object:
    return resources.delete(rt, "", name, DeleteOptions())


def rename(resources: Resources, rt: ResourceType, name: str, new_name: str,
           change: Callable[[Object], None], opts: WriteOptions) -> Object:
    """A Severity's display name is its object name: renaming deletes the old object and
    creates the new one (its value must stay unique, so not the other way round); if the
    create is refused (the new name taken), the old object is put back."""
    old = resources.get(rt, "", name)
    new = {"metadata": {"name": new_name, "labels": old["metadata"].get("labels") or {},
                        "annotations": old["metadata"].get("annotations") or {}},
           "spec": copy.deepcopy(old["spec"])}
    change(new)
    resources.delete(rt, "", name, DeleteOptions(precondition_uid=old["metadata"]["uid"]))
    try:
        return resources.create(rt, "", new, opts)
    except ApiError:
        restored = copy.deepcopy(old)
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
            restored["metadata"].pop(server_field, None)
        resources.create(rt, "", restored, opts)
        raise


def next_phase_list(resources: Resources, phases: list[str], opts: WriteOptions) -> Object:
    """Create the generation after the highest; two writers at once get consecutive ones."""
    def attempt() -> Object:
        listed = resources.list(PHASE_LIST, None, ListOptions())["items"]
        generation = max((o["spec"]["generation"] for o in listed), default=0) + 1
        obj = {"metadata": {"name": phase_list_name(generation)},
               "spec": {"generation": generation, "phases": phases}}
        return resources.create(PHASE_LIST, "", obj, opts)
    return retry_on_conflict(attempt)
