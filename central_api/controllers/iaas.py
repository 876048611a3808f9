"""One reconciler for every IaaS kind: resolve references, converge the backend, report.

The kinds differ only in which spec fields name other objects (``networkRef`` → the backend
ID of that Network) and which backend observations show up in status; both are data here.
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
import copy
import logging
from dataclasses import dataclass
from typing import Any

import yaml

from ..auth.tenants import TENANT_LABEL
from ..kinds.iaas import API_VERSION, IAAS_KINDS
from ..kinds.kind import ResourceType
from ..providers.base import BackendResource, Provider, ProviderError, Scope
from .client import Client, Kind
from .conditions import is_true, set_condition
from .outcomes import Blocked, Failed, report, settle
from .runtime import Result
from .tenants import CREDENTIALS_SECRET, NAMESPACES, SECRETS

log = logging.getLogger("central_api.iaas")

FINALIZER = "iaas.scs.community/backend"
GROUP, VERSION = API_VERSION.split("/")
WAIT_FOR_REFERENCES = 2.0
POLL_PENDING = 1.0


@dataclass(frozen=True)
class Ref:
    field: str
    """Spec field holding a LocalRef (or a list of them)."""
    plural: str
    """Kind of the referenced objects."""
    desired_key: str
    """Key of the resolved backend ID(s) in the provider's desired dict."""
    many: bool = False
    at_creation: bool = False
    """Only creating the backend resource needs the referenced object (a Server's Image): it
    is resolved when the resource is created (also again, if it vanished from the backend)
    and never compared afterwards, so deleting or replacing the Image does not touch a
    running Server. The reference stays in the desired dict; providers treat it as
    immutable."""


REFERENCES: dict[str, list[Ref]] = {
    "Subnet": [Ref("networkRef", "networks", "networkID")],
    "Router": [Ref("interfaces", "subnets", "subnetIDs", many=True)],
    "Server": [Ref("networks", "networks", "networkIDs", many=True),
               Ref("securityGroups", "securitygroups", "securityGroupIDs", many=True),
               Ref("volumes", "volumes", "volumeIDs", many=True),
               Ref("keypairRef", "keypairs", "keypairID"),
               Ref("imageRef", "images", "imageID", at_creation=True)],
    "FloatingIP": [Ref("serverRef", "servers", "serverID")],
    "LoadBalancer": [Ref("subnetRef", "subnets", "subnetID")],
}


