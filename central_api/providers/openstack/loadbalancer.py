"""Octavia load balancers with listeners, pools and members; OVN is the default provider.

The load balancer is named ``scs-<uid>`` and tagged ``scs-owner-uid=<uid>``; its children
are named ``scs-<uid>-<name>`` (listeners, pools) and members carry the server ID as their
name, so the spec can be read back from Octavia without a side store.

Octavia accepts one change at a time: every mutation puts the load balancer into
PENDING_UPDATE and the next one is refused with 409 until it is ACTIVE again. ``update``
therefore applies the steps one by one, waiting for ACTIVE in between, until everything
matches or its time budget is spent; then it reports PENDING and the controller calls again.
A wanted ``floatingIP`` is a Neutron floating IP on the VIP port with the owner's tag.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from openstack import exceptions as os_exceptions
from openstack.connection import Connection

from ..base import BackendResource, InvalidRequest, Scope
from .connection import Connections
from .errors import map_state
from .network import external_network_id, find_owned, server_port_id, tag
from .ownership import owner_tag, resource_name

PROVIDERS = {"ovn": "ovn", "amphora": "amphora"}


def _add_member(conn: Connection, lb: Any, pool: Any, server_id: str, port: int) -> Any:
    """Add the server's address on the VIP subnet; the member's name records the server."""
    port_id = server_port_id(conn, server_id, lb.vip_subnet_id)
    fixed = conn.network.get_port(port_id).fixed_ips or []
    address = next(ip["ip_address"] for ip in fixed if ip.get("subnet_id") == lb.vip_subnet_id)
    return conn.load_balancer.create_member(pool.id, name=server_id, address=address,
                                            protocol_port=port, subnet_id=lb.vip_subnet_id)


def _existing(get: Callable[[str], Any], refs: list[dict[str, str]] | None) -> list[Any]:
    """The children named in ``refs`` that still exist."""
    found = []
    for ref in refs or []:
        try:
            found.append(get(ref["id"]))
        except os_exceptions.NotFoundException:
            continue
    return found


@dataclass
class _Step:
    """One Octavia mutation and what it is for (reported while converging)."""

    description: str
    run: Callable[[], Any]


class LoadBalancerService:
    """LoadBalancer: ``subnetID``, ``provider``, ``floatingIP``, ``listeners``, ``pools``."""

    POLL_SECONDS = 1.0

    def __init__(self, connections: Connections, external_network: str = "") -> None:
        self.connections = connections
        self.external_network = external_network
        # Leave headroom under the per-call timeout so a slow step ends as PENDING, not as
        # BackendUnavailable.
        self.budget = max(5.0, connections.settings.timeout * 0.75)

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _children(conn: Connection, lb: Any, owner_uid: str
                  ) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[Any]]]:
        # The load balancer lists its children's IDs; list filters by load balancer are
        # spelled differently across Octavia resources and releases. A child deleted since
        # the load balancer was read is skipped (it is gone, which is what was asked).
        prefix = resource_name(owner_uid) + "-"
        lbp = conn.load_balancer
        listeners = {str(li.name)[len(prefix):]: li
                     for li in _existing(lbp.get_listener, lb.listeners)
                     if str(li.name or "").startswith(prefix)}
        pools = {str(p.name)[len(prefix):]: p for p in _existing(lbp.get_pool, lb.pools)
                 if str(p.name or "").startswith(prefix)}
        members: dict[str, list[Any]] = {}
        for name, pool in list(pools.items()):
            try:
                members[name] = list(lbp.members(pool.id))
            except os_exceptions.NotFoundException:
                del pools[name]
        return listeners, pools, members

    @staticmethod
    def _floating_ip(conn: Connection, owner_uid: str) -> Any | None:
        return find_owned(conn.network.ips, owner_uid, "description")

    def _to_resource(self, conn: Connection, lb: Any, owner_uid: str, message: str = "",
                     converged: bool = True) -> BackendResource:
        listeners, pools, members = self._children(conn, lb, owner_uid)
        pool_names = {p.id: name for name, p in pools.items()}
        fip = self._floating_ip(conn, owner_uid)
        state = map_state(lb.provisioning_status)
        if state == "ACTIVE" and not converged:
            state = "PENDING"
        if state == "ERROR" and not message:
            message = f"Octavia reports {lb.provisioning_status}/{lb.operating_status}"
        return BackendResource(
            id=str(lb.id), owner_uid=owner_uid, state=state, message=message,
            desired={
                "subnetID": lb.vip_subnet_id, "provider": lb.provider,
                "floatingIP": fip is not None,
                "listeners": [{"name": name, "protocol": li.protocol,
                               "port": li.protocol_port,
                               "pool": pool_names.get(li.default_pool_id, "")}
                              for name, li in sorted(listeners.items())],
                "pools": [{"name": name, "protocol": p.protocol, "algorithm": p.lb_algorithm,
                           "members": sorted(({"serverID": m.name, "port": m.protocol_port}
                                              for m in members[name]),
                                             key=lambda m: (m["serverID"], m["port"]))}
                          for name, p in sorted(pools.items())]},
            observed={"vipAddress": lb.vip_address or "",
                      "floatingIP": fip.floating_ip_address if fip is not None else ""})

    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        def find(conn: Connection) -> BackendResource | None:
            lb = find_owned(conn.load_balancer.load_balancers, owner_uid)
            return None if lb is None else self._to_resource(conn, lb, owner_uid)
        return await self.connections.run(scope, find)

    # -- writing -------------------------------------------------------------------------------
    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        provider = PROVIDERS.get(desired.get("provider") or "ovn")
        if provider is None:
            raise InvalidRequest(f"unknown load balancer provider {desired.get('provider')!r}")

        def create(conn: Connection) -> BackendResource:
            lb = find_owned(conn.load_balancer.load_balancers, owner_uid)
            if lb is None:
                # The subnet's network too: Octavia (Zed) hands the OVN provider a VIP
                # without the network when only the subnet is given, and the provider's VIP
                # port creation fails ("'None' is not a valid UUID").
                subnet = conn.network.get_subnet(desired["subnetID"])
                lb = conn.load_balancer.create_load_balancer(
                    name=resource_name(owner_uid), vip_subnet_id=subnet.id,
                    vip_network_id=subnet.network_id, provider=provider,
                    tags=[owner_tag(owner_uid)])
            return self._converge(conn, lb, owner_uid, desired)
        return await self.connections.run(scope, create)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        def update(conn: Connection) -> BackendResource:
            lb = conn.load_balancer.get_load_balancer(resource.id)
            if desired.get("subnetID") and desired["subnetID"] != lb.vip_subnet_id:
                raise InvalidRequest("subnetID cannot change; create a new LoadBalancer")
            if PROVIDERS.get(desired.get("provider") or "ovn") != lb.provider:
                raise InvalidRequest("provider cannot change; create a new LoadBalancer")
            return self._converge(conn, lb, resource.owner_uid, desired)
        return await self.connections.run(scope, update)

    def _converge(self, conn: Connection, lb: Any, owner_uid: str,
                  desired: Mapping[str, Any]) -> BackendResource:
        """Apply one step at a time while the load balancer is ACTIVE and time remains."""
        deadline = time.monotonic() + self.budget
        while True:
            lb = self._wait_active(conn, lb, deadline)
            if lb.provisioning_status != "ACTIVE":
                return self._to_resource(conn, lb, owner_uid, converged=False,
                                         message=f"waiting for Octavia "
                                                 f"({lb.provisioning_status})")
            step = self._next_step(conn, lb, owner_uid, desired)
            if step is None:
                return self._to_resource(conn, lb, owner_uid)
            if time.monotonic() >= deadline:
                return self._to_resource(conn, lb, owner_uid, converged=False,
                                         message=f"converging, next: {step.description}")
            step.run()

    def _wait_active(self, conn: Connection, lb: Any, deadline: float) -> Any:
        lb = conn.load_balancer.get_load_balancer(lb.id)
        while str(lb.provisioning_status).startswith("PENDING") and time.monotonic() < deadline:
            time.sleep(self.POLL_SECONDS)
            lb = conn.load_balancer.get_load_balancer(lb.id)
        return lb

    def _next_step(self, conn: Connection, lb: Any, owner_uid: str,
                   desired: Mapping[str, Any]) -> _Step | None:
        """The first difference between Octavia and ``desired``, as one mutation."""
        lbp = conn.load_balancer
        listeners, pools, members = self._children(conn, lb, owner_uid)
        want_pools = {p["name"]: p for p in desired.get("pools") or []}
        want_listeners = {li["name"]: li for li in desired.get("listeners") or []}

        for name, li in listeners.items():
            want = want_listeners.get(name)
            if want is None or (want["protocol"], int(want["port"])) != (li.protocol,
                                                                        li.protocol_port):
                return _Step(f"delete listener {name}",
                             partial(lbp.delete_listener, li.id, ignore_missing=True))
        for name, pool in pools.items():
            want = want_pools.get(name)
            if want is None or want.get("protocol", "TCP") != pool.protocol:
                users = [li for li in listeners.values() if li.default_pool_id == pool.id]
                if users:
                    return _Step(f"detach pool {name}", partial(
                        lbp.update_listener, users[0].id, default_pool_id=None))
                return _Step(f"delete pool {name}",
                             partial(lbp.delete_pool, pool.id, ignore_missing=True))
        for name, want in want_pools.items():
            algorithm = want.get("algorithm") or "SOURCE_IP_PORT"
            pool = pools.get(name)
            if pool is None:
                return _Step(f"create pool {name}", partial(
                    lbp.create_pool, name=resource_name(owner_uid, name), loadbalancer_id=lb.id,
                    protocol=want.get("protocol", "TCP"), lb_algorithm=algorithm))
            if pool.lb_algorithm != algorithm:
                return _Step(f"set algorithm of pool {name}",
                             partial(lbp.update_pool, pool.id, lb_algorithm=algorithm))
            step = self._member_step(conn, lb, name, pool, members.get(name, []),
                                     want.get("members") or [])
            if step is not None:
                return step
        for name, want in want_listeners.items():
            pool = pools.get(want["pool"])
            if name not in listeners:
                return _Step(f"create listener {name}", partial(
                    lbp.create_listener, name=resource_name(owner_uid, name),
                    loadbalancer_id=lb.id, protocol=want["protocol"],
                    protocol_port=int(want["port"]),
                    default_pool_id=pool.id if pool is not None else None))
            if pool is not None and listeners[name].default_pool_id != pool.id:
                return _Step(f"point listener {name} at pool {want['pool']}", partial(
                    lbp.update_listener, listeners[name].id, default_pool_id=pool.id))
        return self._floating_ip_step(conn, lb, owner_uid, bool(desired.get("floatingIP")))

    @staticmethod
    def _member_step(conn: Connection, lb: Any, pool_name: str, pool: Any,
                     current: list[Any], wanted: list[Mapping[str, Any]]) -> _Step | None:
        have = {(m.name, m.protocol_port): m for m in current}
        want = {(m["serverID"], int(m["port"])) for m in wanted}
        for key, member in have.items():
            if key not in want:
                return _Step(f"remove {key[0]}:{key[1]} from pool {pool_name}", partial(
                    conn.load_balancer.delete_member, member.id, pool.id,
                    ignore_missing=True))
        for server_id, port in sorted(want - have.keys()):
            return _Step(f"add {server_id}:{port} to pool {pool_name}",
                         partial(_add_member, conn, lb, pool, server_id, port))
        return None

    def _floating_ip_step(self, conn: Connection, lb: Any, owner_uid: str,
                          wanted: bool) -> _Step | None:
        fip = self._floating_ip(conn, owner_uid)
        if wanted and fip is None:
            def allocate() -> Any:
                created = conn.network.create_ip(
                    floating_network_id=external_network_id(conn, self.external_network),
                    description=resource_name(owner_uid), port_id=lb.vip_port_id)
                return tag(conn, created, owner_uid)
            return _Step("allocate floating IP", allocate)
        if wanted and fip is not None and fip.port_id != lb.vip_port_id:
            return _Step("associate floating IP",
                         partial(conn.network.update_ip, fip, port_id=lb.vip_port_id))
        if not wanted and fip is not None:
            return _Step("release floating IP",
                         partial(conn.network.delete_ip, fip, ignore_missing=True))
        return None

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        def delete(conn: Connection) -> None:
            fip = self._floating_ip(conn, resource.owner_uid)
            if fip is not None:
                conn.network.delete_ip(fip, ignore_missing=True)
            lb = conn.load_balancer.find_load_balancer(resource.id, ignore_missing=True)
            if lb is not None and lb.provisioning_status != "PENDING_DELETE":
                # cascade removes listeners, pools and members in one Octavia operation.
                conn.load_balancer.delete_load_balancer(lb.id, ignore_missing=True,
                                                        cascade=True)
        await self.connections.run(scope, delete)
