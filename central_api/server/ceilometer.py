"""Ceilometer ingest (``POST /webhooks/ceilometer``): what OpenStack's own metering measured,
stored beside the usage the Central API derives from its objects (docs/metering-ingest-export.md).

Ceilometer's HTTP publisher (``http://…`` in ``pipeline.yaml`` / ``event_pipeline.yaml``)
POSTs JSON. What it posts was read from the source Debian 12 ships (Ceilometer 19, Zed;
``ceilometer/publisher/http.py``), which differs from the field list in most documentation:

* **samples**: a list of ``Sample.as_dict()`` — ``name``, ``type``, ``unit``, ``volume``,
  ``user_id``, ``project_id``, ``resource_id``, ``timestamp``, ``resource_metadata``,
  ``source``, ``id``, ``monotonic_time``. The *metering message* shape
  (``publisher/utils.py`` ``meter_message_from_counter``: ``counter_name``,
  ``counter_type``, ``counter_unit``, ``counter_volume``, ``message_id``,
  ``message_signature``, …), which the notifier publisher and other tools send, is accepted
  as well; both become the same stored sample.
* **events**: a list of ``Event.serialize()`` — ``message_id``, ``event_type``,
  ``generated``, ``traits`` (``[name, type, value]`` triples), ``raw``. An event is stored as
  a sample named by its ``event_type`` (unit ``event``, volume 1); its project and resource
  come from the traits ``project_id``/``tenant_id`` and ``resource_id``/``instance_id``.
  ``raw_only=true`` posts bare notification payloads, which carry no message id: refused.
* ``batch=False`` posts each item alone, a single object instead of a list: accepted.

Decisions:

* The whole body is validated before anything is stored: one bad item answers 400 (naming
  up to ten problems with their index) and stores nothing, so a broken publisher is seen at
  once instead of silently losing a part of each batch. Unknown keys are refused too.
* Deduplicated by message id (the sample's ``id``/``message_id``): Ceilometer's publisher
  retries (``max_retries``) and two notification agents may publish the same sample.
* The project id becomes a tenant through the Tenants' ``status.projectID`` (read from the
  process's Tenant informer); a sample of a project no tenant owns is stored with an empty
  tenant, and the answer lists such projects.
* Ceilometer's publisher can send neither a bearer token nor another header; it sends HTTP
  basic credentials from the URL (``https://ceilometer:TOKEN@host/webhooks/ceilometer``).
  So this endpoint (only this one) also takes ``Authorization: Basic`` and reads the
  password as the bearer token; the user name is ignored. The token's account needs the
  built-in ClusterRole ``metering-ingest`` (create of the virtual resource
  ``ceilometersamples`` in ``metering.scs.community``).
* ``message_signature`` is kept in the stored raw sample but not verified: the publisher's
  token is the authentication, and Ceilometer's ``telemetry_secret`` would be one more
  shared secret to distribute.
* Parsing, validating and storing run in a worker thread: a batch of ten thousand samples
  is tens of milliseconds of CPU that must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response

from ..auth.authz import Attributes
from ..kinds.tenancy import TENANT
from ..machinery import errors
from ..machinery.errors import ApiError
from ..machinery.user import User
from ..store.ledger import Sample
from .handlers import json_response
from .requestinfo import RequestInfo

if TYPE_CHECKING:
    from .app import CentralApi, Mount

log = logging.getLogger("central_api.ceilometer")

PATH = "/webhooks/ceilometer"
GROUP = "metering.scs.community"
RESOURCE = "ceilometersamples"
"""The virtual resource a publisher's token must be allowed to ``create``."""
MAX_BODY_BYTES = 16 * 1024 * 1024
"""A polling cycle's samples of one pipeline arrive in one POST; 16 MiB holds about 20,000
samples with typical resource metadata."""
MAX_ITEMS = 20_000
MAX_ID = 255
"""Ceilometer's ids are UUIDs, OpenStack's project, user and resource ids at most 255
characters (Keystone and Gnocchi columns)."""
MAX_METADATA_BYTES = 64 * 1024
MAX_TRAITS = 256
MAX_PROBLEMS = 10
AUDIT_PREFIX = f"{GROUP}/"
EVENT_UNIT = "event"

Text = Annotated[str, Field(max_length=MAX_ID)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=r"^[^\x00-\x1f\x7f]+$")]
Number = Annotated[float, Field(allow_inf_nan=False)]