class IaasReconciler:
    finalizer = FINALIZER

    def __init__(self, client: Client, provider: Provider, rt: ResourceType) -> None:
        self.client = client
        self.provider = provider
        self.rt = rt
        refs = REFERENCES.get(rt.kind, [])
        self.refs = [ref for ref in refs if not ref.at_creation]
        self.creation_refs = [ref for ref in refs if ref.at_creation]
        self.creation_keys = {ref.desired_key for ref in self.creation_refs}
        self.kind = Kind(GROUP, VERSION, rt.plural)
        status = rt.schema["properties"].get("status", {}).get("properties", {})
        self.status_fields = set(status) - {"conditions", "observedGeneration", "backendID",
                                            "provider"}

    @property
    def provider_label(self) -> str:
        return f"{self.provider.name} (simulated)" if self.provider.simulated \
            else self.provider.name

    # -- reconcile -----------------------------------------------------------------------
    async def reconcile(self, obj: dict[str, Any]) -> Result:
        new = copy.deepcopy(obj)
        try:
            scope = await self._scope(obj["metadata"]["namespace"])
            desired = await self._desired(scope.namespace, obj)
            set_condition(new, "ReferencesResolved", True, "Resolved")
            backend = await self._converge(scope, obj, desired)
        except Blocked as exc:
            report(new, "ReferencesResolved", exc)
            await self._write_status(obj, new)
            return settle(exc)
        except ProviderError as exc:
            failed = Failed(exc.reason, self._labelled(str(exc)), retry=exc.retryable)
            report(new, "Synced", failed)
            await self._write_status(obj, new)
            return settle(failed)
        set_condition(new, "Synced", True, "Synced")
        self._report(new, backend)
        await self._write_status(obj, new)
        return Result(requeue_after=POLL_PENDING if backend.state == "PENDING" else None)

    async def _converge(self, scope: Scope, obj: dict[str, Any], desired: dict[str, Any]
                        ) -> BackendResource:
        """Create the backend resource (with the IDs only creating needs) or update it."""
        service = self.provider.service(self.rt.kind)
        uid = obj["metadata"]["uid"]
        backend = await service.find(scope, uid)
        if backend is None:
            ids = await self._creation_ids(scope.namespace, desired)
            return await service.create(scope, uid, {**desired, **ids})
        if self._differs(backend.desired, desired) and backend.state != "DELETING":
            return await service.update(scope, backend, desired)
        return backend

    def _differs(self, backend: dict[str, Any], desired: dict[str, Any]) -> bool:
        """Whether the backend needs an update; IDs needed only at creation do not count."""
        return ({k: v for k, v in backend.items() if k not in self.creation_keys}
                != {k: v for k, v in desired.items() if k not in self.creation_keys})

    def _report(self, new: dict[str, Any], backend: BackendResource) -> None:
        status = new.setdefault("status", {})
        status.update(backendID=backend.id, provider=self.provider_label,
                      observedGeneration=new["metadata"].get("generation"))
        for key, value in backend.observed.items():
            if key in self.status_fields:
                status[key] = value
        messages = {"PENDING": "the backend is creating the resource",
                    "ACTIVE": "the resource is ready", "ERROR": backend.message or "failed",
                    "DELETING": "the backend is deleting the resource"}
        reason = {"PENDING": "Creating", "ACTIVE": "Active", "ERROR": "BackendError",
                  "DELETING": "Deleting"}[backend.state]
        message = messages[backend.state]
        if backend.message and backend.state != "ERROR":
            message += f" ({backend.message})"
        set_condition(new, "Ready", backend.state == "ACTIVE", reason, self._labelled(message))

    def _labelled(self, message: str) -> str:
        """Messages name the provider once (the sandbox's own already say "simulated")."""
        return message if message.startswith(self.provider.name) \
            else f"{self.provider_label}: {message}"

    async def _write_status(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if new.get("status") != old.get("status"):
            await self.client.update_status(self.kind, new)

    # -- scope ---------------------------------------------------------------------------
    async def _scope(self, namespace: str) -> Scope:
        """Where the namespace's objects live in the backend, with whose credentials."""
        if not self.provider.tenant_credentials:
            return Scope(namespace)
        ns = await self.client.get(NAMESPACES, "", namespace) or {}
        tenant = ((ns.get("metadata") or {}).get("labels") or {}).get(TENANT_LABEL)
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
    async def _desired(self, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        desired = copy.deepcopy(obj.get("spec") or {})
        for ref in self.refs:  # creation-only ones: see _creation_ids
            value = desired.pop(ref.field, None)
            if ref.many:
                desired[ref.desired_key] = [await self._backend_id(namespace, ref.plural,
                                                                   item["name"])
                                            for item in value or []]
            else:
                desired[ref.desired_key] = (await self._backend_id(
                    namespace, ref.plural, value["name"]) if value else
                    (None if ref.plural == "servers" else ""))
        if self.rt.kind == "LoadBalancer":
            for pool in desired.get("pools") or []:
                for member in pool.get("members") or []:
                    server = member.pop("serverRef")["name"]
                    member["serverID"] = await self._backend_id(namespace, "servers", server)
        return desired

    async def _creation_ids(self, namespace: str, desired: dict[str, Any]) -> dict[str, str]:
        """The backend IDs of references only creating needs (the reference stays)."""
        ids = {}
        for ref in self.creation_refs:
            value = desired.get(ref.field)
            ids[ref.desired_key] = (await self._backend_id(namespace, ref.plural,
                                                           value["name"]) if value else "")
        return ids

    async def _backend_id(self, namespace: str, plural: str, name: str) -> str:
        target = await self.client.get(Kind(GROUP, VERSION, plural), namespace, name)
        if target is None:
            raise Blocked("ReferenceNotFound", f"{plural} {name!r} does not exist in "
                                               f"namespace {namespace}", WAIT_FOR_REFERENCES)
        if target["metadata"].get("deletionTimestamp"):
            raise Blocked("ReferenceDeleting", f"{plural} {name!r} is being deleted",
                          WAIT_FOR_REFERENCES)
        backend_id = (target.get("status") or {}).get("backendID")
        if not backend_id or not is_true(target, "Ready"):
            raise Blocked("ReferenceNotReady", f"{plural} {name!r} is not Ready yet",
                          WAIT_FOR_REFERENCES)
        return str(backend_id)

    # -- finalize ------------------------------------------------------------------------
    async def finalize(self, obj: dict[str, Any]) -> bool:
        try:
            scope = await self._scope(obj["metadata"]["namespace"])
        except Blocked as exc:  # retried: the backend object must not leak
            raise RuntimeError(f"cannot delete the backend resource: {exc}") from None
        service = self.provider.service(self.rt.kind)
        backend = await service.find(scope, obj["metadata"]["uid"])
        if backend is None:
            return True
        if backend.state != "DELETING":
            try:
                await service.delete(scope, backend)
            except ProviderError as exc:  # e.g. a network that still has subnets
                new = copy.deepcopy(obj)
                set_condition(new, "Ready", False, f"Deletion{exc.reason}",
                              self._labelled(f"deletion waits: {exc}"))
                await self._write_status(obj, new)
                raise
        return False


def iaas_reconcilers(client: Client, provider: Provider) -> list[IaasReconciler]:
    return [IaasReconciler(client, provider, rt) for rt in IAAS_KINDS
            if rt.kind in provider.services]
