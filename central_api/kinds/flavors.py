"""What an SCS flavor name says about its size (SCS standard scs-0100-v3, flavor naming).

Admission counts node pools and servers against a tenant's ``cores`` and ``ramMiB`` quotas
before any backend is asked, so the size must come from the name itself rather than from a
cloud's flavor list (which the API server does not have, and which differs per backend).
The standard makes that possible: every SCS flavor name starts with its vCPUs and RAM:

``SCS-<vCPUs><L|V|T|C>[i]-<RAM GiB>[u][o][-[<n>x]<disk GiB>[n|h|s|p]][_<extensions>]``

e.g. ``SCS-4V-8``, ``SCS-2V-4-20s``, ``SCS-2V-4_a`` (arm64), ``SCS-1L-1``, and GPU flavors
such as ``SCS-16V-64-500s_GNa-14h``. Extensions (hypervisor, CPU, GPU) do not change the
vCPU and RAM counts, so they are accepted without being interpreted here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(
    r"^SCS-(?P<cpus>[1-9][0-9]*)[LVTC]i?"
    r"-(?P<ram>[0-9]+(?:\.[0-9]+)?)u?o?"
    r"(?:-(?:[1-9][0-9]*x)?[0-9]+[nhsp]?)?"
    r"(?:_[A-Za-z0-9_.-]+)?$")


@dataclass(frozen=True)
class FlavorSize:
    cores: int
    ram_mib: int


def flavor_size(name: str) -> FlavorSize | None:
    """vCPUs and RAM (MiB) an SCS flavor name states; None for a name that is not one."""
    found = _NAME.match(name)
    if found is None:
        return None
    return FlavorSize(int(found["cpus"]), round(float(found["ram"]) * 1024))


FORMAT = "SCS-<vCPUs>V-<RAM GiB>[-<disk GiB>][_<extensions>], e.g. SCS-4V-8"
"""How a refusal describes a flavor name admission can count."""
