"""A tenant's Clusters and their nodes against its ``clusters``, ``cores`` and ``ramMiB`` quotas.

Why at admission: a cluster over the tenant's compute quota would otherwise be accepted and
then fail in the backend, node by node, minutes later (CAPI machines stuck in Pending, a
Gardener worker pool that never scales). Refusing the write, with the field that asks for too
much, tells the user at once and stores nothing.

What counts, per Cluster:

- the cluster itself against ``clusters``;
- every node pool at its worst case: ``autoscaling.max`` nodes (the autoscaler may scale up to
  it at any time without asking the API), else ``replicas``, times the cores and RAM its SCS
  flavor name states (:mod:`~central_api.kinds.flavors`);
- the control plane's ``replicas`` nodes of the cluster stacks' default control-plane flavor
  (:data:`CONTROL_PLANE_FLAVOR`, scs2 ``controlPlaneFlavor``), unless ``hosted``: a hosted
  control plane runs as pods in the provider's cluster, outside the tenant's project.
  (Gardener runs every control plane in its seeds; counting it on that backend is
  conservative by at most 3 × 2 vCPUs and 3 × 4 GiB per cluster.)

Cluster nodes are servers in the tenant's project, so the same ``cores``/``ramMiB`` quota
(the project's unified limits, which the cloud enforces for servers) also holds the tenant's
``Server`` objects: their flavor (the chosen one in ``status.flavor`` once known), else
their ``resources`` request. A server flavor that is no SCS name counts as nothing here (the
cloud still enforces its quota for servers); a node pool's flavor that is no SCS name is
refused while the tenant has a cores or RAM quota, since it could not be counted.

Bounded work: usage is kept per namespace from the shared informers of Clusters, Servers
and Namespaces (one flavor-name parse per changed object); admission sums the caller's
tenant's namespaces and touches nothing else.

Races: the informers trail writes by the watch delay, so every admitted growth is also
*reserved* here until the informer shows the write (or another one) for that object, at most
:data:`RESERVATION_SECONDS`. Two creates racing through one replica therefore cannot both
pass beyond the quota (on SQLite admission and write run on the event loop one after the
other; on PostgreSQL the reservation is taken under the same lock as the check). Two
*replicas* see each other's writes only through the watch: creates racing through different
replicas within that delay (milliseconds) can overshoot by what they ask for — the same
bound the storage quota accepts. Kubernetes closes that window by compare-and-swap on the
ResourceQuota's ``status.used``; a failed write here only holds its reservation until it
expires. Quota refusals are 403 Forbidden "exceeded quota", as kube's ResourceQuota
answers: the object is valid, the tenant just may not have more of it now.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from ..kinds.flavors import FORMAT, flavor_size
from ..kinds.kind import ResourceType
from ..machinery import errors
from ..machinery.errors import ApiError, Cause
from ..registry.informers import Handlers, Informer, Informers
from ..registry.resources import WriteOptions
from ..store.base import Key, KeyNotFound, Store
from .tenants import TENANTS, tenant_label

CLUSTERS = "kaas.scs.community/clusters"
SERVERS = "iaas.scs.community/servers"
NAMESPACES = "core/namespaces"
CONTROL_PLANE_FLAVOR = "SCS-2V-4"
"""Size of one control-plane node (scs2 ``controlPlaneFlavor`` default): the Cluster spec
does not choose it, the cluster stack does."""
RESERVATION_SECONDS = 10.0
"""How long an admitted write counts before the informer shows it (it normally does within
milliseconds; a write that failed after admission stops counting after this)."""
QUOTAS = ("clusters", "cores", "ramMiB")

Obj = dict[str, Any]
Ident = tuple[str, str, str]
"""(storage resource, namespace, name)."""


@dataclass(frozen=True)
class Demand:
    """What an object takes from the tenant's quotas."""

    clusters: int = 0
    cores: int = 0
    ramMiB: int = 0

    def __add__(self, other: Demand) -> Demand:
        return Demand(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __sub__(self, other: Demand) -> Demand:
        return Demand(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def of(self, quota: str) -> int:
        return int(getattr(self, quota))


NOTHING = Demand()


@dataclass(frozen=True)
class Part:
    """One line of a cluster's demand and the field that asks for it (for the refusal)."""

    field: str
    what: str
    demand: Demand


def _nodes(count: int, flavor: str) -> Demand:
    size = flavor_size(flavor)
    return Demand(cores=count * size.cores, ramMiB=count * size.ram_mib) if size else NOTHING


def _pool_count(pool: Obj) -> tuple[int, str]:
    """Nodes a pool may have at most, and the field that says so."""
    scaling = pool.get("autoscaling")
    if isinstance(scaling, dict):
        return int(scaling.get("max") or 0), "autoscaling.max"
    return int(pool.get("replicas") or 0), "replicas"


def cluster_parts(spec: Obj, old_spec: Obj | None = None) -> list[Part]:
    """The cluster, its control-plane nodes (unless hosted) and each pool at its worst
    case. A pool that kept its name and count but changed flavor is blamed on the flavor."""
    parts = [Part("metadata.name", "the cluster", Demand(clusters=1))]
    plane = spec.get("controlPlane") or {}
    if not plane.get("hosted"):
        count = int(plane.get("replicas") or 1)
        parts.append(Part("spec.controlPlane.replicas",
                          f"{count} control-plane nodes × {CONTROL_PLANE_FLAVOR}",
                          _nodes(count, CONTROL_PLANE_FLAVOR)))
    before = {p.get("name"): p for p in (old_spec or {}).get("nodePools") or []}
    for i, pool in enumerate(spec.get("nodePools") or []):
        count, at = _pool_count(pool)
        flavor = str(pool.get("flavor") or "")
        was = before.get(pool.get("name"))
        if was is not None and _pool_count(was)[0] == count and was.get("flavor") != flavor:
            at = "flavor"
        parts.append(Part(f"spec.nodePools[{i}].{at}", f"{count} nodes × {flavor}",
                          _nodes(count, flavor)))
    return parts


def cluster_demand(obj: Obj | None) -> Demand:
    if not obj:
        return NOTHING
    total = NOTHING
    for part in cluster_parts(obj.get("spec") or {}):
        total += part.demand
    return total


def server_demand(obj: Obj | None) -> Demand:
    """A server's chosen flavor, else the named one, else its resources request."""
    if not obj:
        return NOTHING
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    flavor = str(status.get("flavor") or spec.get("flavor") or "")
    if flavor:
        return _nodes(1, flavor)
    wanted = spec.get("resources") or {}
    return Demand(cores=int(wanted.get("cpu") or 0), ramMiB=int(wanted.get("memoryMiB") or 0))


MEASURES: dict[str, Callable[[Obj | None], Demand]] = {CLUSTERS: cluster_demand,
                                                       SERVERS: server_demand}


@dataclass
class Reservation:
    base: int
    """The resourceVersion the write replaces (0: a create): the reservation counts while
    the informer holds no later version of the object (it may still trail the base)."""
    demand: Demand
    expires: float


def _ident(resource: str, obj: Obj) -> Ident:
    meta = obj["metadata"]
    return resource, meta.get("namespace", ""), meta["name"]


def _version(obj: Obj) -> int:
    """The object's resourceVersion (the store's revisions are integers)."""
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


class ComputeUsage:
    """Clusters, cores and RAM per namespace, and each namespace's tenant, from informers.

    Informer handlers run on the event loop, admission in worker threads: everything here
    is behind one lock, and each handler does one flavor-name parse at most."""

    def __init__(self, informers: Informers, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._counted: dict[Ident, tuple[int, Demand]] = {}
        self._namespaces: dict[str, Demand] = {}
        self._tenant_of: dict[str, str] = {}
        self._known: set[str] = set()
        """Namespaces the informer holds (with or without a tenant)."""
        self._namespaces_of: dict[str, set[str]] = {}
        self._reserved: dict[str, dict[Ident, Reservation]] = {}
        """Live reservations by namespace: admission reads only its tenant's."""
        self._expiries: list[tuple[float, Ident]] = []
        """A heap of (expiry, object) of the reservations made, so that the expired ones
        go without visiting the others (an entry whose reservation was replaced or
        dropped meanwhile is skipped when it comes up)."""
        informers.informer(NAMESPACES).add_handlers(Handlers(
            on_add=lambda ns: self._assign(ns["metadata"]["name"], tenant_label(ns)),
            on_update=lambda _, ns: self._assign(ns["metadata"]["name"], tenant_label(ns)),
            on_delete=lambda ns: self._assign(ns["metadata"]["name"], None, gone=True)))
        for resource in MEASURES:
            if informers.catalog.by_storage_resource(resource) is not None:
                informers.informer(resource).add_handlers(self._follow(resource))

    def _follow(self, resource: str) -> Handlers:
        return Handlers(on_add=lambda obj: self.count(resource, obj),
                        on_update=lambda _, obj: self.count(resource, obj),
                        on_delete=lambda obj: self.forget(resource, obj))

    # -- the index ---------------------------------------------------------------------
    def _assign(self, namespace: str, tenant: str | None, gone: bool = False) -> None:
        with self._lock:
            if gone:
                self._known.discard(namespace)
            else:
                self._known.add(namespace)
            previous = self._tenant_of.pop(namespace, None)
            if previous is not None:
                self._namespaces_of[previous].discard(namespace)
                if not self._namespaces_of[previous]:
                    del self._namespaces_of[previous]
            if tenant:
                self._tenant_of[namespace] = tenant
                self._namespaces_of.setdefault(tenant, set()).add(namespace)

    def count(self, resource: str, obj: Obj) -> None:
        """Count ``obj`` as it is now, replacing what was counted for it."""
        ident, demand = _ident(resource, obj), MEASURES[resource](obj)
        version = _version(obj)
        with self._lock:
            self._uncount(ident)
            self._counted[ident] = (version, demand)
            self._namespaces[ident[1]] = self._namespaces.get(ident[1], NOTHING) + demand
            held = self._held(ident)
            if held is not None and version > held.base:  # the informer has caught up
                self._drop(ident)

    def forget(self, resource: str, obj: Obj) -> None:
        with self._lock:
            self._uncount(_ident(resource, obj))
            self._drop(_ident(resource, obj))

    def _held(self, ident: Ident) -> Reservation | None:
        return self._reserved.get(ident[1], {}).get(ident)

    def _drop(self, ident: Ident) -> None:
        held = self._reserved.get(ident[1])
        if held is not None and held.pop(ident, None) is not None and not held:
            del self._reserved[ident[1]]

    def _reserve(self, ident: Ident, held: Reservation) -> None:
        self._reserved.setdefault(ident[1], {})[ident] = held
        heapq.heappush(self._expiries, (held.expires, ident))

    def _sweep(self, now: float) -> None:
        """Drop the reservations that expired (writes that failed after admission)."""
        while self._expiries and self._expiries[0][0] <= now:
            _, ident = heapq.heappop(self._expiries)
            held = self._held(ident)
            if held is not None and held.expires <= now:
                self._drop(ident)

    def _uncount(self, ident: Ident) -> None:
        found = self._counted.pop(ident, None)
        if found is not None:
            left = self._namespaces[ident[1]] - found[1]
            if left == NOTHING:
                del self._namespaces[ident[1]]
            else:
                self._namespaces[ident[1]] = left

    def tenant_of(self, namespace: str) -> tuple[bool, str | None]:
        """Whether the informer holds the namespace, and its tenant."""
        with self._lock:
            return namespace in self._known, self._tenant_of.get(namespace)

    # -- admission -----------------------------------------------------------------------
    def admit(self, tenant: str, ident: Ident, base: int, demand: Demand,
              check: Callable[[Demand, Demand], None], reserve: bool) -> None:
        """Call ``check(others, counted)`` with what the tenant uses besides the object and
        what is counted for the object now; if it passes (and ``reserve``), count
        ``demand`` for the object until the informer shows a write of it. One lock holds
        check and reservation together, so racing admissions see each other."""
        with self._lock:
            now = self.clock()
            self._sweep(now)
            namespaces = self._namespaces_of.get(tenant, set()) | {ident[1]}
            total = NOTHING
            for namespace in namespaces:
                total += self._namespaces.get(namespace, NOTHING)
            total += self._reservations(namespaces, now)
            counted = self._effective(ident, now)
            check(total - counted, counted)
            if reserve:
                self._reserve(ident, Reservation(base, demand, now + RESERVATION_SECONDS))

    def _reservations(self, namespaces: set[str], now: float) -> Demand:
        """What live reservations in the tenant's namespaces add to the informers' count
        (dropping those the informer has caught up with or that expired)."""
        extra = NOTHING
        for namespace in namespaces:
            for ident, held in list(self._reserved.get(namespace, {}).items()):
                if self._live(ident, held, now):
                    extra += held.demand - self._indexed(ident)
                else:
                    self._drop(ident)
        return extra

    def _live(self, ident: Ident, held: Reservation, now: float) -> bool:
        indexed = self._counted.get(ident)
        return now < held.expires and (indexed is None or indexed[0] <= held.base)

    def _indexed(self, ident: Ident) -> Demand:
        found = self._counted.get(ident)
        return found[1] if found else NOTHING

    def _effective(self, ident: Ident, now: float) -> Demand:
        held = self._held(ident)
        if held is not None and self._live(ident, held, now):
            return held.demand
        return self._indexed(ident)


class ClusterQuotaAdmission:
    """Refuses a Cluster write that grows the tenant's usage beyond its quotas.

    Only growth is refused (kube's ResourceQuota does the same): a write that keeps or
    shrinks what the cluster takes always passes, so a tenant over its quota (lowered by the
    operator since) can still scale down, and status and finalizer writes never fail here.
    It applies to every writer, the operator included: the cloud would refuse the nodes of
    an over-quota cluster whoever asked for them."""

    def __init__(self, usage: ComputeUsage, informers: Informers, store: Store) -> None:
        self.usage = usage
        self.tenants = informers.informer(TENANTS)
        self.store = store
        """For a namespace the informer does not show yet (created a moment ago)."""

    def __call__(self, rt: ResourceType, obj: Obj, old: Obj | None,
                 opts: WriteOptions) -> None:
        if rt.storage_resource != CLUSTERS:
            return
        meta = obj["metadata"]
        tenant = tenant_of(self.usage, self.store, meta["namespace"])
        limits = self._limits(tenant) if tenant else {}
        if not tenant or not limits:
            return
        old_spec = (old or {}).get("spec")
        if "cores" in limits or "ramMiB" in limits:
            _check_flavors(rt, obj, old_spec)
        parts = cluster_parts(obj.get("spec") or {}, old_spec)
        demand = sum((p.demand for p in parts), NOTHING)
        before = cluster_demand(old)
        growing = [q for q in QUOTAS if q in limits and demand.of(q) > before.of(q)]
        if not growing:
            return

        def check(others: Demand, counted: Demand) -> None:
            over = [q for q in growing if others.of(q) + demand.of(q) > limits[q]]
            if over:
                raise _exceeded(rt, meta["name"], tenant, over, parts, others, counted,
                                limits)

        base = _version(old) if old else 0
        self.usage.admit(tenant, _ident(CLUSTERS, obj), base, demand, check,
                         reserve=not opts.dry_run)

    def _limits(self, tenant: str) -> dict[str, int]:
        found = stored_tenant(self.tenants, self.store, tenant)
        quotas = ((found or {}).get("spec") or {}).get("quotas") or {}
        return {q: quotas[q] for q in QUOTAS if isinstance(quotas.get(q), int)}


def tenant_of(usage: ComputeUsage, store: Store, namespace: str) -> str | None:
    """The namespace's tenant from the informer, else from the store (a namespace created
    a moment ago, through this replica, that the watch has not delivered yet)."""
    known, found = usage.tenant_of(namespace)
    if known:
        return found
    try:
        return tenant_label(store.get(Key(NAMESPACES, "", namespace)))
    except KeyNotFound:
        return None


def stored_tenant(tenants: Informer, store: Store, name: str) -> Obj | None:
    """The Tenant from the informer, else from the store (created a moment ago)."""
    found = tenants.get("", name)
    if found is not None:
        return found
    try:
        return store.get(Key(TENANTS, "", name))
    except KeyNotFound:
        return None


def _check_flavors(rt: ResourceType, obj: Obj, old_spec: Obj | None) -> None:
    """422 for a new, changed or growing pool whose flavor name states no size: with a cores
    or RAM quota its nodes could not be counted, and letting them pass would bypass it (a
    pool stored before the quota was set keeps its nodes, and may shrink, but not grow)."""
    before = {p.get("name"): p for p in (old_spec or {}).get("nodePools") or []}

    def grows(pool: Obj) -> bool:
        was = before.get(pool.get("name"))
        return was is None or was.get("flavor") != pool.get("flavor") \
            or _pool_count(pool)[0] > _pool_count(was)[0]

    causes = [Cause(f"spec.nodePools[{i}].flavor",
                    f'Invalid value: "{pool.get("flavor")}": not an SCS flavor name ({FORMAT}), '
                    "so its nodes cannot be counted against the tenant's cores and RAM quota")
              for i, pool in enumerate((obj.get("spec") or {}).get("nodePools") or [])
              if flavor_size(str(pool.get("flavor") or "")) is None and grows(pool)]
    if causes:
        raise errors.invalid(rt.kind, obj["metadata"]["name"], causes, rt.group)


def _exceeded(rt: ResourceType, name: str, tenant: str, over: list[str], parts: list[Part],
              others: Demand, counted: Demand, limits: dict[str, int]) -> ApiError:
    """kube's ResourceQuota wording (the tenant as the quota's name; requested is what the
    write adds, used includes the object as counted now), plus each exceeded quota's field:
    the first part of the cluster that no longer fits beside the tenant's other usage."""
    demand = sum((p.demand for p in parts), NOTHING)
    requested, used = demand - counted, others + counted
    causes = []
    for quota in over:
        part = _culprit(parts, quota, others.of(quota), limits[quota])
        causes.append(Cause(part.field, f"Forbidden: exceeded quota {quota} of tenant "
                            f'"{tenant}": with {part.what} the tenant would use '
                            f"{others.of(quota) + demand.of(quota)}, limited: "
                            f"{limits[quota]}", "FieldValueForbidden"))

    def listed(values: Callable[[str], int]) -> str:
        return ",".join(f"{q}={values(q)}" for q in over)

    at = ", ".join(dict.fromkeys(c.field for c in causes))
    return ApiError(403, "Forbidden",
                    f'{rt.qualified} "{name}" is forbidden: exceeded quota of tenant '
                    f'"{tenant}", requested: {listed(requested.of)}, used: {listed(used.of)}, '
                    f"limited: {listed(limits.__getitem__)} (at {at})",
                    causes=causes, group=rt.group, kind=rt.plural, name=name)


def _culprit(parts: list[Part], quota: str, others: int, limit: int) -> Part:
    """The first part at which the running total passes the limit."""
    total = others
    for part in parts:
        total += part.demand.of(quota)
        if part.demand.of(quota) and total > limit:
            return part
    return parts[-1]
