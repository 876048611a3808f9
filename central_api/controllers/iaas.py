"""One reconciler for every IaaS kind: resolve references, converge the backend, report.

The kinds differ only in which spec fields name other objects (``networkRef`` → the backend
ID of that Network) and which backend observations show up in status; both come from the
kind's declaration: the references its spec marks (:class:`~..kinds.common.References`) and
the fields its status declares.
Conditions: ``ReferencesResolved`` (all referenced objects exist and are Ready, and a
tenant's credentials exist), ``Synced`` (the backend accepted the desired state) and
``Ready`` (the backend resource is usable).

Tenant isolation reaches the backend here: in a namespace of tenant ``acme`` a provider that
works with tenant credentials (OpenStack) acts with the application credential onboarding
stored in the Secret ``acme/openstack-credentials``, so the objects land in acme's project.
Until that Secret exists the objects wait; they never fall back to the operator's project.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import yaml

from ..auth.tenants import tenant_label
from ..kinds.common import LocalRef, References, local_references
from ..kinds.iaas import IAAS_KINDS, IaasObject, IaasStatus
from ..kinds.kind import ResourceType
from ..providers.base import BackendResource, Provider, ProviderError, Scope
from .client import Client
from .outcomes import Blocked, Failed, report, settle
from .runtime import Result
from .tenants import CREDENTIALS_SECRET, NAMESPACES, SECRETS
from .typed import kind_of, load

log = logging.getLogger("central_api.iaas")

FINALIZER = "iaas.scs.community/backend"
WAIT_FOR_REFERENCES = 2.0
POLL_PENDING = 1.0
KINDS = {rt.model: kind_of(rt) for rt in IAAS_KINDS}
"""Where the target of a reference is read, by its declared model."""
BOOKKEEPING = frozenset(IaasStatus.model_fields)
"""Status fields the reconciler sets itself; the backend reports the kind's own ones."""
READY_MESSAGES = {"PENDING": ("Creating", "the backend is creating the resource"),
                  "ACTIVE": ("Active", "the resource is ready"),
                  "ERROR": ("BackendError", "failed"),
                  "DELETING": ("Deleting", "the backend is deleting the resource")}


