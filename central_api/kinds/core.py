"""Core ``v1`` kinds: Namespace and Secret."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import Field

from ..machinery.errors import Cause
from .catalog import Catalog
from .common import Model, Resource
from .kind import Column, ResourceType, Strategy, declare

NAMESPACE_FINALIZER = "kubernetes"


class NamespaceSpec(Model):
    finalizers: list[str] = Field(
        default_factory=list,
        description="Must be empty before the namespace is removed; the server empties it "
                    "once everything in the namespace is deleted.")


class NamespaceStatus(Model):
    phase: Literal["Active", "Terminating"] = Field("Active", description="Lifecycle phase.")


class Namespace(Resource):
    """Namespace provides a scope for names: the unit of isolation inside a tenant."""

    spec: NamespaceSpec = Field(default_factory=NamespaceSpec)
    status: NamespaceStatus = Field(default_factory=NamespaceStatus)


class NamespaceStrategy(Strategy):
    """Strategies run before validation, so they leave values of a wrong type (a ``spec``
    that is a list) alone: validation reports them with their field path."""

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        if obj.get("spec") is None:
            obj["spec"] = {}
        spec = obj["spec"]
        if isinstance(spec, dict):
            if spec.get("finalizers") is None:
                spec["finalizers"] = []
            finalizers = spec["finalizers"]
            if isinstance(finalizers, list) and NAMESPACE_FINALIZER not in finalizers:
                finalizers.append(NAMESPACE_FINALIZER)
        obj["status"] = {"phase": "Active"}

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        terminating = new.get("metadata", {}).get("deletionTimestamp")
        new["status"] = {"phase": "Terminating" if terminating else "Active"}

    def pending_finalizers(self, obj: dict[str, Any]) -> list[str]:
        spec = obj.get("spec")
        finalizers = spec.get("finalizers") if isinstance(spec, dict) else None
        return list(finalizers) if isinstance(finalizers, list) else []


class Secret(Resource):
    """Secret holds sensitive data; values are encrypted at rest."""

    data: dict[str, str] = Field(
        default_factory=dict, description="Base64-encoded secret values by key.",
        json_schema_extra={"additionalProperties": {"type": "string", "format": "byte"}})
    stringData: dict[str, str] = Field(
        default_factory=dict,
        description="Write-only plain-text values, merged into data on write.")
    type: str = Field("Opaque", description="Used to facilitate programmatic handling.")
    immutable: bool | None = Field(None, description="If true, data cannot be changed.")


class SecretStrategy(Strategy):
    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        _fold_string_data(obj)

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        _fold_string_data(new)

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None,
                 catalog: Catalog) -> list[Cause]:
        causes = []
        data = obj.get("data")
        for key, value in (data if isinstance(data, dict) else {}).items():
            if not isinstance(value, str):
                continue  # as a data that is no map: the schema's validation reports it
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                causes.append(Cause(f"data[{key}]", "Invalid value: must be base64-encoded"))
        if old is not None and old.get("immutable") and (
                obj.get("data") != old.get("data") or obj.get("immutable") is not True):
            causes.append(Cause("data", "Forbidden: field is immutable when `immutable` is set",
                                "FieldValueForbidden"))
        return causes


def _fold_string_data(obj: dict[str, Any]) -> None:
    """stringData is write-only: merge it into data, as kube-apiserver does.

    An empty ``type`` (protobuf bodies always carry the field) defaults to Opaque, as in kube.
    """
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None) or {}
    if obj.get("data") is None:
        obj["data"] = {}
    data = obj["data"]
    if not isinstance(string_data, dict) or not isinstance(data, dict):
        return
    for key, value in string_data.items():
        if isinstance(value, str):
            data[key] = base64.b64encode(value.encode()).decode()


class ServiceAccount(Resource):
    """An identity for automation (CI pipelines, Terraform, controllers) in one namespace.

    Tokens come from the ``token`` subresource (``kubectl create token``); deleting the
    ServiceAccount invalidates them at once."""

    automountServiceAccountToken: bool | None = Field(
        None, description="Kept for compatibility with Kubernetes clients; unused here.")


NAMESPACE: ResourceType = declare(
    "v1", "Namespace", Namespace, namespaced=False, short_names=["ns"],
    columns=[Column("Status", ".status.phase", description="Lifecycle phase")],
    strategy=NamespaceStrategy(), dns_label_names=True)

SECRET: ResourceType = declare(
    "v1", "Secret", Secret, status_subresource=False,
    columns=[Column("Type", ".type"), Column("Data", ".data", "integer",
                                              "Number of keys in data",
                                              compute=lambda o: len(o.get("data") or {}))],
    strategy=SecretStrategy())

SERVICE_ACCOUNT: ResourceType = declare(
    "v1", "ServiceAccount", ServiceAccount, short_names=["sa"], status_subresource=False)
SERVICE_ACCOUNT.action_subresources["token"] = ("TokenRequest", ("create",))
