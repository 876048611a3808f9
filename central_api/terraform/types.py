"""The provider's own description of a kind: plain data, cheap to import and to cache.

Terraform starts the provider process three or four times per command; this module and
:mod:`.schema` are all a start needs before Terraform asks for something of the API, so the
SDK (and with it the kinds' pydantic models) is imported only then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .schema import Node

if TYPE_CHECKING:
    from ..client import ApiResource


@dataclass(frozen=True)
class Where:
    """Where a kind's objects are served (the SDK's ApiResource, without importing it)."""

    group: str
    version: str
    plural: str
    namespaced: bool
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def sdk(self) -> ApiResource:
        """The SDK's resource, answering dicts."""
        from ..client import ApiResource

        return ApiResource(self.group, self.version, self.plural, self.namespaced, self.kind)


@dataclass(frozen=True)
class TfKind:
    """One kind as Terraform sees it."""

    type_name: str
    res: Where
    resource: Node | None
    """The resource schema's root object; None for kinds that cannot be written."""
    data: Node
    """The data source schema's root object."""
    waits: bool
    """The kind reports a Ready condition: create and update wait for it."""


@dataclass(frozen=True)
class TfAction:
    """An action subresource read as a data source (POST, answer's status)."""

    type_name: str
    res: Where
    subresource: str
    request_kind: str
    api_version: str
    data: Node
