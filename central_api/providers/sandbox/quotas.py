"""Per-namespace quotas of the simulated cloud, like Nova/Cinder/Neutron project quotas.

Each record stores what it consumes (``usage``: e.g. ``{"instances": 1, "cores": 2}``), and
each quota belongs to one kind, so a check sums one list of records. Limits come from
``SandboxSettings.quotas`` unless an operator (or a test) stored an override for the
namespace with :func:`set_quota`. Two processes creating at the same moment may overshoot a
limit by one resource; the sandbox accepts that (real clouds reserve, which it does not need).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...store.base import Key, KeyExists, KeyNotFound, Store
from ..base import QuotaExceeded
from .keys import QUOTAS
from .records import Record, Records
from .settings import DEFAULT_QUOTAS, PREFIX


def set_quota(store: Store, namespace: str, **limits: int) -> dict[str, Any]:
    """Override quotas for one namespace, e.g. ``set_quota(store, "team-a", instances=2)``."""
    unknown = set(limits) - set(DEFAULT_QUOTAS)
    if unknown:
        raise ValueError(f"unknown quota(s) {sorted(unknown)}; known: {sorted(DEFAULT_QUOTAS)}")
    key = Key(QUOTAS, "", namespace)
    try:
        current = store.get(key)
    except KeyNotFound:
        try:
            return store.create(key, {"limits": dict(limits)})
        except KeyExists:
            current = store.get(key)
    current["limits"] = {**current.get("limits", {}), **limits}
    return store.update(key, current, None)


def limits(records: Records, namespace: str) -> dict[str, int]:
    try:
        override = records.store.get(Key(QUOTAS, "", namespace)).get("limits", {})
    except KeyNotFound:
        override = {}
    return {**records.settings.quotas, **override}


def check(records: Records, kind: str, namespace: str, usage: Mapping[str, int],
          replacing: Record | None = None) -> None:
    """QuotaExceeded if ``usage`` does not fit beside what the namespace already uses.

    ``replacing`` is the record being updated: its current usage is not counted twice, and a
    change that does not grow a quota always passes (shrinking over quota is allowed).
    """
    before = (replacing or {}).get("usage", {})
    growing = {q: n for q, n in usage.items() if n > before.get(q, 0)}
    if not growing:
        return
    limit = limits(records, namespace)
    used: dict[str, int] = dict.fromkeys(growing, 0)
    for rec in records.live(kind, namespace):
        if replacing is not None and rec["id"] == replacing["id"]:
            continue
        for quota in growing:
            used[quota] += int(rec.get("usage", {}).get(quota, 0))
    for quota, amount in growing.items():
        if quota in limit and used[quota] + amount > limit[quota]:
            raise QuotaExceeded(
                f"{PREFIX}: quota exceeded for {quota} in namespace {namespace}: requested "
                f"{amount}, used {used[quota]}, limit {limit[quota]}")
