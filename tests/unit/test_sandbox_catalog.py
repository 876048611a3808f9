"""The sandbox flavor and image catalogue: SCS flavor names, and picking the smallest flavor
that fits a server's resources, architecture and GPU request."""

from __future__ import annotations

import re
from typing import Any

import pytest

from central_api.providers.base import InvalidRequest
from central_api.providers.sandbox.catalog import FLAVORS, image, select_flavor, volume_type

SCS_NAME = re.compile(r"^SCS-\d+[LVTC]-\d+(_a)?(_G[NAI][a-z]?-\d+h*)?$")


def pick(cpu: int, mem: int, arch: str = "amd64", gpu: dict[str, Any] | None = None) -> str:
    return select_flavor("", {"cpu": cpu, "memoryMiB": mem}, arch, gpu).name


def test_every_flavor_name_follows_the_scs_naming_standard() -> None:
    assert all(SCS_NAME.match(name) for name in FLAVORS), [n for n in FLAVORS
                                                           if not SCS_NAME.match(n)]
    for flavor in FLAVORS.values():
        assert f"-{flavor.vcpus}" in flavor.name and f"-{flavor.ram_mib // 1024}" in flavor.name


def test_resources_pick_the_smallest_fitting_flavor() -> None:
    assert pick(1, 512) == "SCS-1V-2"          # never the low-performance SCS-1L-1
    assert pick(2, 4096) == "SCS-2V-4"
    assert pick(2, 5000) == "SCS-2V-8"
    assert pick(3, 1024) == "SCS-4V-8"
    assert pick(1, 16 * 1024) == "SCS-2V-16"


def test_arm64_gets_an_arm_flavor() -> None:
    assert pick(2, 4096, "arm64") == "SCS-2V-4_a"
    assert FLAVORS["SCS-2V-4_a"].architecture == "arm64"


def test_gpu_requests_get_a_gpu_flavor_of_the_right_model() -> None:
    assert pick(2, 4096, gpu={"count": 1, "model": "nvidia-l4"}) == "SCS-4V-16_GNl-58"
    assert pick(2, 4096, gpu={"count": 1, "model": ""}) == "SCS-4V-16_GNl-58"
    assert pick(2, 4096, gpu={"count": 1, "model": "nvidia-a100"}) == "SCS-16V-128_GNa-108h"
    assert pick(8, 4096) == "SCS-8V-16"  # no GPU asked: no GPU flavor


@pytest.mark.parametrize("args,message", [
    ((64, 1024), "no flavor fits 64 vCPUs, 1024 MiB RAM, amd64"),
    ((32, 1024, "arm64"), "no flavor fits 32 vCPUs, 1024 MiB RAM, arm64"),
    ((2, 1024, "arm64", {"count": 1, "model": ""}), "no flavor fits .* arm64, 1x GPU"),
    ((2, 1024, "amd64", {"count": 2, "model": "nvidia-l4"}), "2x GPU nvidia-l4"),
    ((2, 1024, "amd64", {"count": 1, "model": "nvidia-h100"}), "GPU nvidia-h100")])
def test_no_fitting_flavor_is_an_invalid_request(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        pick(*args)


def test_named_flavor_is_checked_against_the_request() -> None:
    assert select_flavor("SCS-1L-1", None, "amd64", None).name == "SCS-1L-1"
    with pytest.raises(InvalidRequest, match="unknown flavor 'm1.small'"):
        select_flavor("m1.small", None, "amd64", None)
    with pytest.raises(InvalidRequest, match="'SCS-2V-4' is amd64, but the server asks for "
                                             "arm64"):
        select_flavor("SCS-2V-4", None, "arm64", None)
    with pytest.raises(InvalidRequest, match="does not provide the requested GPU"):
        select_flavor("SCS-4V-16", None, "amd64", {"count": 1, "model": ""})


def test_images_exist_per_architecture() -> None:
    assert image("ubuntu-24.04", "arm64").architecture == "arm64"
    assert image("debian-12", "amd64").name == "debian-12"
    with pytest.raises(InvalidRequest, match="unknown image 'windows'"):
        image("windows", "amd64")


def test_volume_types() -> None:
    assert volume_type("") == "standard"
    with pytest.raises(InvalidRequest, match="unknown volume type 'gold'"):
        volume_type("gold")
