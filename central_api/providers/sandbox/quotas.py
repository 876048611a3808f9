"""Per-namespace quotas of the simulated cloud, like Nova/Cinder/Neutron project quotas.

Each record stores what it consumes (``usage``: e.g. ``{"instances": 1, "cores": 2}``), and
each quota belongs to one kind, so a check sums one list of records. Limits come from
``SandboxSettings.quotas`` unless an operator (or a test) stored an override for the
namespace with :func:`set_quota`. The sums come from a
:class:`~central_api.providers.sandbox.views.UsageView` (exact, without listing every record
per check). Two processes creating at the same moment may overshoot a
limit by one resource; the sandbox accepts that (real clouds reserve, which it does not need).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...store.base import Key, KeyExists, KeyNotFound, Store
from ..base import QuotaExceeded
from .keys import QUOTAS, resource
from .records import Record, Records
from .settings import DEFAULT_QUOTAS, PREFIX
from .views import UsageView


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
    view = UsageView.of(records.store, resource(kind), namespace)
    with view.current():
        # what a scan of the records would do on the way: purge those whose deletion is over
        view.purge_gone(records.gone, records.purge)
        used = {quota: view.totals.get(quota, 0) for quota in growing}
        if replacing is not None:
            for quota, amount in view.usage.get(replacing["id"], {}).items():
                if quota in used:
                    used[quota] -= amount
    for quota, amount in growing.items():
        if quota in limit and used[quota] + amount > limit[quota]:
            raise QuotaExceeded(
                f"{PREFIX}: quota exceeded for {quota} in namespace {namespace}: requested "
                f"{amount}, used {used[quota]}, limit {limit[quota]}")
