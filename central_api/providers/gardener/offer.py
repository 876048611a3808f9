"""The ClusterProfile from the configured CloudProfile: Gardener's versions, no classes.

A version's classification is the CloudProfile's ``classification``; with the alpha
``lifecycle`` list instead, the stage that has started last; unset means ``supported``
(as Gardener treats it). A version whose ``expirationDate`` has passed is ``expired``
whatever it says. Gardener has no cluster classes, so the offer lists none and its
``provider`` says so; it offers no hosted control plane choice either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ...kinds.kaas import parse_version
from .mapping import Profile

CLASSIFICATIONS = ("preview", "supported", "deprecated", "expired")


def classification(entry: Mapping[str, Any], now: dt.datetime) -> str:
    found = str(entry.get("classification") or "")
    stages = [s for s in entry.get("lifecycle") or []
              if s.get("classification") in CLASSIFICATIONS
              and (not s.get("startTime") or _time(s["startTime"]) <= now)]
    if not found and stages:
        found = str(stages[-1]["classification"])
    expires = entry.get("expirationDate")
    if expires and _time(str(expires)) <= now:
        return "expired"
    return found if found in CLASSIFICATIONS else "supported"


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _versions(cloud_profile: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = ((cloud_profile.get("spec") or {}).get("kubernetes") or {}).get("versions") or []
    valid = []
    for entry in entries:
        try:
            parse_version(str(entry.get("version")))
        except (ValueError, IndexError):
            continue  # not a version the Cluster kind can name
        valid.append(entry)
    return sorted(valid, key=lambda e: parse_version(str(e["version"])))


def profile(cloud_profile: Mapping[str, Any], region: str,
            now: dt.datetime | None = None) -> Profile:
    """What the Shoot mapping needs: versions with their classification, the region's
    zones."""
    now = now or dt.datetime.now(dt.UTC)
    regions = (cloud_profile.get("spec") or {}).get("regions") or []
    zones = next(([str(z.get("name")) for z in r.get("zones") or []]
                  for r in regions if r.get("name") == region), [])
    return Profile({str(e["version"]): classification(e, now)
                    for e in _versions(cloud_profile)}, tuple(zones))


def offer(cloud_profile: Mapping[str, Any], now: dt.datetime | None = None
          ) -> dict[str, Any]:
    """The ClusterProfile spec."""
    now = now or dt.datetime.now(dt.UTC)
    name = (cloud_profile.get("metadata") or {}).get("name", "")
    versions = []
    for entry in _versions(cloud_profile):
        found: dict[str, Any] = {"version": str(entry["version"]),
                                 "classification": classification(entry, now)}
        if entry.get("expirationDate"):
            found["expirationDate"] = str(entry["expirationDate"])
        versions.append(found)
    return {"provider": f"gardener (CloudProfile {name}; no cluster classes: Gardener "
                        "has none)",
            "kubernetes": {"versions": versions}, "clusterClasses": [],
            "hostedControlPlanes": False}
