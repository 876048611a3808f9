"""The SCS status-page API (spec 1.1.2): every path and method, one function each.

Reads come from the shared informers (:class:`StatusIndex`); writes go through the registry
(:mod:`writes`) off the event loop and answer once this process's informer has the written
revision, so a GET right after a POST sees it. Access: GETs are public unless
``status.anonymousRead`` is off (anonymous callers are rate-limited per client address);
every write needs a token and the RBAC verb on the kind it changes (``status-editor``), so
the REST API and kubectl share one permission model. Each request names its kind, verb and
object for the audit log.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources as package_files
from typing import TYPE_CHECKING, Any, cast

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import Response

from ...auth.authz import Attributes
from ...auth.ratelimit import retry_after_seconds
from ...config import StatusConfig
from ...kinds.kind import ResourceType
from ...kinds.status import (
    COMPONENT,
    GROUP,
    IMPACT_TYPE,
    INCIDENT,
    MAINTENANCE_SEVERITY,
    MAX_SEVERITY,
    SEVERITY,
    format_time,
    name_from_display_name,
    phase_list_name,
)
from ...machinery.errors import ApiError
from ...machinery.user import User
from ...registry.resources import WriteOptions
from ...store.base import StoreUnavailable
from ...store.offload import off_loop
from ..handlers import json_response, media_type, read_body
from ..requestinfo import RequestInfo
from . import views, writes
from .errors import StatusPageError, bad_request, from_api_error, not_found
from .index import IncidentEntry, Object, StatusIndex, micros
from .views import MISSING, Body, present, require_some

if TYPE_CHECKING:
    from ..app import CentralApi, ServerContext

log = logging.getLogger("central_api.statuspage")

SPEC_FILE = "openapi-1.1.2.yaml"
MANAGER = "status-page-api"
READS = frozenset({"get", "list"})
CORS_METHODS = "GET, POST, PATCH, DELETE"
CORS_HEADERS = "Authorization, Content-Type"
RENDER_ON_LOOP = 32
"""Incident views rendered on the event loop at most per request (~25 µs each); a list
needing more (the first read after a Component or ImpactType came or went) renders them
in a worker thread, so no caller holds up the loop for long."""


@dataclass(frozen=True)
class Operation:
    handler: str
    plural: str
    """The kind it reads or changes (RBAC and audit); "" for the spec document."""
    verb: str


@dataclass
class Call:
    request: Request
    user: User | None
    params: list[str]


def _ops(plural: str, **by_method: tuple[str, str]) -> dict[str, Operation]:
    return {method: Operation(handler, plural, verb)
            for method, (handler, verb) in by_method.items()}


ANY = "*"
ROUTES: dict[tuple[str, ...], dict[str, Operation]] = {
    ("openapi.json",): _ops("", GET=("get_spec", "get")),
    ("phases",): _ops("phaselists", GET=("get_phase_list", "get"),
                      POST=("create_phase_list", "create")),
    ("impacttypes",): _ops("impacttypes", GET=("list_impact_types", "list"),
                           POST=("create_impact_type", "create")),
    ("impacttypes", ANY): _ops("impacttypes", GET=("get_impact_type", "get"),
                               PATCH=("update_impact_type", "patch"),
                               DELETE=("delete_impact_type", "delete")),
    ("severities",): _ops("severities", GET=("list_severities", "list"),
                          POST=("create_severity", "create")),
    ("severities", ANY): _ops("severities", GET=("get_severity", "get"),
                              PATCH=("update_severity", "patch"),
                              DELETE=("delete_severity", "delete")),
    ("components",): _ops("components", GET=("list_components", "list"),
                          POST=("create_component", "create")),
    ("components", ANY): _ops("components", GET=("get_component", "get"),
                              PATCH=("update_component", "patch"),
                              DELETE=("delete_component", "delete")),
    ("incidents",): _ops("incidents", GET=("list_incidents", "list"),
                         POST=("create_incident", "create")),
    ("incidents", ANY): _ops("incidents", GET=("get_incident", "get"),
                             PATCH=("update_incident", "patch"),
                             DELETE=("delete_incident", "delete")),
    ("incidents", ANY, "updates"): _ops("incidents", GET=("list_updates", "get"),
                                        POST=("create_update", "patch")),
    ("incidents", ANY, "updates", ANY): _ops("incidents", GET=("get_update", "get"),
                                             PATCH=("update_update", "patch"),
                                             DELETE=("delete_update", "patch")),
}
ID_PARAMS = {"components": "componentId", "impacttypes": "impactTypeId",
             "incidents": "incidentId"}


@functools.cache
def spec_document() -> bytes:
    """The spec this API implements, as JSON (``GET <prefix>/openapi.json``)."""
    text = (package_files.files(__package__) / SPEC_FILE).read_text(encoding="utf-8")
    return orjson.dumps(yaml.safe_load(text))


def data(payload: Any) -> Response:
    return json_response({"data": payload})


def json_bytes(body: bytes) -> Response:
    return Response(body, media_type="application/json")


class StatusPage:
    """The mount serving the status-page API under ``config.path_prefix``."""

    def __init__(self, ctx: ServerContext, config: StatusConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.index = StatusIndex(ctx.informers)

    # -- dispatch ----------------------------------------------------------------------------
    async def __call__(self, request: Request, api: CentralApi) -> Response:
        try:
            response = await self._answer(request, api)
        except StatusPageError as exc:
            response = exc.response()
        except ApiError as exc:
            response = from_api_error(exc).response()
        except StoreUnavailable:
            response = StatusPageError(503, "the store is unavailable; retry shortly",
                                       1).response()
        except Exception:
            log.exception("internal error on %s %s", request.method, request.url.path)
            response = StatusPageError(500).response()
        response.headers.update(self.cors_headers(request))
        return response

    async def _answer(self, request: Request, api: CentralApi) -> Response:
        if request.method == "OPTIONS":
            return self.preflight(request)
        segments = self.segments(request.url.path)
        routes, params = self.match(segments)
        # HEAD is GET without the body (uptime checkers use it); the server drops the body
        op = routes.get("GET" if request.method == "HEAD" else request.method)
        if op is None:
            raise StatusPageError(405)
        user = await self.access(request, api, op, self.object_name(op, segments, params))
        handler: Callable[[Call], Any] = getattr(self, op.handler)
        response: Response = await handler(Call(request, user, params))
        return response

    def segments(self, path: str) -> tuple[str, ...]:
        rest = path[len(self.config.path_prefix):].strip("/")  # echo drops a trailing slash
        return tuple(rest.split("/")) if rest else ()

    @staticmethod
    def match(segments: tuple[str, ...]) -> tuple[dict[str, Operation], list[str]]:
        for pattern, routes in ROUTES.items():
            if len(pattern) == len(segments) and all(
                    p in (ANY, s) for p, s in zip(pattern, segments, strict=True)):
                return routes, [s for p, s in zip(pattern, segments, strict=True) if p == ANY]
        raise not_found()

    def object_name(self, op: Operation, segments: tuple[str, ...], params: list[str]) -> str:
        """The object a request names, for RBAC resourceNames and the audit log."""
        if not params:
            return ""
        if op.plural == "severities":
            return params[0]
        try:
            return self.index.name_of(op.plural, str(uuid.UUID(params[0]))) or ""
        except ValueError:
            return ""

    # -- access ------------------------------------------------------------------------------
    async def access(self, request: Request, api: CentralApi, op: Operation,
                     name: str) -> User | None:
        user = await api.identify(request)  # bad or expired credentials: 401
        request.state.info = RequestInfo(True, op.verb, path=request.url.path, api_group=GROUP,
                                         api_version="v1alpha1", resource=op.plural, name=name)
        if op.verb in READS:
            if user is None and self.config.anonymous_read:
                self.limit_anonymous(request)
                return None
            if user is None:
                raise StatusPageError(401, "Unauthorized: this status page needs a token")
            if self.config.anonymous_read or not op.plural:
                return user
        elif user is None:
            raise StatusPageError(401, "Unauthorized: writes need a bearer token")
        api.authorize(Attributes(user, op.verb, GROUP, op.plural, name=name), request)
        return user

    def limit_anonymous(self, request: Request) -> None:
        limiter = self.ctx.rate_limiter
        if limiter is None:
            return
        address = request.client.host if request.client else "unknown"
        delay = limiter.check(f"system:anonymous@{address}")
        if delay is not None:
            raise StatusPageError(429, "Too Many Requests", retry_after_seconds(delay))

    def cors_headers(self, request: Request) -> dict[str, str]:
        """For configured front-end origins only; none for any other origin. Bearer tokens
        need no credentials mode, so Allow-Credentials is never sent."""
        origin = request.headers.get("origin")
        origins = self.config.cors_origins
        if not origin or not (origin in origins or "*" in origins):
            return {}
        return {"Access-Control-Allow-Origin": "*" if "*" in origins else origin,
                "Vary": "Origin", "Access-Control-Expose-Headers": "Retry-After"}

    def preflight(self, request: Request) -> Response:
        headers = {}
        if self.cors_headers(request):
            headers = {"Access-Control-Allow-Methods": CORS_METHODS,
                       "Access-Control-Allow-Headers": CORS_HEADERS,
                       "Access-Control-Max-Age": "600"}
        return Response(status_code=204, headers=headers)

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    async def body(call: Call) -> Body:
        """A JSON object body (size-limited like every body of the server)."""
        if media_type(call.request) != "application/json":
            raise StatusPageError(415, "Unsupported Media Type: send application/json")
        raw = await read_body(call.request)
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"the body is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise bad_request("the body must be a JSON object")
        return Body(parsed)

    def find(self, plural: str, raw_id: str) -> Object:
        uid = views.uuid_parameter(ID_PARAMS[plural], raw_id)
        obj = self.index.by_id(plural, uid)
        if obj is None:
            raise not_found(plural.rstrip("s").replace("impacttype", "impact type"))
        return obj

    @staticmethod
    def options(call: Call) -> WriteOptions:
        return WriteOptions(field_manager=MANAGER, user=call.user)

    async def write(self, plural: str, func: Callable[..., Any], *args: Any) -> Any:
        """A registry write off the loop, answered once the informer has it."""
        result = await off_loop(self.ctx.store, func, self.ctx.resources, *args)
        stored = result[0] if isinstance(result, tuple) else result
        await self.index.caught_up(plural, int(stored["metadata"]["resourceVersion"]))
        return result

    async def create(self, call: Call, rt: ResourceType, spec: dict[str, Any]) -> Response:
        name = name_from_display_name(spec.get("displayName", "") or rt.kind.lower(),
                                      str(uuid.uuid4()))
        obj = await self.write(rt.plural, writes.create, rt,
                               {"metadata": {"name": name}, "spec": spec}, self.options(call))
        return json_response({"id": obj["metadata"]["uid"]}, 201)

    async def patch_spec(self, call: Call, rt: ResourceType, name: str,
                         fields: dict[str, Any]) -> Response:
        def change(obj: Object) -> None:
            obj.setdefault("spec", {}).update(fields)

        await self.write(rt.plural, writes.modify, rt, name, change, self.options(call))
        return Response(status_code=204)

    async def delete(self, rt: ResourceType, name: str) -> Response:
        await self.write(rt.plural, writes.delete, rt, name)
        return Response(status_code=204)

    # -- spec and phases ---------------------------------------------------------------------
    async def get_spec(self, call: Call) -> Response:
        return Response(spec_document(), media_type="application/json")

    def cached(self, key: str, build: Callable[[], Any]) -> Response:
        """``{"data": build()}`` as JSON, built once per index revision (see ``index``)."""
        return json_bytes(self.index.memo(key, lambda: orjson.dumps({"data": build()})))

    async def get_phase_list(self, call: Call) -> Response:
        raw = call.request.query_params.get("generation")
        if raw is None:
            return self.cached("phases", lambda: views.phase_list_view(max(
                self.index.list("phaselists"), key=lambda o: o["spec"]["generation"],
                default=None)))
        generation = views.order_parameter("generation", raw)
        found = self.index.get("phaselists", phase_list_name(generation))
        if found is None:
            raise not_found(f"phase list generation {generation}")
        return data(views.phase_list_view(found))

    async def create_phase_list(self, call: Call) -> Response:
        phases = (await self.body(call)).phases()
        obj = await self.write("phaselists", writes.next_phase_list, phases,
                               self.options(call))
        return json_response({"generation": obj["spec"]["generation"]}, 201)

    # -- impact types ------------------------------------------------------------------------
    async def list_impact_types(self, call: Call) -> Response:
        return self.cached("impacttypes", lambda: [
            views.impact_type_view(o)
            for o in sorted(self.index.list("impacttypes"), key=views.sort_key)])

    async def get_impact_type(self, call: Call) -> Response:
        return data(views.impact_type_view(self.find("impacttypes", call.params[0])))

    @staticmethod
    def impact_type_fields(body: Body) -> dict[str, Any]:
        return require_some(present({"displayName": body.text("displayName"),
                                     "description": body.text("description")}))

    async def create_impact_type(self, call: Call) -> Response:
        return await self.create(call, IMPACT_TYPE,
                                 self.impact_type_fields(await self.body(call)))

    async def update_impact_type(self, call: Call) -> Response:
        obj = self.find("impacttypes", call.params[0])
        fields = self.impact_type_fields(await self.body(call))
        return await self.patch_spec(call, IMPACT_TYPE, obj["metadata"]["name"], fields)

    async def delete_impact_type(self, call: Call) -> Response:
        obj = self.find("impacttypes", call.params[0])
        return await self.delete(IMPACT_TYPE, obj["metadata"]["name"])

    # -- severities --------------------------------------------------------------------------
    async def list_severities(self, call: Call) -> Response:
        return self.cached("severities", lambda: [
            views.severity_view(o)
            for o in sorted(self.index.list("severities"), key=lambda o: o["spec"]["value"])])

    def severity(self, name: str) -> Object:
        obj = self.index.get("severities", name)
        if obj is None:
            raise not_found("severity")
        return obj

    async def get_severity(self, call: Call) -> Response:
        return data(views.severity_view(self.severity(call.params[0])))

    @staticmethod
    def severity_fields(body: Body) -> dict[str, Any]:
        return require_some(present({
            "displayName": body.text("displayName"),
            "value": body.integer("value", MAINTENANCE_SEVERITY, MAX_SEVERITY)}))

    async def create_severity(self, call: Call) -> Response:
        fields = self.severity_fields(await self.body(call))
        if not fields.get("displayName"):
            raise bad_request("displayName: required (it names the severity)")
        if "value" not in fields:
            raise bad_request("value: required")
        await self.write("severities", writes.create, SEVERITY,
                         {"metadata": {"name": fields["displayName"]},
                          "spec": {"value": fields["value"]}}, self.options(call))
        return Response(status_code=204)

    async def update_severity(self, call: Call) -> Response:
        name = self.severity(call.params[0])["metadata"]["name"]
        fields = self.severity_fields(await self.body(call))
        new_name = fields.pop("displayName", name) or name

        def change(obj: Object) -> None:
            obj["spec"].update(fields)

        if new_name == name:
            await self.write("severities", writes.modify, SEVERITY, name, change,
                             self.options(call))
        else:
            await self.write("severities", writes.rename, SEVERITY, name, new_name, change,
                             self.options(call))
        return Response(status_code=204)

    async def delete_severity(self, call: Call) -> Response:
        return await self.delete(SEVERITY, self.severity(call.params[0])["metadata"]["name"])

    # -- components --------------------------------------------------------------------------
    def at(self, call: Call) -> datetime | None:
        return views.time_parameter("at", call.request.query_params.get("at"))

    async def list_components(self, call: Call) -> Response:
        at = self.at(call)
        if at is None:
            return self.cached("components", lambda: self.component_views(None))
        return data(self.component_views(at))

    def component_views(self, at: datetime | None) -> list[dict[str, Any]]:
        affected = views.affected_by(self.index, at)
        return [views.component_view(o, affected)
                for o in sorted(self.index.list("components"), key=views.sort_key)]

    async def get_component(self, call: Call) -> Response:
        obj = self.find("components", call.params[0])
        return data(views.component_view(obj, views.affected_by(self.index, self.at(call))))

    @staticmethod
    def component_fields(body: Body) -> dict[str, Any]:
        return require_some(present({"displayName": body.text("displayName"),
                                     "labels": body.labels()}))

    async def create_component(self, call: Call) -> Response:
        return await self.create(call, COMPONENT, self.component_fields(await self.body(call)))

    async def update_component(self, call: Call) -> Response:
        obj = self.find("components", call.params[0])
        fields = self.component_fields(await self.body(call))
        return await self.patch_spec(call, COMPONENT, obj["metadata"]["name"], fields)

    async def delete_component(self, call: Call) -> Response:
        obj = self.find("components", call.params[0])
        return await self.delete(COMPONENT, obj["metadata"]["name"])

    # -- incidents ---------------------------------------------------------------------------
    async def list_incidents(self, call: Call) -> Response:
        query = call.request.query_params
        start = views.time_parameter("start", query.get("start"), required=True)
        end = views.time_parameter("end", query.get("end"), required=True)
        if start is None or end is None or end < start:
            raise bad_request("end: must not be before start")
        found = self.index.incidents.overlapping(micros(start), micros(end))
        return json_bytes(orjson.dumps({"data": await self.incident_views(found)}))

    async def incident_views(self, entries: list[IncidentEntry]) -> list[orjson.Fragment]:
        """The entries' rendered views; if many are stale, they are rendered in a worker
        thread and kept only if no Component or ImpactType came or went meanwhile."""
        epoch = self.index.views_epoch
        stale = [e for e in entries if e.view_epoch != epoch]
        if not stale:  # the usual case: no call per entry
            return cast(list[orjson.Fragment], [e.view for e in entries])
        if len(stale) <= RENDER_ON_LOOP:
            return [views.incident_fragment(e, self.index) for e in entries]
        rendered = await asyncio.to_thread(render_all, stale, self.index)
        if self.index.views_epoch == epoch:
            for entry, fragment in rendered.items():
                entry.view, entry.view_epoch = fragment, epoch
        return [rendered.get(e) or views.incident_fragment(e, self.index) for e in entries]

    async def get_incident(self, call: Call) -> Response:
        uid = views.uuid_parameter(ID_PARAMS["incidents"], call.params[0])
        entry = self.index.incident_by_id(uid)
        if entry is None:
            raise not_found("incident")
        return json_bytes(orjson.dumps({"data": views.incident_fragment(entry, self.index)}))

    def incident_fields(self, body: Body) -> dict[str, Any]:
        return require_some(present({
            "displayName": body.text("displayName"), "description": body.text("description"),
            "beganAt": body.date("beganAt"), "endedAt": body.date("endedAt"),
            "phase": body.phase(), "affects": body.affects(self.index)}))

    async def create_incident(self, call: Call) -> Response:
        fields = self.incident_fields(await self.body(call))
        if fields.get("phase", MISSING) is None:
            del fields["phase"]
        views.check_maintenance(fields)
        return await self.create(call, INCIDENT, fields)

    async def update_incident(self, call: Call) -> Response:
        """Fields the body leaves out stay as they are (the reference's GORM Updates); an
        explicit null clears beganAt, endedAt or phase (reopening an ended incident)."""
        obj = self.find("incidents", call.params[0])
        fields = self.incident_fields(await self.body(call))

        def change(live: Object) -> None:
            spec = live.setdefault("spec", {})
            spec.update(fields)
            if spec.get("phase", MISSING) is None:
                del spec["phase"]
            views.check_maintenance(spec)

        await self.write("incidents", writes.modify, INCIDENT, obj["metadata"]["name"],
                         change, self.options(call))
        return Response(status_code=204)

    async def delete_incident(self, call: Call) -> Response:
        obj = self.find("incidents", call.params[0])
        return await self.delete(INCIDENT, obj["metadata"]["name"])

    # -- incident updates --------------------------------------------------------------------
    async def list_updates(self, call: Call) -> Response:
        updates = (self.find("incidents", call.params[0]).get("spec") or {}).get("updates")
        return data([views.update_view(u)
                     for u in sorted(updates or [], key=lambda u: u["order"])])

    async def get_update(self, call: Call) -> Response:
        incident = self.find("incidents", call.params[0])
        order = views.order_parameter("updateOrder", call.params[1])
        return data(views.update_view(update_of(incident, order)))

    @staticmethod
    def update_fields(body: Body) -> dict[str, Any]:
        return require_some(present({"displayName": body.text("displayName"),
                                     "description": body.text("description"),
                                     "createdAt": body.date("createdAt")}))

    async def create_update(self, call: Call) -> Response:
        """The next order is the highest plus one, 0 for the first (as the reference)."""
        incident = self.find("incidents", call.params[0])
        fields = self.update_fields(await self.body(call))
        written = format_time(datetime.now(UTC))

        def append(live: Object) -> int:
            updates = live.setdefault("spec", {}).setdefault("updates", [])
            order = max((u["order"] for u in updates), default=-1) + 1
            updates.append({"order": order, "displayName": fields.get("displayName", ""),
                            "description": fields.get("description", ""),
                            "createdAt": fields.get("createdAt") or written})
            return order

        _, order = await self.write("incidents", writes.modify, INCIDENT,
                                    incident["metadata"]["name"], append, self.options(call))
        return json_response({"order": order}, 201)

    async def update_update(self, call: Call) -> Response:
        incident = self.find("incidents", call.params[0])
        order = views.order_parameter("updateOrder", call.params[1])
        fields = self.update_fields(await self.body(call))

        def change(live: Object) -> None:
            update_of(live, order).update(fields)

        await self.write("incidents", writes.modify, INCIDENT, incident["metadata"]["name"],
                         change, self.options(call))
        return Response(status_code=204)

    async def delete_update(self, call: Call) -> Response:
        incident = self.find("incidents", call.params[0])
        order = views.order_parameter("updateOrder", call.params[1])

        def remove(live: Object) -> None:
            spec = live.setdefault("spec", {})
            update_of(live, order)  # 404 if it is not there
            spec["updates"] = [u for u in spec["updates"] if u["order"] != order]

        await self.write("incidents", writes.modify, INCIDENT, incident["metadata"]["name"],
                         remove, self.options(call))
        return Response(status_code=204)


def update_of(incident: Object, order: int) -> dict[str, Any]:
    for update in (incident.get("spec") or {}).get("updates") or []:
        if update["order"] == order:
            found: dict[str, Any] = update
            return found
    raise not_found("incident update")


def render_all(entries: list[IncidentEntry], index: StatusIndex
               ) -> dict[IncidentEntry, orjson.Fragment]:
    """The entries' views, rendered (in a worker thread: it only reads the index)."""
    return {e: orjson.Fragment(orjson.dumps(views.incident_view(e.obj, index)))
            for e in entries}
