"""What the management cluster offers: the cluster stack's classes and their versions.

The SCS cluster-stack-operator names a ClusterClass and its ClusterStackRelease alike,
``<provider>-<stack>-<major>-<minor>-v<N>`` (``openstack-scs2-1-34-v2``; a pre-release is
``v1-alpha-1``), and the release's ``status.kubernetesVersion`` is the patch version the
class installs. The offer is every *ready* release of the configured stack whose ClusterClass
exists in the shared class namespace; where the management cluster serves no
ClusterStackReleases, v1beta2 ClusterClasses that list ``spec.kubernetesVersions`` stand in.

Cluster stacks publish no deprecation dates, so the classification is derived: the newest
stable class of a minor is ``supported``, older ones ``deprecated``, pre-releases
``preview``; a patch version takes the best classification of the classes installing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...kinds.kaas import parse_version
from ..base import InvalidRequest

RELEASES = ("clusterstack.x-k8s.io/v1alpha1", "clusterstackreleases")
CLASSES = ("cluster.x-k8s.io/v1beta2", "clusterclasses")
_NAME = re.compile(r"^(?P<stack>.+)-(?P<major>[0-9]+)-(?P<minor>[0-9]+)-v(?P<release>[0-9]+)"
                   r"(?P<pre>-.+)?$")
_RANK = {"supported": 0, "preview": 1, "deprecated": 2}


@dataclass(frozen=True)
class StackClass:
    """One ClusterClass of the stack and the patch version it installs."""

    name: str
    minor: tuple[int, int]
    release: int
    prerelease: bool
    kubernetes_version: str

    @property
    def order(self) -> tuple[int, int, int, int]:
        return (*self.minor, self.release, 0 if self.prerelease else 1)


def parse_name(name: str, stack: str) -> tuple[tuple[int, int], int, bool] | None:
    """``openstack-scs2-1-34-v2`` → ((1, 34), 2, False) for stack ``openstack-scs2``."""
    match = _NAME.match(name)
    if not match or match["stack"] != stack:
        return None
    return (int(match["major"]), int(match["minor"])), int(match["release"]), bool(match["pre"])


def stack_classes(releases: Iterable[Mapping[str, Any]] | None,
                  classes: Iterable[Mapping[str, Any]], stack: str) -> list[StackClass]:
    """The offered classes, oldest first (``releases`` None: the kind is not served)."""
    by_name = {str(c["metadata"]["name"]): c for c in classes}
    found = []
    if releases is None:
        pairs = [(name, _class_version(c)) for name, c in by_name.items()]
    else:
        pairs = [(str(r["metadata"]["name"]), str((r.get("status") or {}).get(
            "kubernetesVersion") or "")) for r in releases
            if (r.get("status") or {}).get("ready") is True and r["metadata"]["name"] in by_name]
    for name, version in pairs:
        parsed = parse_name(name, stack)
        version = version.removeprefix("v")
        if parsed is None or not _is_patch(version) or \
                parse_version(version)[:2] != parsed[0]:
            continue
        found.append(StackClass(name, parsed[0], parsed[1], parsed[2], version))
    return sorted(found, key=lambda c: c.order)


def _class_version(cluster_class: Mapping[str, Any]) -> str:
    versions = (cluster_class.get("spec") or {}).get("kubernetesVersions") or []
    usable = [str(v).removeprefix("v") for v in versions if _is_patch(str(v).removeprefix("v"))]
    return max(usable, key=parse_version, default="")


def _is_patch(version: str) -> bool:
    return re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version) is not None


def classification(cls: StackClass, classes: list[StackClass]) -> str:
    if cls.prerelease:
        return "preview"
    stable = [c for c in classes if c.minor == cls.minor and not c.prerelease]
    return "supported" if cls == max(stable, key=lambda c: c.order) else "deprecated"


def offer_spec(classes: list[StackClass], provider: str) -> dict[str, Any]:
    """The ClusterProfile spec (``kinds.kaas.ClusterProfileSpec``) of these classes."""
    offered = [{"name": c.name, "kubernetesVersion": c.kubernetes_version,
                "classification": classification(c, classes)} for c in classes]
    versions: dict[str, str] = {}
    for item in offered:
        old = versions.get(item["kubernetesVersion"])
        if old is None or _RANK[item["classification"]] < _RANK[old]:
            versions[item["kubernetesVersion"]] = item["classification"]
    return {"provider": provider, "hostedControlPlanes": False,
            "kubernetes": {"versions": [
                {"version": v, "classification": versions[v]}
                for v in sorted(versions, key=parse_version)]},
            "clusterClasses": offered}


def resolve(classes: list[StackClass], version: str, override: str) -> tuple[str, str]:
    """The class and patch version a spec's ``kubernetesVersion`` and ``clusterClass``
    name. A cluster stack's class installs one patch (its ClusterStackRelease's version),
    so the two always agree: an override fixes the patch (a different patch is refused);
    a patch picks the newest stable class installing it; a minor, the newest stable class
    of the minor and its patch."""
    wanted = parse_version(version)
    minor = [c for c in classes if c.minor == wanted[:2]]
    if not minor:
        offered = ", ".join(sorted({".".join(map(str, c.minor)) for c in classes}))
        raise InvalidRequest(f"spec.kubernetesVersion: no class of cluster stack installs "
                             f"Kubernetes {wanted[0]}.{wanted[1]} (offered: {offered})")
    if override:
        chosen = next((c for c in classes if c.name == override), None)
        if chosen is None or chosen.minor != wanted[:2]:
            raise InvalidRequest(f"spec.clusterClass: {override!r} is not a class of the "
                                 f"cluster stack for Kubernetes {wanted[0]}.{wanted[1]} "
                                 f"(offered: {', '.join(c.name for c in minor)})")
        if wanted[2] is not None and chosen.kubernetes_version != version:
            raise InvalidRequest(f"spec.clusterClass: {override!r} installs Kubernetes "
                                 f"{chosen.kubernetes_version}, not {version}")
        return chosen.name, chosen.kubernetes_version
    installing = [c for c in minor if wanted[2] is None or c.kubernetes_version == version]
    if not installing:
        raise InvalidRequest(f"spec.kubernetesVersion: Kubernetes {version} is not installed "
                             "by any class of the cluster stack (offered: " + ", ".join(
                                 sorted({c.kubernetes_version for c in minor})) + ")")
    chosen = ([c for c in installing if not c.prerelease] or installing)[-1]
    return chosen.name, chosen.kubernetes_version
