"""Tunables of the simulated cloud: lifecycle delays, quotas, address ranges, clock.

Defaults are chosen so that a try-out feels like a real cloud (a server takes a couple of
seconds to boot) while tests and control-plane benchmarks set ``speed`` to make every
transition instant. Delays are written into each record when it is created, so changing the
speed later (or restarting with other settings) never changes resources that already exist.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

PREFIX = "sandbox (simulated)"
"""Starts every message the sandbox produces, so nobody mistakes it for a real cloud."""

READY_DELAYS: Mapping[str, float] = {
    "Network": 0.2, "Subnet": 0.2, "Router": 0.5, "SecurityGroup": 0.1, "Keypair": 0.0,
    "Volume": 1.0, "Image": 2.0, "Server": 2.0, "FloatingIP": 0.3, "LoadBalancer": 3.0,
    "Cluster": 0.0,
}
"""Seconds from create (at speed 1) until a resource turns ACTIVE (a Cluster follows its own
plan, see :mod:`.clusters`)."""

DELETE_DELAYS: Mapping[str, float] = {
    "Network": 0.2, "Subnet": 0.2, "Router": 0.3, "SecurityGroup": 0.1, "Keypair": 0.0,
    "Volume": 0.5, "Image": 0.2, "Server": 1.0, "FloatingIP": 0.2, "LoadBalancer": 1.5,
    "Cluster": 3.0,
}
"""Seconds (at speed 1) a deleted resource stays in DELETING before it disappears."""

RESIZE_DELAY = 1.0
"""Seconds (at speed 1) a server spends PENDING after a resize (flavor change)."""

DEFAULT_QUOTAS: Mapping[str, int] = {
    "instances": 50, "cores": 200, "ramMiB": 512 * 1024, "volumes": 50, "gigabytes": 5000,
    "floatingIPs": 20, "networks": 20, "subnets": 40, "routers": 10, "securityGroups": 50,
    "keypairs": 100, "loadBalancers": 10, "images": 20,
}
"""Per namespace (= simulated project); override per namespace with ``set_quota``."""

EXTERNAL_CIDR = "203.0.113.0/24"
"""TEST-NET-3 (RFC 5737): floating and router gateway IPs can never be mistaken for real ones."""


@dataclass
class SandboxSettings:
    """How the sandbox behaves; every field has a sensible default.

    ``speed`` divides every delay: 10 makes the cloud ten times faster. ``0`` (or
    ``math.inf``) means *instant*: resources are ACTIVE on create and gone on delete.
    """

    speed: float = 1.0
    ready_delays: Mapping[str, float] = field(default_factory=dict)
    """Per-kind overrides of :data:`READY_DELAYS` (merged with the defaults)."""
    delete_delays: Mapping[str, float] = field(default_factory=dict)
    """Per-kind overrides of :data:`DELETE_DELAYS` (merged with the defaults)."""
    quotas: Mapping[str, int] = field(default_factory=dict)
    """Overrides of :data:`DEFAULT_QUOTAS` for every namespace (merged with the defaults)."""
    external_cidr: str = EXTERNAL_CIDR
    fault_cache_seconds: float = 0.5
    """How long fault records are cached; another process' changes show up within this time."""
    clock: Callable[[], float] = time.time
    """Wall-clock seconds; records outlive the process, so this must not be monotonic time."""

    def __post_init__(self) -> None:
        if self.speed < 0 or math.isnan(self.speed):
            raise ValueError("speed must be >= 0 (0 or inf: instant)")
        self.ready_delays = {**READY_DELAYS, **self.ready_delays}
        self.delete_delays = {**DELETE_DELAYS, **self.delete_delays}
        self.quotas = {**DEFAULT_QUOTAS, **self.quotas}

    @property
    def instant(self) -> bool:
        return self.speed == 0 or math.isinf(self.speed)

    def scaled(self, seconds: float) -> float:
        """A delay at the configured speed."""
        return 0.0 if self.instant else max(0.0, seconds / self.speed)

    def ready_delay(self, kind: str) -> float:
        return self.scaled(self.ready_delays.get(kind, 0.0))

    def delete_delay(self, kind: str) -> float:
        return self.scaled(self.delete_delays.get(kind, 0.0))
