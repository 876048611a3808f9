"""Admission against the ClusterProfile: a pinned cluster class must install the version."""

from __future__ import annotations

import pytest

from central_api.kinds.kaas import ClusterProfile, ClusterSpec
from central_api.providers.sandbox.clusters import OFFER

PROFILE = ClusterProfile.model_validate({"metadata": {"name": "default"}, "spec": OFFER})


def causes(version: str, cluster_class: str) -> list[str]:
    spec = ClusterSpec.model_validate({"kubernetesVersion": version,
                                       "clusterClass": cluster_class})
    return [f"{c.field}: {c.message}" for c in PROFILE.causes(spec, None)]


@pytest.mark.parametrize("version", ["1.34", "1.34.6"])
def test_a_class_goes_with_its_minor_or_its_own_patch(version: str) -> None:
    assert causes(version, "openstack-scs2-1-34-v1") == []


@pytest.mark.parametrize(("version", "installs"), [("1.34.7", "1.34.6"), ("1.33", "1.34.6")])
def test_a_class_that_installs_another_version_is_refused(version: str, installs: str) -> None:
    assert causes(version, "openstack-scs2-1-34-v1") == [
        f'spec.clusterClass: Invalid value: "openstack-scs2-1-34-v1" installs {installs}, '
        f"not {version}"]
