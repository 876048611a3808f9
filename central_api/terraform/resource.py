"""One kind's objects through the SDK, as Terraform states: the generic resource.

- create: POST, then wait for Ready (kinds that report one, unless ``wait_for_ready =
  false``) within ``timeouts.create``; a create that times out leaves the object in state
  with the error, so Terraform marks it tainted and replaces it next time;
- read: GET; an object gone on the server drops from state, one changed on the server
  (kubectl edit) shows its new values, so the next plan shows the drift;
- update: in place, a PUT of the object as read with the configured fields replaced
  (finalizers, owner references and status stay the server's), again on a 409 Conflict
  with a controller's write; then wait for Ready for the new generation;
- delete: DELETE, then wait until finalizers ran and the object is gone
  (``timeouts.delete``);
- import: ``namespace/name`` or ``name``.
Every refusal becomes a diagnostic (:mod:`.diagnostics`).
"""

from __future__ import annotations

import time
from typing import Any

from tf.utils import Diagnostics

from ..client import Client, Conflict, NotFound, WaitTimeout
from ..client.resources import conditions
from .diagnostics import report
from .plan import LOCAL, parse_duration, server_side
from .schema import Node
from .types import TfKind
from .values import settle, to_api, to_tf

DEFAULT_TIMEOUTS = {"create": 1200.0, "update": 1200.0, "delete": 600.0}
"""Seconds; a Cluster may take a while to be Ready on a real backend."""
SERVER_SET_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp")
UPDATE_ATTEMPTS = 5
NO_READY_GRACE = 30.0
"""Seconds within which a controller that reports Ready has set the condition (True or
False with a reason): its first reconcile."""
MAPS = ("labels", "annotations")
"""Metadata maps shared with controllers and kubectl: Terraform shows and changes only the
keys its configuration has (as the kubernetes provider does); an import shows all."""


def timeout_of(state: dict[str, Any], verb: str) -> float:
    given = (state.get("timeouts") or {}).get(verb)
    return parse_duration(given) if given else DEFAULT_TIMEOUTS[verb]


