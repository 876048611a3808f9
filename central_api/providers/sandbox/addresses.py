"""IP address management: every allocated address is its own store record.

The store has no multi-key transactions, but creating a key is atomic, so claiming
``<pool>_<ip>`` with ``create`` (``KeyExists`` → try the next address) keeps addresses unique
even with several API server processes. A reservation names its holder and purpose; a create
retried after a crash finds the reservation it already made and reuses it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from ...store.base import Key, KeyExists, KeyNotFound, Store
from ..base import Conflict
from .keys import IPS
from .settings import PREFIX

EXTERNAL = "external"
"""Pool name of the external network (floating IPs, router gateways, in namespace "")."""
MAX_PROBES = 1 << 16


def _reservations(store: Store, namespace: str) -> list[dict[str, Any]]:
    return store.list(IPS, namespace).items


def allocate(store: Store, namespace: str, pool: str, cidr: str, holder: str,
             purpose: str, exclude: Iterable[str] = ()) -> str:
    """An address from ``cidr`` for ``holder``; the same one again on a retry."""
    taken = set(exclude)
    for item in _reservations(store, namespace):
        if item["pool"] != pool:
            continue
        if item["holder"] == holder and item["purpose"] == purpose:
            return str(item["ip"])
        taken.add(item["ip"])
    network = ipaddress.ip_network(cidr, strict=False)
    for probes, host in enumerate(network.hosts()):
        if probes > MAX_PROBES + len(taken):
            break
        ip = str(host)
        if ip in taken:
            continue
        try:
            store.create(Key(IPS, namespace, f"{pool}_{ip}"),
                         {"pool": pool, "ip": ip, "holder": holder, "purpose": purpose})
        except KeyExists:
            continue
        return ip
    where = "the external network" if pool == EXTERNAL else f"subnet {pool} ({cidr})"
    raise Conflict(f"{PREFIX}: no free IP address left in {where}")


def release(store: Store, namespace: str, holder: str, purposes: Iterable[str] | None = None
            ) -> None:
    """Free the holder's addresses (all, or those with the given purposes); idempotent."""
    wanted = None if purposes is None else set(purposes)
    for item in _reservations(store, namespace):
        if item["holder"] == holder and (wanted is None or item["purpose"] in wanted):
            _drop(store, namespace, item)


def release_pool(store: Store, namespace: str, pool: str) -> None:
    """Forget every reservation in a subnet that is going away (including leaked ones)."""
    for item in _reservations(store, namespace):
        if item["pool"] == pool:
            _drop(store, namespace, item)


def _drop(store: Store, namespace: str, item: dict[str, Any]) -> None:
    try:
        store.delete(Key(IPS, namespace, f"{item['pool']}_{item['ip']}"))
    except KeyNotFound:
        pass
