"""Flavor and image selection for Servers: size, CPU architecture and GPUs.

Conventions (operators tag their flavors and images accordingly):

- **Architecture.** A flavor's architecture is the first of its extra specs ``cpu_arch``,
  ``capabilities:cpu_arch``, ``aggregate_instance_extra_specs:cpu_arch``, ``hw_architecture``;
  an image's is its property ``hw_architecture`` or ``architecture`` (SCS image metadata).
  Values ``x86_64``/``amd64`` mean ``amd64``, ``aarch64``/``arm64`` mean ``arm64``. A flavor
  without such a spec fits any architecture (the image steers scheduling), but flavors
  explicitly tagged with the requested architecture are preferred.
- **GPUs.** A flavor offers GPUs through ``scs:gpu-count`` + ``scs:gpu-model`` (e.g.
  ``nvidia-l4``), or Nova's ``pci_passthrough:alias`` (``<alias>:<count>``; the alias is the
  model), or ``resources:VGPU=<count>`` (model from ``scs:gpu-model``). A GPU request fits a
  flavor with at least that many GPUs of the model (any model when empty); a request without
  GPUs never gets a GPU flavor, so scarce GPUs are not spent by accident.
- **Size.** Among fitting flavors the smallest wins: fewest GPUs, then vCPUs, then RAM, then
  disk, then name (for a stable choice).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..base import InvalidRequest

FLAVOR_ARCH_KEYS = ("cpu_arch", "capabilities:cpu_arch",
                    "aggregate_instance_extra_specs:cpu_arch", "hw_architecture")
IMAGE_ARCH_KEYS = ("hw_architecture", "architecture")
GPU_COUNT_KEY = "scs:gpu-count"
GPU_MODEL_KEY = "scs:gpu-model"
PCI_ALIAS_KEY = "pci_passthrough:alias"
VGPU_KEY = "resources:VGPU"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "x86-64": "amd64", "x64": "amd64",
         "aarch64": "arm64", "arm64": "arm64", "armv8": "arm64"}
BACKEND_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
"""The Kubernetes-style names of the spec → the names Nova/Glance use."""


def normalise_arch(value: Any) -> str:
    """``x86_64`` → ``amd64``, ``aarch64`` → ``arm64``; unknown values pass through."""
    text = str(value or "").strip().lower()
    # Aggregate specs may carry an operator prefix such as "<in> x86_64".
    text = text.replace("<in>", "").strip()
    return _ARCH.get(text, text)


def _specs(flavor: Any) -> Mapping[str, Any]:
    return getattr(flavor, "extra_specs", None) or {}


def flavor_arch(flavor: Any) -> str:
    """The architecture a flavor is tagged with, or "" when it is architecture-neutral."""
    specs = _specs(flavor)
    return next((normalise_arch(specs[k]) for k in FLAVOR_ARCH_KEYS if specs.get(k)), "")


def image_arch(image: Any) -> str:
    """The architecture an image declares (top-level attribute or property), or ""."""
    properties = getattr(image, "properties", None) or {}
    for key in IMAGE_ARCH_KEYS:
        value = getattr(image, key, None) or properties.get(key)
        if value:
            return normalise_arch(value)
    return ""


def flavor_gpus(flavor: Any) -> tuple[int, str]:
    """(GPU count, model) a flavor provides; (0, "") for none."""
    specs = _specs(flavor)
    model = str(specs.get(GPU_MODEL_KEY) or "").lower()
    if specs.get(GPU_COUNT_KEY):
        return int(specs[GPU_COUNT_KEY]), model
    if specs.get(PCI_ALIAS_KEY):
        count, alias = 0, ""
        for part in str(specs[PCI_ALIAS_KEY]).split(","):
            name, _, number = part.strip().partition(":")
            count += int(number or 1)
            alias = alias or name.strip().lower()
        return count, model or alias
    if specs.get(VGPU_KEY):
        return int(specs[VGPU_KEY]), model
    return 0, ""


def gpu_fits(flavor: Any, gpu: Mapping[str, Any] | None) -> bool:
    count, model = flavor_gpus(flavor)
    if not gpu:
        return count == 0
    wanted_model = str(gpu.get("model") or "").lower()
    return count >= int(gpu.get("count") or 1) and (not wanted_model or model == wanted_model)


def arch_fits(flavor: Any, architecture: str) -> bool:
    arch = flavor_arch(flavor)
    return not arch or arch == normalise_arch(architecture)


def check_flavor(flavor: Any, architecture: str, gpu: Mapping[str, Any] | None) -> None:
    """Refuse an explicitly named flavor that contradicts the requested arch or GPUs."""
    if not arch_fits(flavor, architecture):
        raise InvalidRequest(f"flavor {flavor.name} is for {flavor_arch(flavor)}, not "
                             f"{normalise_arch(architecture)}")
    if gpu and not gpu_fits(flavor, gpu):
        raise InvalidRequest(f"flavor {flavor.name} does not offer {gpu.get('count', 1)} "
                             f"GPU(s) {gpu.get('model') or ''}".rstrip())


def pick_flavor(flavors: Iterable[Any], cpu: int, memory_mib: int, architecture: str = "amd64",
                gpu: Mapping[str, Any] | None = None) -> Any:
    """The smallest enabled flavor with at least ``cpu`` vCPUs and ``memory_mib`` RAM that
    fits the architecture and GPU request; InvalidRequest names what was asked if none does."""
    arch = normalise_arch(architecture)
    fitting = [f for f in flavors
               if not getattr(f, "is_disabled", False)
               and int(f.vcpus or 0) >= cpu and int(f.ram or 0) >= memory_mib
               and arch_fits(f, arch) and gpu_fits(f, gpu)]
    if not fitting:
        wanted = f"{cpu} vCPU, {memory_mib} MiB, {arch}"
        if gpu:
            wanted += f", {gpu.get('count', 1)} GPU {gpu.get('model') or ''}".rstrip()
        raise InvalidRequest(f"no flavor offers {wanted}")
    return min(fitting, key=lambda f: (0 if flavor_arch(f) == arch else 1,
                                       flavor_gpus(f)[0], int(f.vcpus or 0), int(f.ram or 0),
                                       int(getattr(f, "disk", 0) or 0), str(f.name)))


def pick_image(images: Iterable[Any], name: str, architecture: str) -> Any:
    """The active image called ``name`` for ``architecture`` (untagged images fit any)."""
    arch = normalise_arch(architecture)
    candidates = [i for i in images if i.name == name
                  and str(getattr(i, "status", "active")).lower() == "active"]
    if not candidates:
        raise InvalidRequest(f"image {name!r} not found")
    fitting = [i for i in candidates if image_arch(i) in ("", arch)]
    if not fitting:
        raise InvalidRequest(f"image {name!r} exists, but not for {arch}")
    # Prefer an image explicitly tagged for the architecture, then the newest.
    return min(fitting, key=lambda i: (0 if image_arch(i) == arch else 1,
                                       _negated(str(getattr(i, "created_at", "") or ""))))


def _negated(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)