def parse_timestamp(value: object) -> datetime:
    """Ceilometer writes ``isoformat()`` of UTC times, with or without an offset (polling
    samples have none): a naive time is UTC."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("must be an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1970 <= parsed.astimezone(UTC).year <= 9999:
        raise ValueError("must lie between 1970 and 9999")
    return parsed.astimezone(UTC)


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _bounded_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(orjson.dumps(value)) > MAX_METADATA_BYTES:
        raise ValueError(f"larger than {MAX_METADATA_BYTES} bytes")
    return value


class PublishedSample(_Item):
    """``Sample.as_dict()``: what the HTTP publisher posts for samples."""

    name: Id
    type: Literal["gauge", "delta", "cumulative"]
    unit: Text
    volume: Number
    user_id: Text | None = None
    project_id: Text | None = None
    resource_id: Id
    timestamp: datetime
    resource_metadata: dict[str, Any] = Field(default_factory=dict)
    source: Text = "openstack"
    id: Id
    monotonic_time: Number | None = None

    _time = field_validator("timestamp", mode="plain")(parse_timestamp)
    _metadata = field_validator("resource_metadata")(_bounded_metadata)


class MeterMessage(_Item):
    """``meter_message_from_counter``: the signed metering message."""

    source: Text = "openstack"
    counter_name: Id
    counter_type: Literal["gauge", "delta", "cumulative"]
    counter_unit: Text
    counter_volume: Number
    user_id: Text | None = None
    project_id: Text | None = None
    resource_id: Id
    timestamp: datetime
    resource_metadata: dict[str, Any] = Field(default_factory=dict)
    message_id: Id
    message_signature: Annotated[str, Field(max_length=256)] | None = None
    monotonic_time: Number | None = None

    _time = field_validator("timestamp", mode="plain")(parse_timestamp)
    _metadata = field_validator("resource_metadata")(_bounded_metadata)


def _listed_triple(value: object) -> object:
    """JSON has no tuples: a trait's ``[name, type, value]`` arrives as a list."""
    return tuple(value) if isinstance(value, list) else value


Trait = Annotated[tuple[Annotated[str, Field(max_length=MAX_ID)],
                        Annotated[int, Field(ge=0, le=4)], str | int | float | None],
                  BeforeValidator(_listed_triple)]
"""``[name, type, value]``; the type is Ceilometer's trait type (0 none, 1 string,
2 integer, 3 float, 4 datetime)."""


class PublishedEvent(_Item):
    """``Event.serialize()``: what the HTTP publisher posts for events."""

    message_id: Id
    event_type: Id
    generated: datetime
    traits: list[Trait] = Field(default_factory=list, max_length=MAX_TRAITS)
    raw: dict[str, Any] = Field(default_factory=dict)

    _time = field_validator("generated", mode="plain")(parse_timestamp)
    _raw = field_validator("raw")(_bounded_metadata)

    def trait(self, *names: str) -> str | None:
        found = {name: value for name, _type, value in self.traits}
        for name in names:
            value = found.get(name)
            if isinstance(value, str) and value and len(value) <= MAX_ID:
                return value
        return None


def _sample(item: dict[str, Any]) -> Sample:
    """The stored form of one validated item (tenant still unknown); raises ValidationError
    or ValueError."""
    if "event_type" in item:
        event = PublishedEvent.model_validate(item)
        return Sample(event.message_id, event.trait("project_id", "tenant_id") or "", "",
                      event.event_type, "event", EVENT_UNIT, 1.0, event.generated.timestamp(),
                      event.trait("resource_id", "instance_id") or "", item)
    if "counter_name" in item:
        msg = MeterMessage.model_validate(item)
        return Sample(msg.message_id, msg.project_id or "", "", msg.counter_name,
                      msg.counter_type, msg.counter_unit, msg.counter_volume,
                      msg.timestamp.timestamp(), msg.resource_id, item)
    sample = PublishedSample.model_validate(item)
    return Sample(sample.id, sample.project_id or "", "", sample.name, sample.type,
                  sample.unit, sample.volume, sample.timestamp.timestamp(), sample.resource_id,
                  item)