def object_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def where(state: dict[str, Any]) -> tuple[str, str]:
    meta = state.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Objects:
    """The CRUD operations of one kind (``kind.resource`` is its schema root)."""

    def __init__(self, client: Client, kind: TfKind) -> None:
        if kind.resource is None:
            raise ValueError(f"{kind.res.kind} cannot be written")
        self.client = client
        self.kind = kind
        self.root: Node = kind.resource
        self.res = kind.res.sdk()

    def what(self, verb: str, state: dict[str, Any]) -> str:
        return f"{verb} {self.kind.res.kind} {object_id(*where(state))}"

    # -- states and bodies ----------------------------------------------------------------------
    def state(self, obj: dict[str, Any], held: dict[str, Any]) -> dict[str, Any]:
        """The Terraform state of ``obj``, keeping ``held`` values that mean the same."""
        new = to_tf(self.root, obj)
        meta = obj.get("metadata") or {}
        new["id"] = object_id(str(meta.get("namespace") or ""), str(meta.get("name")))
        if isinstance(held.get("metadata"), dict):  # not an import: only the keys we manage
            for key in MAPS:
                mine = held["metadata"].get(key) or {}
                new["metadata"][key] = {k: v for k, v in (new["metadata"][key] or {}).items()
                                        if k in mine} or None
        for name in LOCAL:
            new[name] = held.get(name)
        return settle(self.root, new, held)  # nothing held (import): empty values as null

    def body(self, planned: dict[str, Any]) -> dict[str, Any]:
        """The object to send: the configured fields, without server-set ones."""
        body = to_api(self.root, {k: v for k, v in planned.items()
                                  if k not in LOCAL and k not in ("id", "status")})
        for key in SERVER_SET_METADATA:
            body.get("metadata", {}).pop(key, None)
        return {"apiVersion": self.kind.res.api_version, "kind": self.kind.res.kind, **body}

    # -- operations -----------------------------------------------------------------------------
    def create(self, diags: Diagnostics, planned: dict[str, Any]) -> dict[str, Any] | None:
        try:
            obj = self.client.create(self.body(planned), kind=self.res)
        except Exception as exc:  # noqa: BLE001 - every failure is a diagnostic
            report(diags, exc, self.what("create", planned), self.root,
                   object_id(*where(planned)))
            return None
        return self._ready(diags, obj, planned, "create")

    def read(self, diags: Diagnostics, prior: dict[str, Any]) -> dict[str, Any] | None:
        namespace, name = where(prior)
        try:
            obj = self.client.find(self.res, name, namespace or None)
        except Exception as exc:  # noqa: BLE001 - every failure is a diagnostic
            report(diags, exc, self.what("read", prior), self.root)
            return prior
        return None if obj is None else self.state(obj, prior)

    def update(self, diags: Diagnostics, prior: dict[str, Any], planned: dict[str, Any]
               ) -> dict[str, Any] | None:
        if server_side(self.root, prior) == server_side(self.root, planned):
            return planned  # only timeouts or wait_for_ready changed
        try:
            obj = self._put(prior, planned)
        except Exception as exc:  # noqa: BLE001 - every failure is a diagnostic
            report(diags, exc, self.what("update", planned), self.root)
            return prior
        return self._ready(diags, obj, planned, "update")

    def delete(self, diags: Diagnostics, prior: dict[str, Any]) -> None:
        """DELETE, then follow the object until it is gone — or until it reports a
        ``DeletionBlocked`` condition (a Tenant waits for a confirmation annotation; its
        namespaces hold Servers): that is an error naming the reason, not a long wait."""
        namespace, name = where(prior)
        try:
            self.client.delete(self.res, name, namespace or None)
            last = self.client.wait_for(self.res, name, _gone_or_blocked, namespace or None,
                                        timeout=timeout_of(prior, "delete"), what="deleted")
        except NotFound:
            return
        except Exception as exc:  # noqa: BLE001 - every failure is a diagnostic
            report(diags, exc, self.what("delete", prior), self.root)
            return
        blocked = _blocked(last)
        if blocked is not None:
            diags.add_error(f"Cannot delete {self.kind.res.kind} {object_id(namespace, name)}: "
                            f"deletion is blocked ({blocked.get('reason')})",
                            detail=f"{blocked.get('message')}\nThe object stays, marked for "
                                   "deletion; fix the cause (for a Tenant: set the annotation "
                                   "in metadata.annotations and apply) and destroy again.")

    def import_(self, diags: Diagnostics, ident: str) -> dict[str, Any] | None:
        namespace, _, name = ident.rpartition("/")
        shape = "namespace/name" if self.kind.res.namespaced else "name"
        if not name or bool(namespace) != self.kind.res.namespaced or "/" in namespace:
            diags.add_error(f"Cannot import {self.kind.res.kind} {ident!r}",
                            detail=f"The ID of a {self.kind.res.kind} is {shape}.")
            return None
        try:
            obj = self.client.get(self.res, name, namespace or None)
        except Exception as exc:  # noqa: BLE001 - every failure is a diagnostic
            report(diags, exc, f"import {self.kind.res.kind} {ident}", self.root)
            return None
        return self.state(obj, {})

    # -- helpers --------------------------------------------------------------------------------
    def _put(self, prior: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
        """Read, replace the configured fields, write; again when a controller wrote.
        Labels and annotations Terraform never managed (a controller's, kubectl's) stay."""
        namespace, name = where(planned)
        managed = {key: set((prior.get("metadata") or {}).get(key) or {}) for key in MAPS}
        wanted = self.body(planned)
        for attempt in range(UPDATE_ATTEMPTS):
            current = self.client.get(self.res, name, namespace or None)
            merged = {key: value for key, value in current.items()
                      if key not in wanted or key == "metadata"}
            merged.update({k: v for k, v in wanted.items() if k != "metadata"})
            meta = dict(current.get("metadata") or {})
            for key in MAPS:
                kept = {k: v for k, v in (meta.pop(key, None) or {}).items()
                        if k not in managed[key]}
                merged_map = {**kept, **(wanted["metadata"].get(key) or {})}
                if merged_map:
                    meta[key] = merged_map
            for name_ in self._unset_fields(wanted):
                merged.pop(name_, None)
            merged["metadata"] = meta
            try:
                updated: dict[str, Any] = self.client.update(merged, kind=self.res)
                return updated
            except Conflict:
                if attempt == UPDATE_ATTEMPTS - 1:
                    raise
        raise RuntimeError("unreachable")  # pragma: no cover

    def _unset_fields(self, wanted: dict[str, Any]) -> list[str]:
        """Top-level fields the configuration leaves out (removed from the object)."""
        return [node.api_name for name, node in self.root.attributes.items()
                if node.api_name and node.api_name not in wanted and name != "status"
                and not node.computed and name not in LOCAL]

    def _ready(self, diags: Diagnostics, obj: dict[str, Any], planned: dict[str, Any],
               verb: str) -> dict[str, Any]:
        deleting = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
        if deleting:  # it will not become Ready again: say so rather than wait
            diags.add_warning(f"{self.kind.res.kind} {object_id(*where(planned))} is being "
                              "deleted", detail="Its deletion started before this change; "
                              "it will be gone once its finalizers ran.")
        elif self.kind.waits and planned.get("wait_for_ready") is not False:
            try:
                obj = self._wait_ready(diags, obj, timeout_of(planned, verb))
            except WaitTimeout as exc:
                report(diags, exc, self.what(f"{verb} (waiting for Ready)", planned))
                obj = exc.last or obj
            except Exception as exc:  # noqa: BLE001 - every failure is a diagnostic
                report(diags, exc, self.what(f"{verb} (waiting for Ready)", planned))
        return self.state(obj, planned)

    def _wait_ready(self, diags: Diagnostics, obj: dict[str, Any], timeout: float
                    ) -> dict[str, Any]:
        """Ready=True for the current generation; but an object that shows no Ready
        condition at all within :data:`NO_READY_GRACE` belongs to a kind whose controller
        reports none (a kind added later, say): a warning, not a wait until the timeout."""
        namespace, name = where(obj)
        started = time.monotonic()
        try:
            obj = self.client.wait_for(self.res, name, _has_ready, namespace or None,
                                       timeout=min(NO_READY_GRACE, timeout),
                                       what="reporting Ready")
        except WaitTimeout as exc:
            if exc.last is None or _has_ready(exc.last) or timeout <= NO_READY_GRACE:
                raise
            diags.add_warning(f"{self.kind.res.kind} {object_id(namespace, name)} reports no "
                              "Ready condition", detail=f"Not waiting for it: none appeared "
                                                        f"within {NO_READY_GRACE:.0f}s.")
            return dict(exc.last)
        remaining = max(1.0, timeout - (time.monotonic() - started))
        ready: dict[str, Any] = self.client.wait_ready(obj, remaining, kind=self.res)
        return ready


def _has_ready(obj: dict[str, Any] | None) -> bool:
    return any(c.get("type") == "Ready" for c in conditions(obj))



def _blocked(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    for cond in conditions(obj):
        if cond.get("type") == "DeletionBlocked" and cond.get("status") == "True":
            return cond
    return None


def _gone_or_blocked(obj: dict[str, Any] | None) -> bool:
    return obj is None or _blocked(obj) is not None
