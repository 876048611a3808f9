"""Neutron: networks, subnets, routers and floating IPs.

Each resource is named ``scs-<uid>`` and tagged ``scs-owner-uid=<uid>`` (Neutron's standard
attribute tags). ``find`` asks Neutron for the tag and falls back to the exact name, then
tags what it found, so an interrupted create is adopted instead of duplicated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from openstack.connection import Connection

from ..base import BackendResource, InvalidRequest, NotFound, Scope
from .connection import Connections
from .errors import map_state
from .ownership import owner_tag, resource_name

ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")


def find_owned(lister: Callable[..., Iterable[Any]], owner_uid: str,
               name_field: str = "name") -> Any | None:
    """The Neutron/Octavia object owned by ``owner_uid``: by tag, else by exact name.

    ``name_field`` is ``description`` for floating IPs, which have no name. Every hit is
    checked again here: a service that ignores an unknown filter would otherwise hand back
    somebody else's resource.
    """
    for item in lister(tags=owner_tag(owner_uid)):
        if owner_tag(owner_uid) in (getattr(item, "tags", None) or []):
            return item
    for item in lister(**{name_field: resource_name(owner_uid)}):
        if getattr(item, name_field, None) == resource_name(owner_uid):
            return item
    return None


def tag(conn: Connection, item: Any, owner_uid: str) -> Any:
    """Tag a freshly created Neutron object (creation bodies cannot carry tags everywhere)."""
    tags = list(getattr(item, "tags", None) or [])
    if owner_tag(owner_uid) not in tags:
        conn.network.set_tags(item, [*tags, owner_tag(owner_uid)])
        item.tags = [*tags, owner_tag(owner_uid)]
    return item


def external_network_id(conn: Connection, name_or_id: str) -> str:
    """The configured external network, else the first ``router:external`` one."""
    if name_or_id:
        net = conn.network.find_network(name_or_id, ignore_missing=True)
        if net is None:
            raise InvalidRequest(f"external network {name_or_id!r} not found")
        return str(net.id)
    for net in conn.network.networks(is_router_external=True):
        return str(net.id)
    raise InvalidRequest("the OpenStack cloud has no external (router:external) network")


class _NeutronService:
    """Shared plumbing: run in a thread, find by owner, turn objects into BackendResources."""

    NAME_FIELD = "name"

    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    def _lister(self, conn: Connection) -> Callable[..., Iterable[Any]]:
        raise NotImplementedError

    def _to_resource(self, conn: Connection, item: Any, owner_uid: str) -> BackendResource:
        raise NotImplementedError

    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        def find(conn: Connection) -> BackendResource | None:
            item = find_owned(self._lister(conn), owner_uid, self.NAME_FIELD)
            if item is None:
                return None
            # Found only by name after an interrupted create: repair the tag.
            return self._to_resource(conn, tag(conn, item, owner_uid), owner_uid)
        return await self.connections.run(scope, find)

    def _resource(self, item: Any, owner_uid: str, desired: dict[str, Any],
                  observed: dict[str, Any] | None = None) -> BackendResource:
        return BackendResource(id=str(item.id), owner_uid=owner_uid,
                               state=map_state(getattr(item, "status", "ACTIVE")),
                               desired=desired, observed=observed or {})


# -- Network -----------------------------------------------------------------------------------
class NetworkService(_NeutronService):
    """Network: ``mtu``, ``adminStateUp``, ``description``."""

    def _lister(self, conn: Connection) -> Callable[..., Iterable[Any]]:
        return conn.network.networks

    def _to_resource(self, conn: Connection, item: Any, owner_uid: str) -> BackendResource:
        return self._resource(item, owner_uid, {
            "mtu": item.mtu, "adminStateUp": bool(item.is_admin_state_up),
            "description": item.description or ""})

    @staticmethod
    def _attrs(desired: Mapping[str, Any]) -> dict[str, Any]:
        attrs: dict[str, Any] = {"is_admin_state_up": bool(desired.get("adminStateUp", True)),
                                 "description": desired.get("description") or ""}
        if desired.get("mtu"):
            attrs["mtu"] = int(desired["mtu"])
        return attrs

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        def create(conn: Connection) -> BackendResource:
            item = find_owned(conn.network.networks, owner_uid)
            if item is None:
                item = conn.network.create_network(name=resource_name(owner_uid),
                                                   **self._attrs(desired))
            return self._to_resource(conn, tag(conn, item, owner_uid), owner_uid)
        return await self.connections.run(scope, create)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        def update(conn: Connection) -> BackendResource:
            item = conn.network.update_network(resource.id, **self._attrs(desired))
            return self._to_resource(conn, item, resource.owner_uid)
        return await self.connections.run(scope, update)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        await self.connections.run(
            scope, lambda conn: conn.network.delete_network(resource.id, ignore_missing=True))


# -- Subnet ------------------------------------------------------------------------------------
class SubnetService(_NeutronService):
    """Subnet: ``networkID``, ``cidr``, ``ipVersion`` are immutable; gateway, DHCP and DNS
    servers are updated in place."""

    IMMUTABLE = ("networkID", "cidr", "ipVersion")

    def _lister(self, conn: Connection) -> Callable[..., Iterable[Any]]:
        return conn.network.subnets

    def _to_resource(self, conn: Connection, item: Any, owner_uid: str) -> BackendResource:
        # Subnets have no status in Neutron: existing means usable.
        return BackendResource(
            id=str(item.id), owner_uid=owner_uid, state="ACTIVE",
            desired={"networkID": item.network_id, "cidr": item.cidr,
                     "ipVersion": item.ip_version, "gatewayIP": item.gateway_ip,
                     "enableDHCP": bool(item.is_dhcp_enabled),
                     "dnsNameservers": list(item.dns_nameservers or [])},
            observed={"networkID": item.network_id})

    @staticmethod
    def _mutable(desired: Mapping[str, Any]) -> dict[str, Any]:
        attrs: dict[str, Any] = {"is_dhcp_enabled": bool(desired.get("enableDHCP", True)),
                                 "dns_nameservers": list(desired.get("dnsNameservers") or [])}
        if desired.get("gatewayIP"):
            attrs["gateway_ip"] = desired["gatewayIP"]
        return attrs

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        def create(conn: Connection) -> BackendResource:
            item = find_owned(conn.network.subnets, owner_uid)
            if item is None:
                item = conn.network.create_subnet(
                    name=resource_name(owner_uid), network_id=desired["networkID"],
                    cidr=desired["cidr"], ip_version=int(desired.get("ipVersion", 4)),
                    **self._mutable(desired))
            return self._to_resource(conn, tag(conn, item, owner_uid), owner_uid)
        return await self.connections.run(scope, create)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        changed = [k for k in self.IMMUTABLE
                   if k in desired and resource.desired.get(k) != desired[k]]
        if changed:
            raise InvalidRequest(f"subnet fields {', '.join(changed)} cannot change; "
                                 "create a new Subnet instead")

        def update(conn: Connection) -> BackendResource:
            item = conn.network.update_subnet(resource.id, **self._mutable(desired))
            return self._to_resource(conn, item, resource.owner_uid)
        return await self.connections.run(scope, update)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        await self.connections.run(
            scope, lambda conn: conn.network.delete_subnet(resource.id, ignore_missing=True))


# -- Router ------------------------------------------------------------------------------------
def router_subnet_ids(conn: Connection, router_id: str) -> set[str]:
    """Subnets attached to the router, read from its interface ports."""
    subnets: set[str] = set()
    for port in conn.network.ports(device_id=router_id):
        if port.device_owner in ROUTER_INTERFACE_OWNERS:
            subnets.update(ip["subnet_id"] for ip in port.fixed_ips or [])
    return subnets


class RouterService(_NeutronService):
    """Router: ``externalGateway`` (to the configured external network) and ``subnetIDs``
    (interfaces, reconciled by diff)."""

    def __init__(self, connections: Connections, external_network: str = "") -> None:
        super().__init__(connections)
        self.external_network = external_network

    def _lister(self, conn: Connection) -> Callable[..., Iterable[Any]]:
        return conn.network.routers

    def _to_resource(self, conn: Connection, item: Any, owner_uid: str) -> BackendResource:
        gateway = item.external_gateway_info or {}
        ips = [ip["ip_address"] for ip in gateway.get("external_fixed_ips") or []
               if ip.get("ip_address")]
        ipv4 = [ip for ip in ips if ":" not in ip]  # users reach the router over IPv4 first
        return self._resource(
            item, owner_uid,
            {"externalGateway": bool(gateway.get("network_id")),
             "subnetIDs": sorted(router_subnet_ids(conn, item.id))},
            {"externalIP": (ipv4 or ips or [""])[0]})

    def _gateway(self, conn: Connection, wanted: bool) -> dict[str, Any] | None:
        return {"network_id": external_network_id(conn, self.external_network)} if wanted \
            else None

    def _converge(self, conn: Connection, item: Any, desired: Mapping[str, Any]) -> Any:
        has_gateway = bool((item.external_gateway_info or {}).get("network_id"))
        if has_gateway != bool(desired.get("externalGateway")):
            item = conn.network.update_router(
                item, external_gateway_info=self._gateway(conn, not has_gateway) or {})
        current = router_subnet_ids(conn, item.id)
        wanted = set(desired.get("subnetIDs") or [])
        for subnet in sorted(wanted - current):
            conn.network.add_interface_to_router(item, subnet=subnet)
        for subnet in sorted(current - wanted):
            conn.network.remove_interface_from_router(item, subnet=subnet)
        return conn.network.get_router(item.id)

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        def create(conn: Connection) -> BackendResource:
            item = find_owned(conn.network.routers, owner_uid)
            if item is None:
                attrs: dict[str, Any] = {"name": resource_name(owner_uid)}
                if desired.get("externalGateway"):
                    attrs["external_gateway_info"] = self._gateway(conn, True)
                item = conn.network.create_router(**attrs)
            item = self._converge(conn, tag(conn, item, owner_uid), desired)
            return self._to_resource(conn, item, owner_uid)
        return await self.connections.run(scope, create)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        def update(conn: Connection) -> BackendResource:
            item = self._converge(conn, conn.network.get_router(resource.id), desired)
            return self._to_resource(conn, item, resource.owner_uid)
        return await self.connections.run(scope, update)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        def delete(conn: Connection) -> None:
            item = conn.network.find_router(resource.id, ignore_missing=True)
            if item is None:
                return
            # Neutron refuses to delete a router that still has interfaces.
            for subnet in router_subnet_ids(conn, item.id):
                conn.network.remove_interface_from_router(item, subnet=subnet)
            conn.network.delete_router(item, ignore_missing=True)
        await self.connections.run(scope, delete)


# -- FloatingIP --------------------------------------------------------------------------------
def server_port_id(conn: Connection, server_id: str, subnet_id: str = "") -> str:
    """The server's port (on ``subnet_id`` if given) to associate an address with."""
    ports = list(conn.network.ports(device_id=server_id))
    if subnet_id:
        ports = [p for p in ports
                 if any(ip.get("subnet_id") == subnet_id for ip in p.fixed_ips or [])]
    if not ports:
        raise NotFound(f"server {server_id} has no port" +
                       (f" on subnet {subnet_id}" if subnet_id else ""))
    return str(sorted(ports, key=lambda p: p.created_at or "")[0].id)


