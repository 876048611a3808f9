"""``coordination.k8s.io/v1`` Lease: leader election among controller replicas."""

from __future__ import annotations

from pydantic import Field

from .common import Model, Resource
from .kind import Column, ResourceType, declare


class LeaseSpec(Model):
    holderIdentity: str | None = Field(None, description="Who holds the lease.")
    leaseDurationSeconds: int | None = Field(None, ge=1, description="How long a holder may "
                                                                     "go without renewing.")
    acquireTime: str | None = Field(None, description="When the current holder acquired it.")
    renewTime: str | None = Field(None, description="When the holder last renewed it.")
    leaseTransitions: int | None = Field(None, ge=0, description="Number of holder changes.")


class Lease(Resource):
    """A lease held by one replica at a time; the holder renews it before it expires."""

    spec: LeaseSpec = Field(default_factory=LeaseSpec)


LEASE: ResourceType = declare(
    "coordination.k8s.io/v1", "Lease", Lease, status_subresource=False,
    columns=[Column("Holder", ".spec.holderIdentity")])
