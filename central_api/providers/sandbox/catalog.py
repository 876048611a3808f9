"""The sandbox's flavors, images and volume types, and how a server's request picks one.

Flavor names follow the SCS flavor naming standard (scs-0100-v3), so what users learn in the
sandbox carries over to every SCS cloud:

* ``SCS-<vCPUs>V-<RAM GiB>``: generic x86-64 (amd64), shared vCPUs, no root disk in the name
  (the mandatory SCS flavors from scs-0103, e.g. ``SCS-2V-4``, ``SCS-4V-16``).
* ``SCS-1L-1``: the low-performance (oversubscribed) vCPU flavor; never picked automatically.
* ``..._a``: the standard's CPU-architecture extension for ARM v8+ (arm64),
  e.g. ``SCS-2V-4_a``.
* ``..._G<vendor><generation>-<units>[h]``: the standard's pass-through GPU extension, e.g.
  ``SCS-8V-32_GNl-58`` = one NVIDIA Ada Lovelace GPU with 58 SMs, i.e. one NVIDIA L4
  (model ``nvidia-l4``); ``SCS-16V-128_GNa-108h`` = one NVIDIA A100 (``nvidia-a100``).
  Each GPU flavor carries exactly one GPU; the model name is catalogue data, not in the name.

Images exist per architecture under the same name (like Glance images that differ in their
``architecture`` property); a server's ``architecture`` picks the variant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..base import InvalidRequest
from .settings import PREFIX


@dataclass(frozen=True)
class Flavor:
    name: str
    vcpus: int
    ram_mib: int
    architecture: str = "amd64"
    gpu_model: str = ""
    gpu_count: int = 0
    low_performance: bool = False


@dataclass(frozen=True)
class Image:
    name: str
    architecture: str
    min_disk_gib: int = 5


def _generic(vcpus: int, ram_gib: int, arm: bool = False) -> Flavor:
    suffix = "_a" if arm else ""
    return Flavor(f"SCS-{vcpus}V-{ram_gib}{suffix}", vcpus, ram_gib * 1024,
                  "arm64" if arm else "amd64")


_SIZES = [(1, 2), (1, 4), (1, 8), (2, 4), (2, 8), (2, 16), (4, 8), (4, 16), (4, 32),
          (8, 16), (8, 32), (16, 32), (16, 64), (32, 64), (32, 128)]
_ARM_SIZES = [(1, 2), (2, 4), (2, 8), (4, 8), (4, 16), (8, 16), (8, 32), (16, 32), (16, 64)]

FLAVORS: dict[str, Flavor] = {f.name: f for f in [
    Flavor("SCS-1L-1", 1, 1024, low_performance=True),
    *(_generic(c, r) for c, r in _SIZES),
    *(_generic(c, r, arm=True) for c, r in _ARM_SIZES),
    Flavor("SCS-4V-16_GNl-58", 4, 16 * 1024, gpu_model="nvidia-l4", gpu_count=1),
    Flavor("SCS-8V-32_GNl-58", 8, 32 * 1024, gpu_model="nvidia-l4", gpu_count=1),
    Flavor("SCS-16V-128_GNa-108h", 16, 128 * 1024, gpu_model="nvidia-a100", gpu_count=1),
]}

IMAGES: list[Image] = [
    Image(name, arch) for name in ("ubuntu-24.04", "ubuntu-22.04", "debian-12")
    for arch in ("amd64", "arm64")
]

VOLUME_TYPES = ("standard", "ssd", "encrypted")
DEFAULT_VOLUME_TYPE = "standard"


def image(name: str, architecture: str) -> Image:
    """The image ``name`` built for ``architecture``; InvalidRequest says what exists."""
    variants = [i for i in IMAGES if i.name == name]
    if not variants:
        known = ", ".join(sorted({i.name for i in IMAGES}))
        raise InvalidRequest(f"{PREFIX}: unknown image {name!r} (available: {known})")
    for candidate in variants:
        if candidate.architecture == architecture:
            return candidate
    archs = ", ".join(sorted(i.architecture for i in variants))
    raise InvalidRequest(f"{PREFIX}: image {name!r} is not available for {architecture} "
                         f"(only {archs})")


def image_exists(name: str) -> bool:
    return any(i.name == name for i in IMAGES)


def volume_type(name: str) -> str:
    chosen = name or DEFAULT_VOLUME_TYPE
    if chosen not in VOLUME_TYPES:
        raise InvalidRequest(f"{PREFIX}: unknown volume type {name!r} "
                             f"(available: {', '.join(VOLUME_TYPES)})")
    return chosen


def _gpu_fits(flavor: Flavor, gpu: Mapping[str, Any] | None) -> bool:
    if not gpu:
        return flavor.gpu_count == 0
    model = str(gpu.get("model") or "")
    return (flavor.gpu_count >= int(gpu.get("count") or 1)
            and (not model or model == flavor.gpu_model))


def _describe(resources: Mapping[str, Any] | None, architecture: str,
              gpu: Mapping[str, Any] | None) -> str:
    parts = []
    if resources:
        parts.append(f"{resources.get('cpu')} vCPUs, {resources.get('memoryMiB')} MiB RAM")
    parts.append(architecture)
    if gpu:
        parts.append(f"{gpu.get('count') or 1}x GPU {gpu.get('model') or '(any model)'}")
    return ", ".join(parts)


def select_flavor(flavor: str, resources: Mapping[str, Any] | None, architecture: str,
                  gpu: Mapping[str, Any] | None) -> Flavor:
    """The named flavor, checked against the request, or the smallest one that fits.

    "Smallest" orders by vCPUs, then RAM, then GPU count; low-performance (``L``) flavors
    are only used when named.
    """
    if flavor:
        found = FLAVORS.get(flavor)
        if found is None:
            raise InvalidRequest(f"{PREFIX}: unknown flavor {flavor!r}")
        if found.architecture != architecture:
            raise InvalidRequest(f"{PREFIX}: flavor {flavor!r} is {found.architecture}, but "
                                 f"the server asks for {architecture}")
        if gpu and not _gpu_fits(found, gpu):
            raise InvalidRequest(f"{PREFIX}: flavor {flavor!r} does not provide the requested "
                                 f"GPU ({_describe(None, architecture, gpu)})")
        return found
    if not resources:
        raise InvalidRequest(f"{PREFIX}: give a flavor or resources")
    cpu, ram = int(resources.get("cpu") or 1), int(resources.get("memoryMiB") or 0)
    fitting = [f for f in FLAVORS.values()
               if f.architecture == architecture and not f.low_performance
               and f.vcpus >= cpu and f.ram_mib >= ram and _gpu_fits(f, gpu)]
    if not fitting:
        raise InvalidRequest(f"{PREFIX}: no flavor fits {_describe(resources, architecture, gpu)}"
                             " (see the sandbox flavor catalogue)")
    return min(fitting, key=lambda f: (f.vcpus, f.ram_mib, f.gpu_count, f.name))
