"""The metering API: ``UsageRecord`` read from the ledger, the ``UsageSummary`` review.

Neither kind lives in the object store. The accountant (``controllers/metering.py``) writes
usage rows straight into the ledger, in the store's own database; this module answers
kubectl and the SDK from there:

* ``usagerecords`` (namespaced): get and list, nothing else — every write is 405, so usage
  can never be written through the API. Authorization is RBAC and the tenant boundary as
  for any namespaced kind (tenant roles read the metering group in their namespaces; the
  cloud admin lists across namespaces), decided before this module is reached. A list is
  the closed rows in ledger order (``seq``), then the *open* records: the part of every
  running object since its last row, up to now. Label selectors match the records' labels
  ``metering.scs.community/kind``, ``/tenant`` and ``/object``; ``limit`` and ``continue``
  page through both. Record names: ``<uid>-<seq>``, ``<uid>-open-<part index>``.
* ``usagesummaries`` (cluster-scoped, create only): mounted ahead of the API's own
  authorization (:data:`SUMMARY_PATH`), because whether a caller may see a tenant's sums
  depends on the tenant named in the body: the cloud admin (list usagerecords at the
  cluster scope) or who may list usagerecords in every namespace of that tenant. Nothing is
  stored; the answer is the object with its ``status``.

The ledger is reached through :class:`UsageSource`, which the assembly provides; calls
block on PostgreSQL, so they run off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from ..auth.authz import Attributes
from ..auth.tenants import tenant_label
from ..kinds.metering import (
    API_VERSION,
    KIND_LABEL,
    OBJECT_LABEL,
    TENANT_LABEL,
    USAGE_RECORD,
    USAGE_SUMMARY,
    Meter,
    UsageSummarySpec,
    format_stamp,
    hours,
    parse_stamp,
    quantities,
)
from ..machinery import errors
from ..machinery.bodies import parse_object
from ..machinery.errors import ApiError, Cause
from ..machinery.selectors import LabelSelector, parse_label_selector
from ..store.base import Store
from ..store.offload import off_loop
from .handlers import (
    include_object,
    int_parameter,
    json_response,
    media_type,
    read_body,
    wants_table,
)
from .routing import Target
from .tables import table

if TYPE_CHECKING:
    from .app import CentralApi

SUMMARY_PATH = f"/apis/{API_VERSION}/{USAGE_SUMMARY.plural}"
BATCH = 500
MAX_PAGE = 10_000
"""A list without ``limit`` still reads the ledger in pages of :data:`BATCH`; this caps
one answer (kubectl pages by 500)."""


class UsageSource(Protocol):
    """The ledger as the API reads it (blocking calls). Rows are dicts with ``seq``,
    ``tenant``, ``namespace``, ``kind``, ``name``, ``uid``, ``meter`` (a :class:`Meter`),
    ``start``, ``end`` (stamps) and ``seconds``."""

    def rows(self, namespace: str | None, after_seq: int, limit: int) -> list[dict[str, Any]]:
        """Closed rows after ``after_seq`` in ``seq`` order (``namespace`` None: all)."""

    def row(self, seq: int) -> dict[str, Any] | None: ...

    def open_rows(self, namespace: str | None) -> list[dict[str, Any]]:
        """The open part of every running object up to now (``seq`` 0), in a stable
        order, with ``index`` (the meter's position in its object's state)."""

    def summary(self, tenant: str, start: float, end: float) -> dict[str, Any]:
        """``{"groups": [{"kind", "part", "flavor", "volume_type", "seconds", "gib_seconds",
        "count_seconds"}], "rows": n, "ceilometer": [{"counterName", "unit", "volume",
        "samples"}]}``: seconds inside [start, end), open parts included."""


# -- records -----------------------------------------------------------------------------------
def record(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row as a UsageRecord object."""
    meter: Meter = row["meter"]
    seconds = float(row["seconds"])
    is_open = not row.get("seq")
    name = f"{row['uid']}-open-{row.get('index', 0)}" if is_open else f"{row['uid']}-{row['seq']}"
    labels = {KIND_LABEL: row["kind"], TENANT_LABEL: row["tenant"],
              OBJECT_LABEL: row["name"][:63]}
    start = format_stamp(float(row["start"]))
    return {
        "apiVersion": API_VERSION, "kind": USAGE_RECORD.kind,
        "metadata": {"name": name, "namespace": row["namespace"], "uid": name,
                     "labels": labels, "creationTimestamp": start[:19] + "Z",
                     "resourceVersion": str(row.get("seq") or 0)},
        "spec": {
            "tenant": row["tenant"], "kind": row["kind"], "name": row["name"],
            "uid": row["uid"], "part": meter.part, "flavor": meter.flavor,
            "volumeType": meter.volume_type, "sizeGiB": meter.size_gib, "count": meter.count,
            "start": start, "end": format_stamp(float(row["end"])), "seconds": seconds,
            "hours": hours(seconds), "source": "derived", "open": is_open,
            "seq": int(row.get("seq") or 0),
            "quantities": [{"unit": q.unit, "flavor": q.flavor,
                            "quantity": round(q.per_hour * seconds / 3600, 6)}
                           for q in quantities(row["kind"], meter)],
        },
    }


