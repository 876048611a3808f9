"""Building blocks shared by kind declarations: the object base, conditions, references.

A kind's pydantic model is both its schema (through :func:`~.kind.declare`) and the type its
objects have at run time: controllers receive instances of it. The schema takes only what a
kind declares; ``apiVersion``, ``kind`` and ``metadata`` are every object's
(:data:`~.objectmeta.OBJECT_META_SCHEMA`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from ..machinery.errors import Cause

COMMON_FIELDS = ("apiVersion", "kind", "metadata")
"""Fields of every object; their schema is the server's, not a kind's."""


class Model(BaseModel):
    """Base for declared schemas: field names are the wire names (camelCase).

    Unknown fields are ignored rather than refused: stored objects were pruned to the schema
    when written, and an object stored before a field was dropped must still load."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ObjectMeta(Model):
    """The metadata controllers read; the rest (managed fields, owners) stays in the stored
    object, which the runtime keeps and writes back."""

    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    deletionTimestamp: str | None = None
    creationTimestamp: str | None = None


class Resource(Model):
    """Base of a kind's declaration; at run time one object of the kind."""

    apiVersion: str = ""
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


class Spec(Model):
    """Base of a desired state; :meth:`causes` holds the rules across its fields."""

    def causes(self) -> list[Cause]:
        """What admission refuses beyond the schema, as ``spec.``-rooted field causes."""
        return []


class LocalRef(Model):
    """A reference to an object of the named kind in the same namespace."""

    name: str = Field(min_length=1, max_length=253)


@dataclass(frozen=True)
class References:
    """Marks a :class:`LocalRef` field (or a list of them) with the kind it names, e.g.
    ``Annotated[LocalRef, References(Network)]``; controllers resolve it to the backend ID of
    the named object. The schema does not change (pydantic ignores the marker)."""

    target: type[Resource]
    at_creation: bool = False
    """Only creating the backend resource needs the referenced object (a Server's Image):
    it is resolved then and never compared afterwards, so replacing the Image does not touch
    a running Server."""
    absent: str | None = ""
    """What the backend is told when an optional reference is not set (a FloatingIP's
    ``None``: not associated)."""

    @property
    def many_key(self) -> str:
        """The backend's key for a list of IDs, e.g. ``networkIDs``."""
        return self.key + "s"

    @property
    def key(self) -> str:
        """The backend's key for one ID, e.g. ``networkID`` (``Network`` → ``network``)."""
        name = self.target.__name__
        return name[0].lower() + name[1:] + "ID"


Path = tuple[str | int, ...]
"""Field names and list indexes from a model to a value in it."""


def local_references(model: BaseModel, path: Path = ()
                     ) -> Iterator[tuple[Path, References, LocalRef | list[LocalRef] | None]]:
    """Every reference field in ``model`` and the models nested in it, in declaration
    order: where it is, what it names, and its value (a LocalRef, a list of them or None)."""
    for name, marker in _markers(type(model)).items():
        value = getattr(model, name)
        if marker is not None:
            yield (*path, name), marker, value
        elif isinstance(value, BaseModel):
            yield from local_references(value, (*path, name))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from local_references(item, (*path, name, i))


@cache
def _markers(model: type[BaseModel]) -> dict[str, References | None]:
    """The fields of ``model`` that are or may hold references, with their marker."""
    found: dict[str, References | None] = {}
    for name, field in model.model_fields.items():
        marker = next((m for m in field.metadata if isinstance(m, References)), None)
        if marker is not None or _may_hold_models(field.annotation):
            found[name] = marker
    return found


def _may_hold_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return bool(_markers(annotation))
    return any(_may_hold_models(arg) for arg in get_args(annotation))


class Condition(Model):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str = Field(description="Type of condition in CamelCase, e.g. Ready.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field("", description="Machine-readable reason in CamelCase.")
    message: str = Field("", description="Human-readable details.")
    lastTransitionTime: str | None = Field(None, json_schema_extra={"format": "date-time"})
    observedGeneration: int | None = None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Status(Model):
    """Status every reconciled kind reports: conditions and the generation they describe."""

    observedGeneration: int | None = Field(
        None, description="The metadata.generation the status was computed for.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Current observations of the object's state.",
        json_schema_extra={"x-kubernetes-list-type": "map",
                           "x-kubernetes-list-map-keys": ["type"]})

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def is_true(self, type_: str) -> bool:
        found = self.condition(type_)
        return found is not None and found.status == "True"

    def set_condition(self, type_: str, status: bool, reason: str, message: str = "", *,
                      generation: int | None) -> None:
        """One entry per type; ``lastTransitionTime`` only moves when the status value
        changes, so ``kubectl wait`` and humans see when it really flipped."""
        value: Literal["True", "False"] = "True" if status else "False"
        found = self.condition(type_)
        if found is None:
            found = Condition(type=type_, status=value, lastTransitionTime=now())
            self.conditions.append(found)
        elif found.status != value:
            found.lastTransitionTime = now()
        found.status, found.reason, found.message = value, reason, message[:1024]
        found.observedGeneration = generation


class Reconciled(Resource):
    """A kind a controller converges: the desired state and the status observed. Kinds
    narrow both types; controllers written for every such kind use these."""

    spec: Model = Field(default_factory=Model)
    status: Status = Field(default_factory=Status)

    def set_condition(self, type_: str, status: bool, reason: str, message: str = "") -> None:
        """A condition observed for the object's current generation."""
        self.status.set_condition(type_, status, reason, message,
                                  generation=self.metadata.generation)


READY_COLUMN_PATH = '.status.conditions[?(@.type=="Ready")].status'
