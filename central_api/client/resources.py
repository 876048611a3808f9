"""Which resource a call addresses, and objects as typed models or plain dicts.

The kinds' pydantic models are the SDK's typed models: ``client.get(Server, "web", "acme")``
finds the kind's declaration (group, version, plural, scope) from the model and answers an
instance of it. Custom resources have no Python type; they are addressed by an
:class:`ApiResource` (given, or found by discovery) and travel as dicts.

Objects read through the SDK keep the metadata the declared models leave out (finalizers,
owner references, ...), so reading, changing and updating a typed object never drops them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..kinds import builtin_kinds
from ..kinds.common import ObjectMeta, Resource
from ..kinds.kind import ResourceType

R = TypeVar("R", bound=Resource)
Obj = dict[str, Any]


@dataclass(frozen=True)
class ApiResource:
    """A served resource: what a URL path is built from. ``model`` is the declared type of
    a built-in kind's objects (None for custom resources: their objects are dicts)."""

    group: str
    version: str
    plural: str
    namespaced: bool = True
    kind: str = ""
    model: type[Resource] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        if subresource:
            base += f"/{subresource}"
        return base

    def as_dicts(self) -> ApiResource:
        """The same resource with its objects answered as dicts (generic tools, e.g. a
        Terraform provider, work on every kind alike)."""
        return replace(self, model=None)

    @classmethod
    def of(cls, rt: ResourceType) -> ApiResource:
        return cls(rt.group, rt.version, rt.plural, rt.namespaced, rt.kind, rt.model)


KindRef = type[Resource] | ResourceType | ApiResource
"""How a call names its resource: a kind's model class, its declaration, or an
:class:`ApiResource` (custom resources)."""


@cache
def _builtins() -> tuple[dict[type[Resource], ApiResource], dict[tuple[str, str], ApiResource]]:
    by_model: dict[type[Resource], ApiResource] = {}
    by_kind: dict[tuple[str, str], ApiResource] = {}
    for rt in builtin_kinds():
        res = ApiResource.of(rt)
        if rt.model is not None:
            by_model.setdefault(rt.model, res)
        by_kind[(rt.api_version, rt.kind)] = res
    return by_model, by_kind


def resolve(kind: KindRef) -> ApiResource:
    """The resource of a model class, declaration or ApiResource."""
    if isinstance(kind, ApiResource):
        return kind
    if isinstance(kind, ResourceType):
        return ApiResource.of(kind)
    if isinstance(kind, type) and issubclass(kind, Resource):
        for cls in kind.__mro__:  # a model read through the SDK is a subclass (see typed)
            found = _builtins()[0].get(cls)  # type: ignore[call-overload]
            if found is not None:
                return found
        raise TypeError(f"{kind.__name__} is not the model of a served kind")
    raise TypeError(f"expected a kind's model, ResourceType or ApiResource, got {kind!r}")


def builtin(api_version: str, kind: str) -> ApiResource | None:
    """A built-in kind by apiVersion and kind (no discovery needed)."""
    return _builtins()[1].get((api_version, kind))


def of_object(obj: Resource | Obj) -> ApiResource | None:
    """The resource an object belongs to, when it tells without discovery."""
    if isinstance(obj, Resource):
        return resolve(type(obj))
    return builtin(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))


# -- typed objects -------------------------------------------------------------------------------
class FullObjectMeta(ObjectMeta):
    """ObjectMeta that keeps every field the server sent (managed fields aside, they are
    the server's to keep), with typed finalizers and owner references. Exported as
    ``central_api.client.ObjectMeta``: give it to a model to set finalizers or owners on a
    new object (the declared models' metadata leaves them out)."""

    model_config = ConfigDict(extra="allow")

    finalizers: list[str] = Field(default_factory=list)
    ownerReferences: list[dict[str, Any]] = Field(default_factory=list)


@cache
def typed(model: type[R]) -> type[R]:
    """The subclass of ``model`` the SDK answers: ``isinstance(obj, model)`` holds, and its
    metadata keeps what the declared model would drop."""
    sub: type[R] = create_model(  # type: ignore[call-overload]
        model.__name__, __base__=model, __module__=model.__module__,
        metadata=(FullObjectMeta, Field(default_factory=FullObjectMeta)))
    return sub


def load(res: ApiResource, raw: Obj) -> Any:
    """An answered object as its kind's model (a dict for custom resources)."""
    if res.model is None:
        return raw
    return typed(res.model).model_validate(raw)


def to_body(res: ApiResource, obj: Resource | Obj) -> Obj:
    """The JSON body of a write: apiVersion and kind filled in, unset metadata left out."""
    if isinstance(obj, BaseModel):
        body: Obj = obj.model_dump(mode="json", by_alias=True, exclude_none=True,
                                   serialize_as_any=True)
    else:
        body = dict(obj)
    return _complete(res, body)


def to_apply_body(res: ApiResource, obj: Resource | Obj) -> Obj:
    """A server-side apply configuration: only the fields the caller set, so the field
    manager owns exactly those (defaults stay the server's)."""
    if isinstance(obj, BaseModel):
        body: Obj = obj.model_dump(mode="json", by_alias=True, exclude_unset=True,
                                   exclude_none=True, serialize_as_any=True)
        meta = obj.metadata
        body.setdefault("metadata", {}).update(
            {k: v for k, v in (("name", meta.name), ("namespace", meta.namespace)) if v})
    else:
        body = dict(obj)
    return _complete(res, body)


def _complete(res: ApiResource, body: Obj) -> Obj:
    body["apiVersion"] = body.get("apiVersion") or res.api_version
    if res.kind:
        body["kind"] = body.get("kind") or res.kind
    meta = {k: v for k, v in (body.get("metadata") or {}).items()
            if v not in ("", None, [], {}) and k != "managedFields"}
    body["metadata"] = meta
    return body


def meta_of(obj: Resource | Obj) -> tuple[str, str]:
    """(namespace, name) of an object."""
    if isinstance(obj, Resource):
        return obj.metadata.namespace, obj.metadata.name
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def resource_version(obj: Resource | Obj) -> str:
    if isinstance(obj, Resource):
        return obj.metadata.resourceVersion
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def conditions(obj: Resource | Obj | None) -> list[Obj]:
    """The object's status conditions as dicts (typed or not)."""
    if obj is None:
        return []
    raw = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    found = (raw.get("status") or {}).get("conditions") if isinstance(raw, dict) else None
    return [c for c in found or [] if isinstance(c, dict)]


def is_ready(obj: Resource | Obj | None) -> bool:
    """Ready=True for the object's current generation (a condition from before the last
    spec change says nothing about the new spec)."""
    if obj is None:
        return False
    raw = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    generation = (raw.get("metadata") or {}).get("generation")
    for cond in conditions(raw):
        if cond.get("type") == "Ready":
            observed = cond.get("observedGeneration")
            current = observed is None or generation is None or observed >= generation
            return bool(cond.get("status") == "True" and current)
    return False