class IaasReconciler:
    finalizer = FINALIZER

    def __init__(self, client: Client, provider: Provider, rt: ResourceType) -> None:
        if rt.model is None or not issubclass(rt.model, IaasObject):
            raise TypeError(f"{rt.kind} is not an IaaS kind")
        self.client = client
        self.provider = provider
        self.rt = rt
        self.model: type[IaasObject] = rt.model
        self.kind = kind_of(rt)

    # -- reconcile -----------------------------------------------------------------------
    async def reconcile(self, obj: IaasObject) -> Result:
        try:
            scope = await self._scope(obj.metadata.namespace)
            desired = await self._desired(scope.namespace, obj)
            obj.set_condition("ReferencesResolved", True, "Resolved")
            backend = await self._converge(scope, obj, desired)
        except Blocked as exc:
            report(obj, "ReferencesResolved", exc)
            return settle(exc)
        except ProviderError as exc:
            failed = Failed(exc.reason, self.provider.labelled(str(exc)), retry=exc.retryable)
            report(obj, "Synced", failed)
            return settle(failed)
        obj.set_condition("Synced", True, "Synced")
        self._report(obj, backend)
        return Result(requeue_after=POLL_PENDING if backend.state == "PENDING" else None)

    async def _converge(self, scope: Scope, obj: IaasObject, desired: dict[str, Any]
                        ) -> BackendResource:
        """Create the backend resource (with the IDs only creating needs) or update it."""
        service = self.provider.service(self.rt.kind)
        backend = await service.find(scope, obj.metadata.uid)
        if backend is None:
            ids = await self._creation_ids(scope.namespace, obj)
            return await service.create(scope, obj.metadata.uid, {**desired, **ids})
        if _differs(backend.desired, desired, _creation_keys(obj)) \
                and backend.state != "DELETING":
            return await service.update(scope, backend, desired)
        return backend

    def _report(self, obj: IaasObject, backend: BackendResource) -> None:
        """The backend's observations in the kind's status fields, and ``Ready``."""
        status = type(obj.status)
        observed = {key: value for key, value in backend.observed.items()
                    if key in status.model_fields and key not in BOOKKEEPING}
        obj.status = status.model_validate({**obj.status.model_dump(), **observed})
        obj.status.backendID = backend.id
        obj.status.provider = self.provider.label
        obj.status.observedGeneration = obj.metadata.generation
        reason, message = READY_MESSAGES[backend.state]
        if backend.state == "ERROR":
            message = backend.message or message
        elif backend.message:
            message += f" ({backend.message})"
        obj.set_condition("Ready", backend.state == "ACTIVE", reason,
                          self.provider.labelled(message))

    # -- scope ---------------------------------------------------------------------------
    async def _scope(self, namespace: str) -> Scope:
        """Where the namespace's objects live in the backend, with whose credentials; the
        tenant is named even where the provider needs no credentials of its own (the
        sandbox enforces the tenant's quotas with it)."""
        ns = await self.client.get(NAMESPACES, "", namespace) or {}
        tenant = tenant_label(ns) or ""
        if not self.provider.tenant_credentials:
            return Scope(namespace, tenant)
        if not tenant:
            return Scope(namespace)  # the operator's own namespaces: the operator's project
        secret = await self.client.get(SECRETS, tenant, CREDENTIALS_SECRET)
        try:
            clouds = yaml.safe_load(base64.b64decode((secret or {})["data"]["clouds.yaml"]))
        except (KeyError, TypeError, binascii.Error, yaml.YAMLError):
            raise Blocked("CredentialsNotReady", (
                f"tenant {tenant} has no usable OpenStack credentials yet (Secret "
                f"{tenant}/{CREDENTIALS_SECRET}, written by onboarding)"),
                WAIT_FOR_REFERENCES) from None
        return Scope(namespace, tenant, credentials=clouds)

    # -- references ----------------------------------------------------------------------
    async def _desired(self, namespace: str, obj: IaasObject) -> dict[str, Any]:
        """The spec as stored, each reference replaced by the backend ID(s) it names
        (``networkRef`` → ``networkID``); creation-only ones: see :meth:`_creation_ids`."""
        desired = obj.spec.model_dump(mode="json", exclude_unset=True)
        for path, ref, value in local_references(obj.spec):
            if ref.at_creation:
                continue
            parent = _at(desired, path[:-1])
            parent.pop(str(path[-1]), None)
            parent[_key(ref, value)] = await self._resolved(namespace, ref, value)
        return desired

    async def _creation_ids(self, namespace: str, obj: IaasObject) -> dict[str, Any]:
        """The backend IDs of references only creating needs (the reference stays)."""
        return {_key(ref, value): await self._resolved(namespace, ref, value)
                for _, ref, value in local_references(obj.spec) if ref.at_creation}

    async def _resolved(self, namespace: str, ref: References,
                        value: LocalRef | list[LocalRef] | None) -> list[str] | str | None:
        """The backend ID(s) of what ``value`` names; ``ref.absent`` for no reference."""
        if isinstance(value, list):
            return [await self._backend_id(namespace, ref, item) for item in value]
        return await self._backend_id(namespace, ref, value) if value else ref.absent

    async def _backend_id(self, namespace: str, ref: References, value: LocalRef) -> str:
        kind = KINDS[ref.target]
        found = await self.client.get(kind, namespace, value.name)
        if found is None:
            raise Blocked("ReferenceNotFound", f"{kind.plural} {value.name!r} does not exist "
                                               f"in namespace {namespace}", WAIT_FOR_REFERENCES)
        target = load(IaasObject, found)
        if target.metadata.deletionTimestamp:
            raise Blocked("ReferenceDeleting", f"{kind.plural} {value.name!r} is being deleted",
                          WAIT_FOR_REFERENCES)
        if not target.status.backendID or not target.status.is_true("Ready"):
            raise Blocked("ReferenceNotReady", f"{kind.plural} {value.name!r} is not Ready yet",
                          WAIT_FOR_REFERENCES)
        return target.status.backendID

    # -- finalize ------------------------------------------------------------------------
    async def finalize(self, obj: IaasObject) -> bool:
        try:
            scope = await self._scope(obj.metadata.namespace)
        except Blocked as exc:  # retried: the backend object must not leak
            raise RuntimeError(f"cannot delete the backend resource: {exc}") from None
        service = self.provider.service(self.rt.kind)
        backend = await service.find(scope, obj.metadata.uid)
        if backend is None:
            return True
        if backend.state != "DELETING":
            try:
                await service.delete(scope, backend)
            except ProviderError as exc:  # e.g. a network that still has subnets
                obj.set_condition("Ready", False, f"Deletion{exc.reason}",
                                  self.provider.labelled(f"deletion waits: {exc}"))
                raise
        return False


def _creation_keys(obj: IaasObject) -> set[str]:
    return {_key(ref, value) for _, ref, value in local_references(obj.spec) if ref.at_creation}


def _key(ref: References, value: LocalRef | list[LocalRef] | None) -> str:
    """The backend's name for the ID(s): ``networkID``, or ``networkIDs`` for a list."""
    return ref.many_key if isinstance(value, list) else ref.key


def _differs(backend: dict[str, Any], desired: dict[str, Any], creation_keys: set[str]) -> bool:
    """Whether the backend needs an update; IDs needed only at creation do not count."""
    return ({k: v for k, v in backend.items() if k not in creation_keys}
            != {k: v for k, v in desired.items() if k not in creation_keys})


def _at(data: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    """The dict at ``path`` (field names and list indexes) inside ``data``."""
    node: Any = data
    for step in path:
        node = node[step]
    found: dict[str, Any] = node
    return found


def iaas_reconcilers(client: Client, provider: Provider) -> list[IaasReconciler]:
    return [IaasReconciler(client, provider, rt) for rt in IAAS_KINDS
            if rt.kind in provider.services]
