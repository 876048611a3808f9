"""Clusters as Gardener Shoots in the tenant's project namespace.

A Shoot is found by the label carrying the Cluster's UID (:data:`.mapping.OWNER_LABEL`),
never by name, so a retry or a restart finds the Shoot it already created. It is written
only with server-side apply as :data:`FIELD_MANAGER`, also when it is created: a field
manager owns only what it applied itself, so a field created by a POST would stay when a
later apply leaves it out (a removed OIDC config, high availability turned off). Before
creating, the name is checked: a name held by another cluster's Shoot moves to the next
name derived from the UID, so an apply never takes over someone else's Shoot. The apply
with ``force`` also takes back fields changed by hand (drift, :func:`.mapping.drift`).
A Shoot deleted by hand is simply not found, and created again.

The project namespace (``projectPrefix`` + tenant) and its Project are the operator's:
the provider never creates Projects (that needs rights over the whole Garden and decides
members, quotas and billing), and reports :class:`ProjectMissing` until it exists.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from ...config import GardenerConfig
from ...kinds.kaas import ClusterSpec, parse_version
from ..base import BackendResource, Conflict, InvalidRequest, NotFound, ProviderError, Scope
from ..kaas import AdminRequest, ClusterAccess
from ..kube import KubeClient
from . import access as access_
from .garden import Garden
from .mapping import (
    API,
    CONFIRM_DELETION,
    FIELD_MANAGER,
    OPERATION,
    OWNER_LABEL,
    Refused,
    Target,
    drift,
    failure_tolerance,
    live_version,
    observe,
    oidc_config_map,
    oidc_config_map_name,
    project_name,
    project_namespace,
    refusals,
    resolve_version,
    shoot,
    shoot_name,
    written_spec,
)

log = logging.getLogger("central_api.providers.gardener")
NAME_ATTEMPTS = 3


class ProjectMissing(ProviderError):
    """The tenant's Gardener project namespace does not exist (yet): retried, the operator
    may create it."""

    reason = "ProjectMissing"


class ShootService:
    """The KaaS cluster service (a :class:`~..base.ResourceService`) over Shoots."""

    def __init__(self, garden: Garden) -> None:
        self.garden = garden

    @property
    def settings(self) -> GardenerConfig:
        return self.garden.settings

    # -- ResourceService -------------------------------------------------------------------
    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        if not scope.tenant:
            return None  # nothing can have been created for it
        namespace = self._namespace(scope)
        kube = await self.garden.client()
        # by its first derived name: one GET per pass instead of a label-selected LIST,
        # which scans the project's Shoots; the LIST finds renamed or duplicated ones
        with _refused():
            first = shoot_name(project_name(namespace), owner_uid)
        named = await kube.get(API, "shoots", namespace, first)
        meta = (named or {}).get("metadata") or {}
        if named is not None and (meta.get("labels") or {}).get(OWNER_LABEL) == owner_uid \
                and not meta.get("deletionTimestamp"):
            return view(named, owner_uid)
        found = await kube.items(API, "shoots", namespace, f"{OWNER_LABEL}={owner_uid}")
        if not found:
            return None
        if len(found) > 1:
            log.warning("%d Shoots in %s carry Cluster UID %s; using the oldest live one",
                        len(found), namespace, owner_uid)
        return view(min(found, key=lambda s: (bool(s["metadata"].get("deletionTimestamp")),
                                              s["metadata"].get("creationTimestamp") or "")),
                    owner_uid)

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        spec = _spec(desired)
        namespace = self._namespace(scope)
        profile = await self.garden.profile()
        with _refused():
            version = resolve_version(spec.kubernetesVersion, profile)
        kube = await self.garden.client()
        await self._oidc(kube, namespace, owner_uid, spec, owner=None)
        for attempt in range(NAME_ATTEMPTS):
            with _refused():
                name = shoot_name(project_name(namespace), owner_uid, attempt)
            body = shoot(self.settings, Target(namespace, name, owner_uid, version), spec,
                         profile)
            try:
                created = await self._put(kube, namespace, body, owner_uid)
            except InvalidRequest:
                await self._drop_unreferenced_oidc(kube, namespace, name, owner_uid)
                raise
            if created is not None:
                await self._oidc(kube, namespace, owner_uid, spec, owner=created)
                return view(created, owner_uid)
        raise Conflict(f"no free Shoot name for cluster {owner_uid} in {namespace}")

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        spec = _spec(desired)
        namespace = self._namespace(scope)
        kube = await self.garden.client()
        live = await kube.get(API, "shoots", namespace, resource.id)
        if live is None:  # deleted between find and now: build it again
            return await self.create(scope, resource.owner_uid, desired)
        profile = await self.garden.profile()
        with _refused():
            version = resolve_version(spec.kubernetesVersion, profile, live_version(live))
        _no_downgrade(version, live_version(live))
        target = Target(namespace, resource.id, resource.owner_uid, version,
                        running=str(observe(live).observed["kubernetesVersion"]),
                        failure_tolerance=failure_tolerance(live))
        await self._oidc(kube, namespace, resource.owner_uid, spec, owner=live)
        applied = await kube.apply(API, "shoots", namespace,
                                   shoot(self.settings, target, spec, profile), FIELD_MANAGER)
        await self._drop_oidc(kube, namespace, resource.owner_uid, spec)
        return view(applied, resource.owner_uid)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        """Confirm, then delete (Gardener refuses a DELETE without the confirmation)."""
        namespace = self._namespace(scope)
        kube = await self.garden.client()
        try:
            await kube.merge_patch(API, "shoots", namespace, resource.id, {
                "metadata": {"annotations": {CONFIRM_DELETION: "true"}}})
        except NotFound:
            return
        await kube.delete(API, "shoots", namespace, resource.id,
                          uid=str(resource.observed.get("shootUID") or ""))

    async def access(self, scope: Scope, backend: BackendResource,
                     admin: AdminRequest | None) -> ClusterAccess:
        kube = await self.garden.client()
        return await access_.access(kube, self._namespace(scope), backend.id, admin)

    # -- helpers ---------------------------------------------------------------------------
    def _namespace(self, scope: Scope) -> str:
        if not scope.tenant:
            raise InvalidRequest(f"namespace {scope.namespace} belongs to no tenant: Gardener "
                                 "clusters live in a tenant's project")
        return project_namespace(self.settings.project_prefix, scope.tenant)

    async def _put(self, kube: KubeClient, namespace: str, body: dict[str, Any],
                   owner_uid: str) -> dict[str, Any] | None:
        """The Shoot created by server-side apply (so that the provider's field manager
        owns every field it writes, and a field it drops later goes); None if another
        cluster's Shoot holds the name. A Shoot of this name without any owner label is
        this cluster's whose label was removed by hand (the name derives from its UID): it
        is adopted, not duplicated."""
        name = body["metadata"]["name"]
        existing = await kube.get(API, "shoots", namespace, name)
        labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
        if existing is not None and labels.get(OWNER_LABEL, owner_uid) != owner_uid:
            return None
        try:
            return await kube.apply(API, "shoots", namespace, body, FIELD_MANAGER)
        except NotFound:
            raise _missing(namespace) from None

    async def _oidc(self, kube: KubeClient, namespace: str, owner_uid: str, spec: ClusterSpec,
                    owner: Mapping[str, Any] | None) -> None:
        """The structured authentication ConfigMap, applied before the Shoot names it (and
        owned by the Shoot once that exists). Gardener reads a changed ConfigMap only on
        its next reconcile, so a change asks for one (``gardener.cloud/operation``)."""
        wanted = oidc_config_map(namespace, owner_uid, spec, owner)
        if wanted is None:
            return
        try:
            current = await kube.get("v1", "configmaps", namespace,
                                     oidc_config_map_name(owner_uid))
            await kube.apply("v1", "configmaps", namespace, wanted, FIELD_MANAGER)
        except NotFound:
            raise _missing(namespace) from None
        if owner is not None and current is not None and \
                current.get("data") != wanted["data"]:
            await kube.merge_patch(API, "shoots", namespace, owner["metadata"]["name"], {
                "metadata": {"annotations": {OPERATION: "reconcile"}}})

    async def _drop_unreferenced_oidc(self, kube: KubeClient, namespace: str, name: str,
                                      owner_uid: str) -> None:
        """The Garden refused the new Shoot: its OIDC ConfigMap, written first and owned by
        no Shoot yet, goes, or it would outlive the Cluster (the Cluster's deletion finds
        no Shoot to delete, and only a Shoot's deletion takes the ConfigMap along)."""
        with contextlib.suppress(ProviderError):  # the refusal is what the user needs
            if await kube.get(API, "shoots", namespace, name) is None:
                await kube.delete("v1", "configmaps", namespace,
                                  oidc_config_map_name(owner_uid))

    async def _drop_oidc(self, kube: KubeClient, namespace: str, owner_uid: str,
                         spec: ClusterSpec) -> None:
        """Without OIDC, the ConfigMap goes once the Shoot no longer names it (Gardener
        protects referenced ConfigMaps)."""
        if spec.oidc is None:
            await kube.delete("v1", "configmaps", namespace, oidc_config_map_name(owner_uid))


def view(live: Mapping[str, Any], owner_uid: str) -> BackendResource:
    """The Shoot as the controller sees it; a Shoot changed by hand reports no desired
    state, so the controller applies the Cluster's again (drift repair)."""
    seen = observe(live)
    desired = written_spec(live)
    changed = drift(live) if seen.state != "DELETING" else []
    if changed:
        log.info("Shoot %s/%s drifted (%s); applying the Cluster's spec again",
                 live["metadata"].get("namespace"), live["metadata"]["name"],
                 ", ".join(changed[:5]))
        desired = {}
    return BackendResource(id=str(live["metadata"]["name"]), owner_uid=owner_uid,
                           state=seen.state, message=seen.message, desired=desired,
                           observed={**seen.observed,
                                     "shootUID": str(live["metadata"].get("uid") or "")})


def _spec(desired: Mapping[str, Any]) -> ClusterSpec:
    try:
        spec = ClusterSpec.model_validate(dict(desired))
    except ValidationError as exc:
        raise InvalidRequest(f"not a Cluster spec: {exc.errors()[0]['msg']}") from None
    refused = refusals(spec)
    if refused:
        raise InvalidRequest("; ".join(refused))
    return spec


@contextlib.contextmanager
def _refused() -> Iterator[None]:
    """What the mapping refuses, as the provider error the controller reports."""
    try:
        yield
    except Refused as exc:
        raise InvalidRequest(str(exc)) from None


def _no_downgrade(version: str, live: str) -> None:
    if live and parse_version(version)[:2] < parse_version(live)[:2]:
        raise InvalidRequest(f"spec.kubernetesVersion: the Shoot runs {live}; Gardener does "
                             f"not downgrade to {version}")


def _missing(namespace: str) -> ProjectMissing:
    return ProjectMissing(f"the Gardener project namespace {namespace} does not exist: the "
                          "operator creates the tenant's Project (the provider does not)")
