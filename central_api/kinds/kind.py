"""What the server knows about one served resource, and how a kind is declared once.

A :class:`ResourceType` is the single description the server works from: REST names, scope,
structural schema (validation, defaults, pruning, OpenAPI, ``kubectl explain``), printer
columns, subresources and a :class:`Strategy` with the kind's own rules. Built-in kinds are
declared with pydantic models through :func:`declare` (the model is also the type of the kind's
objects in controllers); CustomResourceDefinitions yield the same ``ResourceType`` from their
spec, so both are served by the same code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .common import COMMON_FIELDS, Resource, Spec
from .objectmeta import OBJECT_META_SCHEMA
from .schema import model_schema

if TYPE_CHECKING:
    from ..machinery.errors import Cause
    from .catalog import Catalog


@dataclass(frozen=True)
class Column:
    """A printer column: ``kubectl get`` shows it; ``priority`` 1 only with ``-o wide``."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""
    compute: Callable[[dict[str, Any]], Any] | None = None
    """For built-in columns that JSONPath cannot express (e.g. a count of keys)."""

    def to_crd(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        if self.format:
            out["format"] = self.format
        return out


AGE = Column("Age", ".metadata.creationTimestamp", "date")


class Strategy:
    """Kind-specific rules around the generic create/update flow (Kubernetes' rest strategy).

    The defaults implement the common behaviour of a kind with a status subresource: a write
    to the main resource cannot change status, a write to ``/status`` cannot change anything
    else, and ``metadata.generation`` counts spec changes.
    """

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        """Normalise a new object before validation (e.g. drop status, fold stringData)."""

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        """Normalise an update before validation."""

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None,
                 catalog: Catalog) -> list[Cause]:
        """Checks beyond the schema; ``catalog`` tells what else is served."""
        return []

    def pending_finalizers(self, obj: dict[str, Any]) -> list[str]:
        """Kind-specific finalizers besides metadata.finalizers (a Namespace's spec)."""
        return []


@dataclass
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    schema: dict[str, Any]
    """Structural OpenAPI v3 schema of the whole object (apiVersion, kind, metadata, ...)."""
    columns: list[Column] = field(default_factory=list)
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    status_subresource: bool = False
    strategy: Strategy = field(default_factory=Strategy)
    description: str = ""
    list_kind: str = ""
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch",
                              "update", "watch")
    builtin: bool = True
    """Built-in kinds accept strategic merge patches; custom resources answer 415, like k8s."""
    storage_version: bool = True
    dns_label_names: bool = False
    """Names must be RFC 1123 labels (they become namespaces or backend identifiers)."""
    path_segment_names: bool = False
    """Names only need to be a valid URL path segment (kube's ValidatePathSegmentName), so RBAC
    objects can be called ``system:basic-user`` like in Kubernetes."""
    action_subresources: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    """Subresources answered by a handler, e.g. a ServiceAccount's ``token``:
    name → (kind it returns, verbs)."""
    action_kinds: dict[str, ResourceType] = field(default_factory=dict)
    """The declared kind an action subresource takes and answers (its OpenAPI schema), e.g.
    a Cluster's ``adminkubeconfig``; the ``token`` TokenRequest is described by hand."""
    model: type[Resource] | None = None
    """The declared model (None for custom resources): the run-time type of the objects."""

    def subresources(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Every subresource with the kind it answers and its verbs (for discovery)."""
        subs = dict(self.action_subresources)
        if self.status_subresource:
            subs["status"] = (self.kind, ("get", "patch", "update"))
        return subs

    def __post_init__(self) -> None:
        if not self.list_kind:
            self.list_kind = self.kind + "List"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_resource(self) -> str:
        """The store's resource key: versions of one group/plural share their objects."""
        return f"{self.group or 'core'}/{self.plural}"

    @property
    def qualified(self) -> str:
        """``plural.group`` as used in messages (``tenants.tenancy.scs.community``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @cached_property
    def display_columns(self) -> list[Column]:
        """Name first, then the declared columns, then Age unless a column already shows it."""
        cols = [Column("Name", ".metadata.name", description="Name of the object")]
        cols += self.columns
        if not any(c.json_path == ".metadata.creationTimestamp" for c in self.columns):
            cols.append(AGE)
        return cols


def declare(api_version: str, kind: str, model: type[Resource], *, plural: str = "",
            namespaced: bool = True, columns: list[Column] | None = None,
            short_names: list[str] | None = None, categories: list[str] | None = None,
            status_subresource: bool = True, strategy: Strategy | None = None,
            dns_label_names: bool = False, path_segment_names: bool = False) -> ResourceType:
    """Declare a built-in kind from a pydantic model of its top-level fields.

    ``model`` describes what sits beside apiVersion/kind/metadata, usually ``spec`` and
    ``status``; its field types, defaults, constraints and descriptions become the schema.
    The kind's rules across fields (``Spec.causes``) become its strategy's, unless the kind
    brings its own ``strategy``.
    """
    group, _, version = api_version.rpartition("/")
    body = model_schema(model)
    for common in COMMON_FIELDS:
        body.get("properties", {}).pop(common, None)
    schema: dict[str, Any] = {
        "type": "object",
        "description": body.get("description", ""),
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this representation."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": copy.deepcopy(OBJECT_META_SCHEMA),
            **body.get("properties", {}),
        },
    }
    required = [name for name in body.get("required", []) if name not in COMMON_FIELDS]
    if required:
        schema["required"] = required
    return ResourceType(
        group=group, version=version, kind=kind, plural=plural or kind.lower() + "s",
        singular=kind.lower(), namespaced=namespaced, schema=schema,
        columns=columns or [], short_names=short_names or [], categories=categories or [],
        status_subresource=status_subresource, strategy=strategy or SpecRules(model),
        description=schema["description"], dns_label_names=dns_label_names,
        path_segment_names=path_segment_names, model=model)


class SpecRules(Strategy):
    """The default strategy of a declared kind: the rules its ``spec`` model declares.

    They run on the typed spec, so only once the spec has the declared shape; a spec that
    does not is refused by the schema's validation with the same request."""

    def __init__(self, model: type[Resource]) -> None:
        self.spec = _ruled_spec(model)
        """None: nothing to check (validating the spec would be wasted work)."""

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None,
                 catalog: Catalog) -> list[Cause]:
        if self.spec is None:
            return []
        try:
            spec = self.spec.model_validate(obj.get("spec"))
        except ValidationError:
            return []
        return spec.causes()


def _ruled_spec(model: type[Resource]) -> type[Spec] | None:
    """The model's spec type if it declares rules of its own."""
    declared = model.model_fields.get("spec")
    spec = declared.annotation if declared is not None else None
    if isinstance(spec, type) and issubclass(spec, Spec) and spec.causes is not Spec.causes:
        return spec
    return None
