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
from .views import AddressView

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

EXTERNAL = "external"
"""Pool name of the external network (floating IPs, router gateways, in namespace "")."""
MAX_PROBES = 1 << 16


def _view(store: Store, namespace: str) -> AddressView:
    return AddressView.of(store, IPS, namespace)


def _host_range(network: IPNetwork) -> tuple[int, int]:
    """First and last host of ``network`` as integers, exactly what ``network.hosts()``
    yields (a contiguous range): all addresses of a /31, /32, /127 or /128; otherwise without
    the network address and, for IPv4, the broadcast address."""
    low, high = int(network.network_address), int(network.broadcast_address)
    if network.prefixlen >= network.max_prefixlen - 1:
        return low, high
    return low + 1, high - 1 if network.version == 4 else high


def allocate(store: Store, namespace: str, pool: str, cidr: str, holder: str,
             purpose: str, exclude: Iterable[str] = ()) -> str:
    """An address from ``cidr`` for ``holder``; the same one again on a retry.

    The lowest free host, as a scan from the first host would find it; the view remembers
    up to where the pool is full, so the search does not walk every reserved address again.
    """
    excluded = frozenset(exclude)
    view = _view(store, namespace)
    with view.current():
        for item in view.holder_items(holder):
            if item["pool"] == pool and item["purpose"] == purpose:
                return str(item["ip"])
        reserved = view.taken.get(pool, set())
        taken = len(reserved) + sum(1 for ip in excluded if ip not in reserved)
        network = ipaddress.ip_network(cidr, strict=False)
        first, last = _host_range(network)
        hint_key = (pool, cidr, excluded)
        hint_first, index = view.hints.get(hint_key, (first, 0))
        if hint_first != first:
            index = 0
        make = network.network_address.__class__
        while first + index <= last:
            if index > MAX_PROBES + taken:
                break
            ip = str(make(first + index))
            if ip not in reserved and ip not in excluded:
                try:
                    store.create(Key(IPS, namespace, f"{pool}_{ip}"),
                                 {"pool": pool, "ip": ip, "holder": holder,
                                  "purpose": purpose})
                except KeyExists:
                    pass
                else:
                    view.hints[hint_key] = (first, index + 1)
                    return ip
            index += 1
            view.hints[hint_key] = (first, index)
    where = "the external network" if pool == EXTERNAL else f"subnet {pool} ({cidr})"
    raise Conflict(f"{PREFIX}: no free IP address left in {where}")


def release(store: Store, namespace: str, holder: str, purposes: Iterable[str] | None = None
            ) -> None:
    """Free the holder's addresses (all, or those with the given purposes); idempotent."""
    wanted = None if purposes is None else set(purposes)
    view = _view(store, namespace)
    with view.current():
        items = view.holder_items(holder)
    for item in items:
        if wanted is None or item["purpose"] in wanted:
            _drop(store, namespace, item)


def release_pool(store: Store, namespace: str, pool: str) -> None:
    """Forget every reservation in a subnet that is going away (including leaked ones)."""
    view = _view(store, namespace)
    with view.current():
        items = view.pool_items(pool)
    for item in items:
        _drop(store, namespace, item)


def _drop(store: Store, namespace: str, item: dict[str, Any]) -> None:
    try:
        store.delete(Key(IPS, namespace, f"{item['pool']}_{item['ip']}"))
    except KeyNotFound:
        pass
