"""Clusters as Cluster API ``v1beta2`` Clusters with a topology, in the tenant's namespace.

Every write is a server-side apply of the whole rendered body with the field manager
:data:`FIELD_MANAGER`: the fields Cluster API's controllers own stay theirs, and a hand edit
of one of the provider's fields is taken back on the next apply (``force``). ``find`` reads
the Cluster by the owner-UID label only, so a retry or a restart finds what it created; it
reports the stored spec as ``desired`` only while the Cluster still holds every field the
provider applied, so drift makes the controller call ``update`` (repair) on its next pass.

A CAPI Cluster is named after the Central API object's UID (``kc-`` + 16 hex digits): a
tenant's namespaces share one management namespace, so their clusters' names could clash,
and the name of a cluster reaches OpenStack resource names, where a tenant's choice of words
has no business. The Central API namespace is a label, the backend name is in the status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...config import CapiConfig
from ..base import BackendResource, Conflict, InvalidRequest, NotFound, ProviderError, Scope
from ..kube import KubeClient
from . import mapping, offer, status, variables
from .management import Management

FIELD_MANAGER = "scs-central-api"
MACHINE_DEPLOYMENTS = ("cluster.x-k8s.io/v1beta2", "machinedeployments")
CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"


class CredentialsMissing(ProviderError):
    """The tenant's OpenStack credentials Secret is not in its management namespace yet
    (the operator's onboarding puts it there); retried."""

    reason = "CredentialsMissing"


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def backend_name(owner_uid: str) -> str:
    return "kc-" + owner_uid.replace("-", "")[:16]


class CapiClusters:
    """The :class:`~..base.ResourceService` of Clusters on a CAPI management cluster."""

    def __init__(self, management: Management) -> None:
        self.management = management
        self.settings: CapiConfig = management.settings

    # -- reading ---------------------------------------------------------------------------
    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        kube = await self.management.kube()
        namespace = self.management.namespace(scope)
        # by its own name first: one GET per pass, where a label-selected LIST costs the
        # management cluster a scan of the namespace (every tenant cluster) each time
        named = await kube.get(mapping.CAPI, mapping.CLUSTERS, namespace,
                               backend_name(owner_uid))
        if named is not None and _labels(named).get(mapping.OWNER_LABEL) == owner_uid:
            return await self._view(kube, scope, named)
        try:
            found = await kube.items(mapping.CAPI, mapping.CLUSTERS, namespace,
                                     f"{mapping.OWNER_LABEL}={owner_uid}")
        except NotFound:
            return None
        if not found:
            return None
        # one per owner; should a copy carry the label too, the provider's own name wins
        mine = [o for o in found if o["metadata"]["name"] == backend_name(owner_uid)]
        return await self._view(kube, scope, (mine or found)[0])

    async def _view(self, kube: KubeClient, scope: Scope,
                    obj: Mapping[str, Any]) -> BackendResource:
        name = str(obj["metadata"]["name"])
        try:
            mds: list[dict[str, Any]] | None = await kube.items(
                *MACHINE_DEPLOYMENTS, str(obj["metadata"]["namespace"]),
                f"{CLUSTER_NAME_LABEL}={name}")
        except NotFound:
            mds = None  # the management cluster does not serve them (see status.py)
        return status.view(obj, mds, self._desired(scope, obj))

    def _desired(self, scope: Scope, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The spec the Cluster was written from, or {} when it drifted from it (or was
        not written by this provider): the controller then calls update."""
        record = _record(obj)
        if record is None:
            return {}
        target = self._target(scope, obj["metadata"]["name"], record["owner"],
                              record["class"], record["version"])
        try:
            wanted = mapping.render(record["spec"], target, self.settings)
        except (KeyError, TypeError, ValueError, AttributeError):
            return {}  # an annotation edited by hand: drift like any other
        return dict(record["spec"]) if mapping.contains(obj, wanted) else {}

    def _target(self, scope: Scope, name: str, owner_uid: str, cls: str,
                version: str) -> mapping.Target:
        return mapping.Target(name=name, namespace=self.management.namespace(scope),
                              owner_uid=owner_uid, class_name=cls,
                              class_namespace=self.settings.class_namespace, version=version,
                              source_namespace=scope.namespace)

    # -- writing ---------------------------------------------------------------------------
    async def create(self, scope: Scope, owner_uid: str,
                     desired: Mapping[str, Any]) -> BackendResource:
        self._refuse(desired)
        kube = await self.management.kube()
        namespace = await self.management.ensure_namespace(kube, scope)
        await self._check_credentials(kube, namespace)
        name = backend_name(owner_uid)
        current = await kube.get(mapping.CAPI, mapping.CLUSTERS, namespace, name)
        if current is not None and owner_uid not in (_owner(current),
                                                     (_record(current) or {}).get("owner")):
            raise Conflict(f"the Cluster {namespace}/{name} in the management cluster "
                           "belongs to another object")
        cls, version = await self._resolve(kube, desired, None)
        return await self._write(kube, scope, owner_uid, desired, cls, version)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        self._refuse(desired)
        kube = await self.management.kube()
        namespace = await self.management.ensure_namespace(kube, scope)
        current = await kube.get(mapping.CAPI, mapping.CLUSTERS, namespace, resource.id)
        if current is None or _owner(current) != resource.owner_uid:
            return await self.create(scope, resource.owner_uid, desired)
        cls, version = await self._resolve(kube, desired, _record(current))
        return await self._write(kube, scope, resource.owner_uid, desired, cls, version)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        """Delete that incarnation only (UID precondition); CAPI then tears the cluster
        down and ``find`` reports DELETING until the object is gone."""
        kube = await self.management.kube()
        namespace = self.management.namespace(scope)
        current = await kube.get(mapping.CAPI, mapping.CLUSTERS, namespace, resource.id)
        if current is None or _owner(current) != resource.owner_uid:
            return
        try:
            await kube.delete(mapping.CAPI, mapping.CLUSTERS, namespace, resource.id,
                              uid=str(current["metadata"]["uid"]))
        except Conflict:
            pass  # replaced meanwhile: not ours to delete

    def _refuse(self, desired: Mapping[str, Any]) -> None:
        refused = mapping.refusals(desired, self.settings)
        if refused:
            raise InvalidRequest("Cluster API cannot build " + "; ".join(refused))

    async def _check_credentials(self, kube: KubeClient, namespace: str) -> None:
        secret = self.settings.identity_secret
        if secret and await kube.get("v1", "secrets", namespace, secret) is None:
            raise CredentialsMissing(
                f"the tenant's OpenStack credentials are not in the management cluster yet: "
                f"Secret {namespace}/{secret} with a clouds.yaml (cloud "
                f"{self.settings.cloud_name!r}), which the operator provides")

    async def _resolve(self, kube: KubeClient, desired: Mapping[str, Any],
                       record: Mapping[str, Any] | None) -> tuple[str, str]:
        """The class and patch version: the recorded ones while the spec's version and
        class are unchanged (a newer class never rebases a cluster by itself), else what
        the offer resolves them to."""
        if record is not None and all(
                record["spec"].get(key) == desired.get(key)
                for key in ("kubernetesVersion", "clusterClass")):
            return str(record["class"]), str(record["version"])
        classes = await self.classes(kube)
        return offer.resolve(classes, str(desired["kubernetesVersion"]),
                             str(desired.get("clusterClass") or ""))

    async def classes(self, kube: KubeClient) -> list[offer.StackClass]:
        namespace = self.settings.class_namespace
        try:
            releases: list[dict[str, Any]] | None = await kube.items(*offer.RELEASES,
                                                                     namespace)
        except NotFound:
            releases = None
        return offer.stack_classes(releases, await kube.items(*offer.CLASSES, namespace),
                                   self.settings.stack)

    async def _write(self, kube: KubeClient, scope: Scope, owner_uid: str,
                     desired: Mapping[str, Any], cls: str, version: str) -> BackendResource:
        target = self._target(scope, backend_name(owner_uid), owner_uid, cls, version)
        body = mapping.render(desired, target, self.settings)
        await self._check_variables(kube, cls, body["spec"]["topology"])
        record = {"spec": dict(desired), "class": cls, "version": version, "owner": owner_uid}
        body["metadata"]["annotations"] = {mapping.DESIRED_ANNOTATION: json.dumps(
            record, sort_keys=True, separators=(",", ":"))}
        try:
            applied = await kube.apply(mapping.CAPI, mapping.CLUSTERS, target.namespace, body,
                                       field_manager=FIELD_MANAGER)
        except NotFound as exc:
            raise InvalidRequest(f"the management cluster does not serve {mapping.CAPI} "
                                 f"Clusters (Cluster API v1.11 or newer is needed): {exc}"
                                 ) from None
        return await self._view(kube, scope, applied)

    async def _check_variables(self, kube: KubeClient, cls: str,
                               topology: Mapping[str, Any]) -> None:
        found = await kube.get(*offer.CLASSES, self.settings.class_namespace, cls)
        if found is None:
            raise InvalidRequest(f"the ClusterClass {self.settings.class_namespace}/{cls} "
                                 "is not in the management cluster")
        problems = variables.problems(topology, variables.definitions(found))
        missing = variables.missing_worker_class(found, self.settings.worker_class)
        if missing and (topology.get("workers") or {}).get("machineDeployments"):
            problems.append(missing)
        if problems:
            raise InvalidRequest(f"the ClusterClass {cls} refuses the variables: "
                                 + "; ".join(problems))


def _owner(obj: Mapping[str, Any]) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(mapping.OWNER_LABEL, ""))


def _record(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The provider's annotation: the spec, class, version and owner it wrote."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(
        mapping.DESIRED_ANNOTATION)
    try:
        record = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("spec"), dict) or \
            not all(isinstance(record.get(key), str) for key in ("class", "version", "owner")):
        return None
    return record
