"""Which patch version a cluster's backend gets: automatic patch updates in the maintenance
window, decided by the Central API for every backend.

Why here: Cluster API has no maintenance window, and the Central API promises the same
behaviour whatever builds the cluster, so the KaaS controller resolves ``spec.kubernetesVersion``
to one concrete patch itself and the provider only ever gets that patch:

- A new cluster, or a version the user changes (a new minor, a higher patch), gets it at
  once: the spec's patch, or for a minor (``1.34``) the newest usable patch offered,
  preferring supported over deprecated over preview ones (as the Gardener provider and the
  SCS test plugin choose).
- A running cluster keeps its patch, except in its maintenance window, where it moves to the
  newest usable patch of the same minor when the spec names only a minor or
  ``maintenance.autoUpdate.kubernetesVersion`` is true (the default, as in Gardener), and
  always when its patch has expired (classification ``expired`` or its expiration date has
  passed): an expired version is moved off at the next window even when pinned. There is no
  automatic minor upgrade; a minor whose patches all expired is reported instead.
- A cluster whose ``spec.clusterClass`` pins a cluster-stack class gets the patch that class
  installs (from the offer) and is not moved; the status says so.
- Only a settled cluster is moved (the backend is not busy with another change), so a
  cluster that is still being built or scaled finishes that first.
- "Usable": offered and not expired (by classification or expiration date); automatic
  updates also skip ``preview`` versions, as Gardener's do (a user may still choose one).

The window (Gardener's ``maintenance.timeWindow``, or the default one when unset) and its
arithmetic are in :mod:`~central_api.kinds.timewindow`. The status says what waits, e.g.
"patch 1.34.8 scheduled for the window 22:00–23:00 +0100"; the controller comes back when
the window opens.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..kinds.kaas import ClusterProfileSpec, OfferedVersion, parse_version
from ..kinds.timewindow import Window


# -- the decision --------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    version: str
    """The patch the backend gets now."""
    pending: str = ""
    """A newer patch waiting for the window."""
    message: str = ""
    wait: float | None = None
    """Seconds until the window opens, when something waits for it."""


@dataclass(frozen=True)
class Running:
    """What the backend has: the patch it was last given, and whether it is settled."""

    version: str
    settled: bool


def _expired(entry: OfferedVersion, now: dt.datetime) -> bool:
    if entry.classification == "expired":
        return True
    if not entry.expirationDate:
        return False
    try:
        expires = dt.datetime.fromisoformat(entry.expirationDate.replace("Z", "+00:00"))
    except ValueError:
        return False
    if expires.tzinfo is None:  # a date, or a time without offset: UTC, as Gardener's
        expires = expires.replace(tzinfo=dt.UTC)
    return expires <= now


def plan(spec: dict[str, Any], running: Running | None, offer: dict[str, Any] | None,
         window: Window, now: dt.datetime) -> Plan:
    """The version for the backend (see the module doc). ``offer`` is the ClusterProfile
    spec (None while unknown: then the spec's version goes to the backend as it is on
    creation, and a running cluster keeps its patch)."""
    wanted = parse_version(str(spec["kubernetesVersion"]))
    profile = ClusterProfileSpec.model_validate(offer or {})
    pinned = next((c.kubernetesVersion for c in profile.clusterClasses
                   if spec.get("clusterClass") and c.name == spec["clusterClass"]), None)
    if pinned and wanted[2] is None and parse_version(pinned)[:2] == wanted[:2]:
        spec = {**spec, "kubernetesVersion": pinned}  # the class fixes the patch
        wanted = parse_version(pinned)
    entries = profile.kubernetes.versions
    minor = [e for e in entries if parse_version(e.version)[:2] == wanted[:2]]
    rank = {"supported": 0, "deprecated": 1, "preview": 2}
    newest = min((e for e in minor if not _expired(e, now)), default=None, key=lambda e: (
        rank.get(e.classification, 3), -(parse_version(e.version)[2] or 0)))
    current = parse_version(running.version) if running else None
    if running is None or current is None or current[2] is None \
            or current[:2] != wanted[:2] or (wanted[2] or 0) > current[2]:
        chosen = str(spec["kubernetesVersion"]) if wanted[2] is not None or newest is None \
            else newest.version
        return Plan(chosen)
    return _maintain(spec, running, minor, window, now)


def _maintain(spec: dict[str, Any], running: Running, minor: list[OfferedVersion],
              window: Window, now: dt.datetime) -> Plan:
    """A running cluster on its minor: keep its patch, or move it in the window to the
    newest patch that is neither expired nor a preview."""
    current = parse_version(running.version)
    patch = current[2] or 0  # plan() decided that a concrete patch runs
    newest = max((e for e in minor if e.classification != "preview" and not _expired(e, now)),
                 key=lambda e: parse_version(e.version)[2] or 0, default=None)
    entry = next((e for e in minor if parse_version(e.version) == current), None)
    expired = entry is not None and _expired(entry, now)
    automatic = parse_version(str(spec["kubernetesVersion"]))[2] is None or bool(
        ((spec.get("maintenance") or {}).get("autoUpdate") or {}).get("kubernetesVersion",
                                                                     True))
    if not (automatic or expired):
        return Plan(running.version)
    if spec.get("clusterClass"):
        return Plan(running.version, message=(
            f"no automatic patch updates while spec.clusterClass pins {spec['clusterClass']}"
            + (f" ({running.version} has expired)" if expired else "")))
    if newest is None or (parse_version(newest.version)[2] or 0) <= patch:
        message = (f"{running.version} has expired and no newer patch of "
                   f"{current[0]}.{current[1]} is offered: upgrade to the next minor version"
                   if expired else "")
        return Plan(running.version, message=message)
    why = f" ({running.version} has expired)" if expired else ""
    if window.contains(now) and running.settled:
        return Plan(newest.version, message=f"patch {newest.version} applied in the window "
                                            f"{window.text}{why}")
    wait = window.opens_in(now) if not window.contains(now) else None
    return Plan(running.version, pending=newest.version, wait=wait,
                message=f"patch {newest.version} scheduled for the window {window.text}{why}"
                        + ("" if wait is not None else ", once the current change is done"))
