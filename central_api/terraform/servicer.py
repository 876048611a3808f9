"""The provider's gRPC service (tfplugin6): Terraform's calls mapped onto our modules.

It subclasses the tf framework's ``ProviderServicer`` and keeps what fits (GetMetadata,
StopProvider, functions); the schema and resource calls are overridden, because the
framework's own handle flat attributes only (no nested attributes) and plan creates and
updates without knowing what the server computes. Values travel as msgpack; unknown values
are msgpack extension 0 — or 12, a *refined* unknown (Terraform 1.6+), which the framework
does not read — and decode to ``tf.types.Unknown``.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import msgpack
from tf.gen import tfplugin_pb2 as pb
from tf.provider import ProviderServicer
from tf.types import Unknown
from tf.utils import Diagnostics, _to_attribute_path, to_dynamic_value

from .cache import load
from .config import configure, provider_schema
from .plan import parse_duration, plan
from .schema import Node
from .types import TfAction, TfKind

if TYPE_CHECKING:  # the SDK is imported once Terraform needs the API (see .types)
    from ..client import Client
    from .resource import Objects

Context = Any
"""grpc.ServicerContext (untyped in grpcio)."""


def _ext(code: int, data: bytes) -> Any:
    if code in (0, 12):
        return Unknown
    return msgpack.ExtType(code, data)


def decode(value: pb.DynamicValue) -> Any:
    if value.msgpack:
        return msgpack.unpackb(value.msgpack, ext_hook=_ext, raw=False, strict_map_key=False)
    if value.json:
        return json.loads(value.json)
    return None


def schema_pb(root: Node) -> pb.Schema:
    return pb.Schema(version=0, block=pb.Schema.Block(
        attributes=[a.to_pb(n) for n, a in root.attributes.items()],
        description=root.description, description_kind=pb.StringKind.PLAIN))


def conform(node: Node, value: Any) -> Any:
    """A stored state in the current schema's shape: attributes added since are null,
    attributes gone are dropped (a newer server version's kinds)."""
    if value is None or value is Unknown:
        return value
    if node.type == "object" and isinstance(value, dict):
        return {n: conform(c, value.get(n)) for n, c in node.attributes.items()}
    element = node.element
    if element is not None and node.type == "list" and isinstance(value, list):
        return [conform(element, v) for v in value]
    if element is not None and node.type == "map" and isinstance(value, dict):
        return {k: conform(element, v) for k, v in value.items()}
    return value


class ScsServicer(ProviderServicer):
    """Terraform's calls for the kinds of :func:`served_kinds`."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        kinds, found = load()
        self.resources: dict[str, TfKind] = {k.type_name: k for k in kinds if k.resource}
        self.data: dict[str, TfKind] = {k.type_name: k for k in kinds}
        self.actions: dict[str, TfAction] = {a.type_name: a for a in found}
        self._client: Client | None = None
        self._lock = threading.Lock()

    # -- schema and configuration ---------------------------------------------------------------
    def GetProviderSchema(self, request: Any, context: Context) -> Any:  # noqa: N802
        data = {name: schema_pb(k.data) for name, k in self.data.items()}
        data.update({name: schema_pb(a.data) for name, a in self.actions.items()})
        return pb.GetProviderSchema.Response(
            provider=schema_pb(provider_schema()),
            provider_meta=pb.Schema(version=0, block=pb.Schema.Block()),
            resource_schemas={n: schema_pb(k.resource) for n, k in self.resources.items()
                              if k.resource is not None},
            data_source_schemas=data)

    def ValidateProviderConfig(self, request: Any, context: Context) -> Any:  # noqa: N802
        return pb.ValidateProviderConfig.Response()

    def ConfigureProvider(self, request: Any, context: Context) -> Any:  # noqa: N802
        diags = Diagnostics()
        client = configure(diags, decode(request.config) or {})
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = client
        return pb.ConfigureProvider.Response(diagnostics=diags.to_pb())

    def client(self, diags: Diagnostics) -> Client | None:
        if self._client is None:
            diags.add_error("The scs provider is not configured",
                            detail="Its configuration failed; see the error before this one.")
        return self._client

    def ValidateResourceConfig(self, request: Any, context: Context) -> Any:  # noqa: N802
        diags = Diagnostics()
        config = decode(request.config) or {}
        for verb, value in ((config.get("timeouts") or {}) or {}).items():
            if isinstance(value, str):
                try:
                    parse_duration(value)
                except ValueError as exc:
                    diags.add_error(f"Invalid timeouts.{verb}", detail=str(exc),
                                    path=["timeouts", verb])
        return pb.ValidateResourceConfig.Response(diagnostics=diags.to_pb())

    def ValidateDataResourceConfig(self, request: Any, context: Context) -> Any:  # noqa: N802
        return pb.ValidateDataResourceConfig.Response()

    def UpgradeResourceState(self, request: Any, context: Context) -> Any:  # noqa: N802
        kind = self.resources[request.type_name]
        raw = json.loads(request.raw_state.json) if request.raw_state.json else None
        if kind.resource is None:  # pragma: no cover - resources have a schema
            raise ValueError(request.type_name)
        state = conform(kind.resource, raw)
        return pb.UpgradeResourceState.Response(upgraded_state=to_dynamic_value(state))

    # -- resources ------------------------------------------------------------------------------
    def _objects(self, type_name: str, diags: Diagnostics) -> Objects | None:
        from .resource import Objects

        client = self.client(diags)
        return Objects(client, self.resources[type_name]) if client is not None else None

    def ReadResource(self, request: Any, context: Context) -> Any:  # noqa: N802
        diags = Diagnostics()
        prior = decode(request.current_state)
        objects = self._objects(request.type_name, diags)
        state = objects.read(diags, prior) if objects is not None and prior else prior
        return pb.ReadResource.Response(new_state=to_dynamic_value(state),
                                        diagnostics=diags.to_pb(), private=request.private)

    def PlanResourceChange(self, request: Any, context: Context) -> Any:  # noqa: N802
        root = self.resources[request.type_name].resource
        if root is None:  # pragma: no cover - resources have a schema
            raise ValueError(request.type_name)
        planned, replace = plan(root, decode(request.prior_state),
                                decode(request.proposed_new_state))
        return pb.PlanResourceChange.Response(
            planned_state=to_dynamic_value(planned),
            requires_replace=[_to_attribute_path(p) for p in replace])

    def ApplyResourceChange(self, request: Any, context: Context) -> Any:  # noqa: N802
        diags = Diagnostics()
        prior, planned = decode(request.prior_state), decode(request.planned_state)
        objects = self._objects(request.type_name, diags)
        new: Any = prior
        if objects is not None:
            if prior is None:
                new = objects.create(diags, planned)
            elif planned is None:
                objects.delete(diags, prior)
                new = None if not diags.has_errors() else prior
            else:
                new = objects.update(diags, prior, planned)
        return pb.ApplyResourceChange.Response(new_state=to_dynamic_value(new),
                                               diagnostics=diags.to_pb())

    def ImportResourceState(self, request: Any, context: Context) -> Any:  # noqa: N802
        diags = Diagnostics()
        objects = self._objects(request.type_name, diags)
        state = objects.import_(diags, request.id) if objects is not None else None
        imported = [pb.ImportResourceState.ImportedResource(
            type_name=request.type_name, state=to_dynamic_value(state))] if state else []
        return pb.ImportResourceState.Response(imported_resources=imported,
                                               diagnostics=diags.to_pb())

    # -- data sources ---------------------------------------------------------------------------
    def ReadDataSource(self, request: Any, context: Context) -> Any:  # noqa: N802
        from .datasource import read_action, read_object

        diags = Diagnostics()
        config = decode(request.config) or {}
        client = self.client(diags)
        state: Any = None
        if client is not None:
            if request.type_name in self.actions:
                state = read_action(client, self.actions[request.type_name], diags, config)
            else:
                state = read_object(client, self.data[request.type_name], diags, config)
        return pb.ReadDataSource.Response(state=to_dynamic_value(state),
                                          diagnostics=diags.to_pb())