def _encode_token(phase: str, position: int) -> str:
    raw = json.dumps({"p": phase, "at": position}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        phase, position = data["p"], data["at"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        phase, position = "", -1
    if phase not in ("rows", "open") or not isinstance(position, int) or position < 0:
        raise errors.bad_request("continue: Invalid value: the continue token is malformed; "
                                 "start a new list without it")
    return phase, position


class UsageRecords:
    """Answers ``usagerecords`` requests (after authorization)."""

    def __init__(self, store: Store, source: UsageSource) -> None:
        self.store = store
        self.source = source

    async def __call__(self, request: Request, target: Target) -> Response:
        if request.method != "GET" or target.subresource:
            raise errors.method_not_allowed(
                f"{request.method} is not supported: usage records are read-only (only the "
                "metering accountant writes them)")
        if request.query_params.get("watch") in ("1", "true", "True"):
            raise errors.method_not_allowed("watch is not supported on usagerecords; list "
                                            "them instead")
        if target.name:
            found = await off_loop(self.store, self._get, target.namespace or "", target.name)
            return self._render(request, found)
        return await self._list(request, target.namespace)

    def _get(self, namespace: str, name: str) -> dict[str, Any]:
        uid, _, last = name.rpartition("-")
        row: dict[str, Any] | None = None
        if uid.endswith("-open") and last.isdigit():
            owner = uid.removesuffix("-open")
            row = next((r for r in self.source.open_rows(namespace)
                        if r["uid"] == owner and r.get("index", 0) == int(last)), None)
        elif last.isdigit() and len(last) < 19:
            row = self.source.row(int(last))
            if row is not None and (row["uid"] != uid or row["namespace"] != namespace):
                row = None
        if row is None:
            raise errors.not_found(USAGE_RECORD.plural, name, USAGE_RECORD.group)
        return record(row)

    async def _list(self, request: Request, namespace: str | None) -> Response:
        q = request.query_params
        selector = parse_label_selector(q.get("labelSelector"))
        limit = int_parameter(q, "limit", 0, 2**63 - 1) or MAX_PAGE
        limit = min(limit, MAX_PAGE)
        token = q.get("continue", "")
        phase, position = _decode_token(token) if token else ("rows", 0)
        items, next_token = await off_loop(self.store, self._page, namespace, selector,
                                           limit, phase, position)
        meta: dict[str, Any] = {"resourceVersion": "0"}
        if next_token:
            meta["continue"] = next_token
        if wants_table(request):
            return json_response(table(USAGE_RECORD, items, meta, include_object(q)))
        return json_response({"apiVersion": API_VERSION, "kind": USAGE_RECORD.list_kind,
                              "metadata": meta, "items": items})

    def _page(self, namespace: str | None, selector: LabelSelector, limit: int, phase: str,
              position: int) -> tuple[list[dict[str, Any]], str]:
        items: list[dict[str, Any]] = []
        if phase == "rows":
            position = self._closed(namespace, selector, limit, position, items)
            if len(items) >= limit:
                return items[:limit], _encode_token("rows", position)
            phase, position = "open", 0
        opened = [record(r) for r in self.source.open_rows(namespace)]
        opened = [o for o in opened if selector.matches(o["metadata"]["labels"])][position:]
        room = limit - len(items)
        items += opened[:room]
        more = len(opened) > room
        return items, _encode_token("open", position + room) if more else ""

    def _closed(self, namespace: str | None, selector: LabelSelector, limit: int,
                after: int, items: list[dict[str, Any]]) -> int:
        """Closed records after ``after`` into ``items`` until ``limit``; the last seq."""
        while len(items) < limit:
            rows = self.source.rows(namespace, after, BATCH)
            for row in rows:
                found = record(row)
                after = int(row["seq"])
                if selector.matches(found["metadata"]["labels"]):
                    items.append(found)
                    if len(items) == limit:
                        return after
            if len(rows) < BATCH:
                break
        return after

    @staticmethod
    def _render(request: Request, obj: dict[str, Any]) -> Response:
        if wants_table(request):
            meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
            return json_response(table(USAGE_RECORD, [obj], meta,
                                       include_object(request.query_params)))
        return json_response(obj)


# -- the summary -------------------------------------------------------------------------------
Authorize = Callable[[Attributes], bool]


def summary_status(result: dict[str, Any]) -> dict[str, Any]:
    """The ledger's seconds per kind and meter as quantities per kind, flavor and unit.
    A group's ``seconds`` are weighted already where a quantity's basis asks for it:
    ``gib_seconds`` (size × seconds), ``count_seconds`` (nodes × seconds)."""
    sums: dict[tuple[str, str, str], float] = {}
    for group in result.get("groups", []):
        meter = Meter(part=group["part"], flavor=group["flavor"],
                      volume_type=group["volume_type"], size_gib=1, count=1)
        weights = {"seconds": group["seconds"], "size": group["gib_seconds"],
                   "count": group["count_seconds"]}
        for q in quantities(group["kind"], meter):
            key = (group["kind"], q.flavor, q.unit)
            sums[key] = sums.get(key, 0.0) + q.per_hour * float(weights[q.basis]) / 3600
    items = [{"kind": kind, "flavor": flavor, "unit": unit, "quantity": round(total, 6)}
             for (kind, flavor, unit), total in sorted(sums.items())]
    return {"items": items, "derived": int(result.get("rows", 0)),
            "ceilometer": list(result.get("ceilometer", []))}


def parse_summary(body: dict[str, Any]) -> tuple[UsageSummarySpec, float, float]:
    """The review's spec and its period; 400/422 naming the field for anything else."""
    if body.get("kind") not in (None, USAGE_SUMMARY.kind) or \
            body.get("apiVersion") not in (None, API_VERSION):
        raise errors.bad_request(f"expected {API_VERSION} {USAGE_SUMMARY.kind}")
    spec = body.get("spec")
    causes = []
    if not isinstance(spec, dict):
        raise errors.invalid(USAGE_SUMMARY.kind, "", [Cause("spec", "Required value")],
                             USAGE_SUMMARY.group)
    period: dict[str, float] = {}
    for field in ("tenant", "from", "to"):
        value = spec.get(field)
        if not isinstance(value, str) or not value or len(value) > 253:
            causes.append(Cause(f"spec.{field}", "Required value: a non-empty string"))
        elif field != "tenant":
            try:
                period[field] = parse_stamp(value)
            except ValueError:
                causes.append(Cause(f"spec.{field}", f'Invalid value: "{value[:64]}": must '
                                    "be an RFC 3339 time or a date (2026-01-31)"))
    if not causes and period["to"] <= period["from"]:
        causes.append(Cause("spec.to", "Invalid value: must be after spec.from"))
    if causes:
        raise errors.invalid(USAGE_SUMMARY.kind, "", causes, USAGE_SUMMARY.group)
    return UsageSummarySpec.model_validate(spec), period["from"], period["to"]


class UsageSummaries:
    """The ``usagesummaries`` mount: authenticate, parse, authorize for the tenant, sum."""

    def __init__(self, store: Store, source: UsageSource) -> None:
        self.store = store
        self.source = source

    async def __call__(self, request: Request, api: CentralApi) -> Response:
        user = await api.identify(request)
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if request.method != "POST" or request.url.path != SUMMARY_PATH:
            raise errors.method_not_allowed("only create is supported on usagesummaries")
        body = await parse_object(await read_body(request), media_type(request))
        spec, start, end = parse_summary(body)

        def allowed(namespace: str) -> bool:
            attrs = Attributes(user=user, verb="list", api_group=USAGE_RECORD.group,
                               resource=USAGE_RECORD.plural, namespace=namespace)
            return bool(api.ctx.authorizer.authorize(attrs).allowed)

        result = await off_loop(self.store, self._sum, spec.tenant, start, end, allowed)
        if result is None:
            raise ApiError(403, "Forbidden", f'usagesummaries.{USAGE_SUMMARY.group} is '
                           f'forbidden: User "{user.name}" cannot list usagerecords in every '
                           f'namespace of tenant "{spec.tenant}"', group=USAGE_SUMMARY.group,
                           kind=USAGE_SUMMARY.plural)
        answer = {"apiVersion": API_VERSION, "kind": USAGE_SUMMARY.kind,
                  "metadata": {"creationTimestamp": None},
                  "spec": spec.model_dump(by_alias=True), "status": summary_status(result)}
        return json_response(answer, 201)

    def _sum(self, tenant: str, start: float, end: float,
             allowed: Callable[[str], bool]) -> dict[str, Any] | None:
        """The sums, or None when the caller may not see them (checked first)."""
        if not allowed(""):
            namespaces = [ns["metadata"]["name"]
                          for ns in self.store.iter_list("core/namespaces", None, 0, None, 500)
                          if tenant_label(ns) == tenant]
            if not namespaces or not all(allowed(ns) for ns in namespaces):
                return None
        return self.source.summary(tenant, start, end)
