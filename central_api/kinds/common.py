"""Building blocks shared by kind declarations: conditions and the status base."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Base for declared schemas: field names are the wire names (camelCase)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Condition(Model):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str = Field(description="Type of condition in CamelCase, e.g. Ready.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field("", description="Machine-readable reason in CamelCase.")
    message: str = Field("", description="Human-readable details.")
    lastTransitionTime: str | None = Field(None, json_schema_extra={"format": "date-time"})
    observedGeneration: int | None = None


class Status(Model):
    """Status every reconciled kind reports: conditions and the generation they describe."""

    observedGeneration: int | None = Field(
        None, description="The metadata.generation the status was computed for.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Current observations of the object's state.",
        json_schema_extra={"x-kubernetes-list-type": "map",
                           "x-kubernetes-list-map-keys": ["type"]})


READY_COLUMN_PATH = '.status.conditions[?(@.type=="Ready")].status'
