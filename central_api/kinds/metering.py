"""``metering.scs.community/v1alpha1``: what each tenant used, derived from the store's log.

Two kinds, neither of them stored in the object store:

* ``UsageRecord`` (namespaced, get/list only): one usage row of the ledger — one metered
  part of one object (a Server, a Volume, a Cluster's node pool ...), in one metered state,
  within one UTC hour — plus, for objects still running, the open part since the last row.
  The server answers them from the ledger (``server/usage.py``); nobody writes them through
  the API.
* ``UsageSummary`` (cluster-scoped, create only, like SelfSubjectAccessReview): the sums of
  a tenant's usage over a period, by kind, flavor or volume type, and unit.

Also here, because both the accountant (controllers) and the API (server) need them and
neither may import the other: the metered parts (:class:`Meter`), the hour split and the
quantities each part yields in which unit (docs/metering.md states the same rules):

* a row's ``seconds`` is ``end - start`` of two revision stamps, to the microsecond;
* an interval is split at every full UTC hour (10:20–12:10 → 10:20–11:00, 11:00–12:00,
  12:00–12:10): a partial hour counts its exact seconds, nothing is rounded up;
* quantities are ``factor × seconds / 3600`` (instance-hours, vCPU-hours = vCPUs × hours,
  RAM GiB-hours, volume GiB-hours, node-hours ...), summed over exact seconds and rounded
  to six decimals only when shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from .common import Model, Resource, Spec, Status
from .flavors import flavor_size
from .kind import Column, ResourceType, declare

GROUP = "metering.scs.community"
API_VERSION = f"{GROUP}/v1alpha1"
KIND_LABEL = f"{GROUP}/kind"
TENANT_LABEL = f"{GROUP}/tenant"
OBJECT_LABEL = f"{GROUP}/object"
HOUR_US = 3_600_000_000
"""One hour in microseconds: the fold works on integer microseconds, so hour boundaries and
sums are exact; stamps become floats (seconds) only at the edges."""
CONTROL_PLANE_FLAVOR = "SCS-2V-4"
"""What a non-hosted control-plane replica runs as (the cluster stacks' default, also what
admission counts against the tenant's quota, kinds/kaas.py)."""
DECIMALS = 6


# -- metered parts and their quantities -----------------------------------------------------
@dataclass(frozen=True)
class Meter:
    """One metered part of an object in one state: a Server's flavor, a Volume's type and
    size, a Cluster pool's flavor and node count. An object's metered state is a tuple of
    these (a Cluster has one per pool and one for its control plane)."""

    part: str = ""
    """"" for the object itself; ``pool/<name>`` or ``control-plane`` for a Cluster."""
    flavor: str = ""
    volume_type: str = ""
    size_gib: int = 0
    count: int = 1
    """Nodes of a pool, replicas of a control plane; 1 otherwise."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Meter:
        return cls(part=str(data.get("part", "")), flavor=str(data.get("flavor", "")),
                   volume_type=str(data.get("volume_type", "")),
                   size_gib=int(data.get("size_gib", 0)), count=int(data.get("count", 1)))


@dataclass(frozen=True)
class Usage:
    """One closed usage row: one meter of one object over ``[start, end)`` in one hour."""

    tenant: str
    namespace: str
    kind: str
    name: str
    uid: str
    meter: Meter
    start_us: int
    end_us: int

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / 1_000_000


@dataclass(frozen=True)
class Quantity:
    unit: str
    per_hour: float
    """How much of ``unit`` one hour of the part is (vCPUs for vCPU-hours, GiB ...)."""
    flavor: str = ""
    """The flavor or volume type the quantity is by ("" where none applies)."""
    basis: str = "seconds"
    """What ``per_hour`` multiplies besides the time: ``size`` (it is the GiB) or ``count``
    (it is the nodes): a summary over many states weighs each state's seconds by it."""


def quantities(kind: str, meter: Meter) -> list[Quantity]:
    """The units one metered part is billed in (docs/metering.md, "What is measured")."""
    if kind == "Server":
        return _server(meter)
    if kind == "Volume":
        return [Quantity("volume-GiB-hours", meter.size_gib, meter.volume_type, "size")]
    if kind == "FloatingIP":
        return [Quantity("floatingip-hours", 1)]
    if kind == "LoadBalancer":
        return [Quantity("loadbalancer-hours", 1)]
    if kind == "Cluster" and meter.part == "control-plane":
        return [Quantity("control-plane-hours", 1),
                Quantity("control-plane-node-hours", meter.count, meter.flavor, "count")]
    if kind == "Cluster":
        return [Quantity("node-hours", meter.count, meter.flavor, "count")]
    return []


def _server(meter: Meter) -> list[Quantity]:
    found = [Quantity("instance-hours", 1, meter.flavor)]
    size = flavor_size(meter.flavor)
    if size is not None:  # a non-SCS flavor name states no size: instance-hours only
        found += [Quantity("vCPU-hours", size.cores, meter.flavor),
                  Quantity("RAM-GiB-hours", size.ram_mib / 1024, meter.flavor)]
    return found


def hours(seconds: float) -> float:
    return round(seconds / 3600, DECIMALS)


# -- time ------------------------------------------------------------------------------------
def to_us(stamp: float) -> int:
    """A stamp (seconds since the epoch, microsecond precision) as integer microseconds."""
    return round(stamp * 1_000_000)


def from_us(us: int) -> float:
    return us / 1_000_000


def split_hours(start_us: int, end_us: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut at every full UTC hour in between; empty if ``end <= start``."""
    pieces = []
    while start_us < end_us:
        boundary = (start_us // HOUR_US + 1) * HOUR_US
        piece_end = min(boundary, end_us)
        pieces.append((start_us, piece_end))
        start_us = piece_end
    return pieces


def format_stamp(stamp: float) -> str:
    """RFC 3339 in UTC with microseconds: a stamp shown exactly (``...T10:00:00.000000Z``)."""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(text: str) -> float:
    """An RFC 3339 time (a date alone means its midnight UTC) as a stamp; ValueError if not."""
    value = text.strip()
    if len(value) == 10:
        value += "T00:00:00Z"
    parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# -- UsageRecord -----------------------------------------------------------------------------
class UsageQuantity(Model):
    unit: str = Field(description="e.g. instance-hours, vCPU-hours, volume-GiB-hours.")
    quantity: float = Field(description="Amount in the unit, rounded to 6 decimals.")
    flavor: str = Field("", description="The flavor or volume type it is by, if any.")


class UsageRecordSpec(Spec):
    tenant: str = Field("", description="The tenant of the object's namespace (\"\": the "
                                        "operator's own).")
    kind: str = Field(description="Kind of the metered object, e.g. Server.")
    name: str = Field(description="Name of the metered object.")
    uid: str = Field(description="UID of the metered object.")
    part: str = Field("", description="pool/<name> or control-plane for a Cluster.")
    flavor: str = ""
    volumeType: str = ""
    sizeGiB: int = 0
    count: int = Field(1, description="Nodes of a pool, replicas of a control plane.")
    start: str = Field(description="Period start (RFC 3339, microseconds, UTC).",
                       json_schema_extra={"format": "date-time"})
    end: str = Field(description="Period end; for an open record the time of the read.",
                     json_schema_extra={"format": "date-time"})
    seconds: float = Field(description="end - start, to the microsecond.")
    hours: float = Field(description="seconds / 3600, rounded to 6 decimals.")
    quantities: list[UsageQuantity] = Field(default_factory=list)
    source: str = Field("derived", description="derived: from the objects' lifecycle.")
    open: bool = Field(False, description="Still running: the part since the last closed "
                                          "row, up to the read; not yet exported.")
    seq: int = Field(0, description="Order of the row in the ledger (export order); 0 for "
                                    "an open record.")


class UsageRecord(Resource):
    """Usage of one metered object in one state within one UTC hour (read-only)."""

    spec: UsageRecordSpec


# -- UsageSummary ----------------------------------------------------------------------------
class UsageSummarySpec(Spec):
    tenant: str = Field(description="The tenant whose usage is summed.")
    from_: str = Field(alias="from", description="Period start (RFC 3339 or a date).")
    to: str = Field(description="Period end (exclusive; RFC 3339 or a date).")


class SummaryItem(Model):
    kind: str
    flavor: str = Field("", description="Flavor or volume type.")
    unit: str
    quantity: float


class CeilometerItem(Model):
    counterName: str
    unit: str
    volume: float
    samples: int


class UsageSummaryStatus(Status):
    items: list[SummaryItem] = Field(default_factory=list)
    derived: int = Field(0, description="Usage rows summed (derived from the objects).")
    ceilometer: list[CeilometerItem] = Field(
        default_factory=list, description="Ceilometer samples of the tenant in the period, "
                                          "summed by counter.")


class UsageSummary(Resource):
    """A tenant's usage over a period by kind, flavor or type, and unit (create only)."""

    spec: UsageSummarySpec
    status: UsageSummaryStatus = Field(default_factory=UsageSummaryStatus)


def _hours_cell(obj: dict[str, Any]) -> str:
    return f"{float((obj.get('spec') or {}).get('hours') or 0):.6f}"


USAGE_RECORD: ResourceType = declare(
    API_VERSION, "UsageRecord", UsageRecord, status_subresource=False,
    short_names=["usage"], categories=["scs", "metering"], columns=[
        Column("Kind", ".spec.kind"),
        Column("Object", ".spec.name"),
        Column("Flavor", ".spec.flavor"),
        Column("Start", ".spec.start"),
        Column("End", ".spec.end"),
        Column("Hours", ".spec.hours", "number", compute=_hours_cell),
        Column("Part", ".spec.part", priority=1),
        Column("Type", ".spec.volumeType", priority=1),
        Column("Size", ".spec.sizeGiB", "integer", priority=1),
        Column("Open", ".spec.open", "boolean", priority=1),
    ])
USAGE_RECORD.verbs = ("get", "list")
USAGE_SUMMARY: ResourceType = declare(
    API_VERSION, "UsageSummary", UsageSummary, plural="usagesummaries", namespaced=False,
    status_subresource=False,
    categories=["metering"])
USAGE_SUMMARY.verbs = ("create",)

METERING_KINDS = [USAGE_RECORD, USAGE_SUMMARY]
