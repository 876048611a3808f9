"""Fault injection: make the simulated cloud fail on purpose, from this or another process.

Convergence tests need a backend that times out, runs out of quota or leaves resources in
ERROR. Faults are records in the store (``Key("sandbox/faults", "", <name>)``), so a test
can set them on a running server through the same database; the provider re-reads them at
most ``fault_cache_seconds`` (0.5 s) later.

A fault record::

    {"kind": "Server" | "Cluster" | "Identity" | "*",  # default "*"; Identity: the
                                                 # sandbox identity; Cluster: sandbox KaaS
     "operation": "create" | "update" | "delete" | "find" | "*",   # default "*"
     "scope": "<namespace>" | "*",                # default "*"
     "error": "BackendUnavailable" | "QuotaExceeded" | "Conflict" | "InvalidRequest"
              | "NotFound" | "Timeout",
     "goToError": true,                           # instead of "error": the create/update
                                                  # succeeds, the resource ends in ERROR
     "times": 3,                                  # remaining uses; omitted: forever
     "timeout_seconds": 5.0,                      # Timeout only: sleep, then BackendUnavailable
     "message": "..."}                            # optional text for the error

Records written by hand must carry their key name in ``"name"`` (``inject_fault`` does).
The first matching fault (by name) applies. ``times`` is decremented with an
``expected_revision`` write, so concurrent callers never use one fault more often than allowed;
the record is deleted when it reaches zero.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...store.base import Key, KeyExists, KeyNotFound, RevisionConflict, Store
from ...store.offload import off_loop
from ..base import (
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
)
from .keys import FAULTS, IDENTITY, KINDS
from .settings import PREFIX, SandboxSettings

ERRORS: dict[str, type[ProviderError]] = {
    "BackendUnavailable": BackendUnavailable, "QuotaExceeded": QuotaExceeded,
    "Conflict": Conflict, "InvalidRequest": InvalidRequest, "NotFound": NotFound,
}
OPERATIONS = ("create", "update", "delete", "find")
DEFAULT_TIMEOUT_SECONDS = 5.0
_generation = [0]
"""Bumped by the helpers below so this process sees its own changes without waiting."""


def _bump() -> None:
    _generation[0] += 1


def _validate(name: str, fault: dict[str, Any]) -> dict[str, Any]:
    known = {"kind", "operation", "scope", "error", "goToError", "times", "timeout_seconds",
             "message"}
    unknown = set(fault) - known
    if unknown:
        raise ValueError(f"unknown fault field(s) {sorted(unknown)}; known: {sorted(known)}")
    record = {"name": name, "kind": fault.get("kind", "*"),
              "operation": fault.get("operation", "*"), "scope": fault.get("scope", "*")}
    if record["kind"] != "*" and record["kind"] not in (*KINDS, IDENTITY):
        raise ValueError(f"fault kind must be '*' or one of {[*KINDS, IDENTITY]}")
    if record["operation"] != "*" and record["operation"] not in OPERATIONS:
        raise ValueError(f"fault operation must be '*' or one of {list(OPERATIONS)}")
    error, go_to_error = fault.get("error"), bool(fault.get("goToError"))
    if bool(error) == go_to_error:
        raise ValueError("a fault needs exactly one of error=... or goToError=True")
    if error:
        if error not in ERRORS and error != "Timeout":
            raise ValueError(f"fault error must be one of {[*ERRORS, 'Timeout']}")
        record["error"] = error
    else:
        record["goToError"] = True
    if fault.get("times") is not None:
        if int(fault["times"]) < 1:
            raise ValueError("times must be >= 1 (omit it for a permanent fault)")
        record["times"] = int(fault["times"])
    if error == "Timeout":
        record["timeout_seconds"] = float(fault.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
    if fault.get("message"):
        record["message"] = str(fault["message"])
    return record


def inject_fault(store: Store, name: str, **fault: Any) -> dict[str, Any]:
    """Create or replace the fault ``name``; see the module docstring for the fields."""
    record = _validate(name, fault)
    key = Key(FAULTS, "", name)
    try:
        stored = store.create(key, record)
    except KeyExists:
        stored = store.update(key, record, None)
    _bump()
    return stored


def clear_faults(store: Store, name: str | None = None) -> int:
    """Remove one fault or all of them; returns how many were removed."""
    removed = 0
    for fault in store.list(FAULTS, "").items:
        if name is None or fault["name"] == name:
            try:
                store.delete(Key(FAULTS, "", fault["name"]))
                removed += 1
            except KeyNotFound:
                pass
    _bump()
    return removed


def list_faults(store: Store) -> list[dict[str, Any]]:
    return store.list(FAULTS, "").items


class Faults:
    """The provider's view of the fault records, cached briefly."""

    def __init__(self, store: Store, settings: SandboxSettings) -> None:
        self.store = store
        self.settings = settings
        self._cache: tuple[float, int, list[dict[str, Any]]] | None = None

    def _current(self) -> list[dict[str, Any]]:
        now = self.settings.clock()
        if self._cache is not None:
            read_at, generation, faults = self._cache
            if generation == _generation[0] and 0 <= now - read_at < \
                    self.settings.fault_cache_seconds:
                return faults
        faults = list_faults(self.store)
        self._cache = (now, _generation[0], faults)
        return faults

    async def check(self, kind: str, operation: str, namespace: str) -> str:
        """Raise the injected error, or return an ERROR message for goToError ("" if none).
        The fault records are read and used up off the event loop on PostgreSQL."""
        for fault in await off_loop(self.store, self._current):
            if not (fault.get("kind", "*") in ("*", kind)
                    and fault.get("operation", "*") in ("*", operation)
                    and fault.get("scope", "*") in ("*", namespace)):
                continue
            if "error" not in fault and operation not in ("create", "update"):
                continue
            if not await off_loop(self.store, self._consume, fault):
                continue
            where = f"{kind} {operation} in namespace {namespace}"
            if "error" not in fault:
                return f"{PREFIX}: {_text(fault)}: the resource went to ERROR ({where})"
            await _raise(fault, where)
        return ""

    async def outage(self, kind: str) -> None:
        """Raise the error of a lasting fault of ``kind`` (one without ``times``, on
        ``find`` or every operation, in any scope): what a health probe of the simulated
        service sees. Faults with ``times`` are left to the operations they were injected
        for: a probe using them up would take them from a test's reconciler."""
        for fault in await off_loop(self.store, self._current):
            if ("error" not in fault or "times" in fault
                    or fault.get("kind", "*") not in ("*", kind)
                    or fault.get("operation", "*") not in ("*", "find")
                    or fault.get("scope", "*") != "*"):
                continue
            await _raise(fault, kind)

    def _consume(self, fault: dict[str, Any]) -> bool:
        """Use up one of the fault's ``times``; False if none is left."""
        if "times" not in fault or "name" not in fault:
            return True
        key = Key(FAULTS, "", fault["name"])
        self._cache = None
        for _ in range(20):
            try:
                current = self.store.get(key)
                left = int(current.get("times", 0))
                if left <= 0:
                    return False
                revision = int(current["metadata"]["resourceVersion"])
                if left == 1:
                    self.store.delete(key, revision)
                else:
                    current["times"] = left - 1
                    self.store.update(key, current, revision)
                return True
            except KeyNotFound:
                return False
            except RevisionConflict:
                continue
        return False


def _text(fault: dict[str, Any]) -> str:
    return str(fault.get("message") or f"injected fault {fault.get('name', '')!r}")


async def _raise(fault: dict[str, Any], where: str) -> None:
    """The fault's error for an operation on ``where``; a Timeout first waits it out."""
    if fault["error"] == "Timeout":
        seconds = float(fault.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        await asyncio.sleep(seconds)
        raise BackendUnavailable(f"{PREFIX}: {_text(fault)}: {where} timed out after "
                                 f"{seconds:g} s")
    raise ERRORS[fault["error"]](f"{PREFIX}: {_text(fault)}: {fault['error']} on {where}")