def parse_payload(body: bytes) -> list[Sample]:
    """Every item of a publisher's POST, or a 400 naming what is wrong (nothing is stored
    then). Duplicates within the body are kept; the ledger counts them."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"not JSON: {exc}") from None
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise errors.bad_request("expected what Ceilometer's HTTP publisher posts: a JSON "
                                 "list of samples or events (or one, with batch=False)")
    if len(items) > MAX_ITEMS:
        raise ApiError(413, "RequestEntityTooLarge", f"{len(items)} items in one POST; at "
                       f"most {MAX_ITEMS} (split the pipeline or set batch=False)")
    samples, problems = [], []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object (raw_only=true posts bare notification "
                                 "payloads, which carry no message id: turn it off)")
            samples.append(_sample(item))
        except ValidationError as exc:
            problems += [f"[{index}].{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                         for e in exc.errors(include_url=False)]
        except ValueError as exc:
            problems.append(f"[{index}]: {exc}")
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise errors.bad_request("not a Ceilometer HTTP publisher payload, nothing stored: "
                                 + "; ".join(problems[:MAX_PROBLEMS]))
    return samples


# -- who sends, and whose it is -------------------------------------------------------------
def bearer_header(authorization: str | None) -> str | None:
    """The header as the authenticators read it: ``Basic`` credentials (all Ceilometer's
    publisher can send) become a bearer token, the password; anything else is unchanged."""
    if not authorization:
        return authorization
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return authorization
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(401, "Unauthorized", "Unauthorized") from None
    _user, _, password = decoded.partition(":")
    if not password:
        raise ApiError(401, "Unauthorized", "Unauthorized")
    return f"Bearer {password}"


async def identify(request: Request, api: CentralApi) -> User:
    user = await api.ctx.authenticator.authenticate(
        bearer_header(request.headers.get("authorization")))
    if user is None:
        raise ApiError(401, "Unauthorized", "Unauthorized")
    request.state.user = user
    api.rate_limit(user)
    return user


def tenants_by_project(api: CentralApi) -> dict[str, str]:
    """Keystone project id → tenant name, from the Tenants' ``status.projectID``."""
    found: dict[str, str] = {}
    informer = api.ctx.informers.lookup(TENANT.storage_resource)  # the tenant boundary's
    for tenant in informer.list() if informer is not None else []:
        project = (tenant.get("status") or {}).get("projectID")
        if project:
            found[project] = tenant["metadata"]["name"]
    return found


async def read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"the POST is larger than {MAX_BODY_BYTES} "
                    "bytes; split the pipeline's meters or set batch=False on the publisher")


# -- storing --------------------------------------------------------------------------------
@dataclass
class Outcome:
    received: int
    stored: int
    duplicates: int
    unmapped: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"received": self.received, "stored": self.stored,
                "duplicates": self.duplicates, "unmappedProjects": self.unmapped}


AddSamples = Callable[[list[Sample]], tuple[int, int]]
"""Stores samples not stored before (by message id); returns (added, duplicates)."""


def ingest(body: bytes, projects: dict[str, str], add: AddSamples) -> Outcome:
    """Parse, map and store one POST (in a worker thread)."""
    samples = parse_payload(body)
    mapped = [dataclasses.replace(s, tenant=projects.get(s.project_id, "")) for s in samples]
    unmapped = sorted({s.project_id for s in mapped if s.project_id and not s.tenant})
    added, duplicates = add(mapped)
    return Outcome(len(samples), added, duplicates, unmapped)


def ceilometer_receiver(add: AddSamples) -> Mount:
    """The mount answering ``POST /webhooks/ceilometer`` for a token allowed to create
    ``ceilometersamples`` (the ``metering-ingest`` role)."""

    async def receive(request: Request, api: CentralApi) -> Response:
        request.state.info = RequestInfo(True, "create", api_group=GROUP,
                                         api_version="v1alpha1", resource=RESOURCE)
        user = await identify(request, api)
        api.authorize(Attributes(user, "create", GROUP, RESOURCE), request)
        if request.url.path != PATH:
            raise errors.not_found("", "")
        if request.method != "POST":
            raise errors.method_not_allowed(f"{request.method} is not supported; Ceilometer's "
                                            "HTTP publisher POSTs samples and events")
        body = await read_limited(request)
        outcome = await asyncio.to_thread(ingest, body, tenants_by_project(api), add)
        request.state.audit_annotations = {f"{AUDIT_PREFIX}{k}": str(v) for k, v in (
            ("samples-received", outcome.received), ("samples-stored", outcome.stored),
            ("samples-duplicate", outcome.duplicates))}
        if outcome.unmapped:
            log.info("Ceilometer samples of projects no tenant owns (stored without a "
                     "tenant): %s", ", ".join(outcome.unmapped[:20]))
        return json_response(outcome.summary())

    return receive