class FloatingIPService(_NeutronService):
    """FloatingIP from the external network, associated with ``serverID`` (or none).

    Its status stays DOWN on clouds without an L3 agent; DOWN maps to ACTIVE, the address
    is allocated and associated either way.
    """

    def __init__(self, connections: Connections, external_network: str = "") -> None:
        super().__init__(connections)
        self.external_network = external_network

    NAME_FIELD = "description"

    def _lister(self, conn: Connection) -> Callable[..., Iterable[Any]]:
        return conn.network.ips

    def _to_resource(self, conn: Connection, item: Any, owner_uid: str) -> BackendResource:
        server_id = ""
        if item.port_id:
            port = conn.network.find_port(item.port_id, ignore_missing=True)
            server_id = port.device_id if port is not None else ""
        return self._resource(item, owner_uid, {"serverID": server_id or None},
                              {"address": item.floating_ip_address or ""})

    def _associate(self, conn: Connection, item: Any, server_id: str | None) -> Any:
        port_id = server_port_id(conn, server_id) if server_id else None
        if (item.port_id or None) != port_id:
            item = conn.network.update_ip(item, port_id=port_id)
        return item

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        def create(conn: Connection) -> BackendResource:
            item = find_owned(conn.network.ips, owner_uid, "description")
            if item is None:
                # Floating IPs have no name; the description carries the name convention.
                item = conn.network.create_ip(
                    floating_network_id=external_network_id(conn, self.external_network),
                    description=resource_name(owner_uid))
            item = self._associate(conn, tag(conn, item, owner_uid), desired.get("serverID"))
            return self._to_resource(conn, item, owner_uid)
        return await self.connections.run(scope, create)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        def update(conn: Connection) -> BackendResource:
            item = self._associate(conn, conn.network.get_ip(resource.id),
                                   desired.get("serverID"))
            return self._to_resource(conn, item, resource.owner_uid)
        return await self.connections.run(scope, update)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        await self.connections.run(
            scope, lambda conn: conn.network.delete_ip(resource.id, ignore_missing=True))
