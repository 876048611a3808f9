"""Simulated Neutron and Octavia: networks, subnets, routers, security groups, floating IPs
and load balancers, with the dependency rules convergence depends on.

Rules (each a retryable ``Conflict``, as Neutron answers 409): a subnet needs its network; a
network with subnets, a subnet with ports (servers, router interfaces, load balancer VIPs)
and a security group used by a server cannot be deleted; a subnet can be on one router only.
Things being deleted no longer count as users, so a cascade converges as soon as each
deletion has started. Floating IPs and router gateways come from the external range
(``SandboxSettings.external_cidr``, 203.0.113.0/24 by default).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..base import Conflict, InvalidRequest
from . import addresses
from .records import Record
from .services import Desired, SandboxService
from .settings import PREFIX


def _gateway(network: ipaddress.IPv4Network | ipaddress.IPv6Network,
             explicit: str | None) -> str:
    if explicit:
        return explicit
    return str(next(network.hosts()))


class NetworkService(SandboxService):
    kind = "Network"

    def usage(self, desired: Desired) -> dict[str, int]:
        return {"networks": 1}

    def check_delete(self, namespace: str, rec: Record) -> None:
        self.in_use(rec, [s for s in self.records.live("Subnet", namespace)
                          if s["desired"].get("networkID") == rec["id"]], "used by")


class SubnetService(SandboxService):
    kind = "Subnet"
    immutable = ("networkID", "cidr", "ipVersion")

    def validate(self, namespace: str, desired: Desired, current: Record | None) -> None:
        try:
            net = ipaddress.ip_network(str(desired.get("cidr", "")), strict=False)
        except ValueError:
            raise InvalidRequest(f"{PREFIX}: invalid CIDR {desired.get('cidr')!r}") from None
        if net.version != int(desired.get("ipVersion") or 4):
            raise InvalidRequest(f"{PREFIX}: {net} is not an IPv{desired.get('ipVersion')} CIDR")
        if net.num_addresses < 4:
            raise InvalidRequest(f"{PREFIX}: {net} is too small for a subnet")
        gateway = desired.get("gatewayIP")
        if gateway:
            try:
                inside = ipaddress.ip_address(gateway) in net
            except ValueError:
                inside = False
            if not inside:
                raise InvalidRequest(f"{PREFIX}: gateway {gateway} is not in {net}")
        network_id = str(desired.get("networkID") or "")
        self.require("Network", namespace, network_id, "subnet")
        for other in self.records.live("Subnet", namespace):
            if other["desired"].get("networkID") != network_id or \
                    (current is not None and other["id"] == current["id"]):
                continue
            if net.overlaps(ipaddress.ip_network(other["desired"]["cidr"], strict=False)):
                raise InvalidRequest(f"{PREFIX}: {net} overlaps subnet {other['id']} "
                                     f"({other['desired']['cidr']}) on the same network")

    def usage(self, desired: Desired) -> dict[str, int]:
        return {"subnets": 1}

    def allocate(self, namespace: str, backend_id: str, desired: Desired,
                 current: Record | None) -> dict[str, Any]:
        net = ipaddress.ip_network(desired["cidr"], strict=False)
        return {"gatewayIP": _gateway(net, desired.get("gatewayIP"))}

    def check_delete(self, namespace: str, rec: Record) -> None:
        sid = rec["id"]
        self.in_use(rec, [s for s in self.records.live("Server", namespace)
                          if any(p["subnetID"] == sid for p in s["data"].get("ports", []))],
                    "attached to")
        self.in_use(rec, [r for r in self.records.live("Router", namespace)
                          if sid in (r["desired"].get("subnetIDs") or [])], "an interface of")
        self.in_use(rec, [b for b in self.records.live("LoadBalancer", namespace)
                          if b["desired"].get("subnetID") == sid], "the VIP subnet of")

    def observed(self, rec: Record) -> dict[str, Any]:
        return {"networkID": rec["desired"].get("networkID", "")}


class RouterService(SandboxService):
    kind = "Router"

    def validate(self, namespace: str, desired: Desired, current: Record | None) -> None:
        subnet_ids = list(desired.get("subnetIDs") or [])
        if len(set(subnet_ids)) != len(subnet_ids):
            raise InvalidRequest(f"{PREFIX}: a subnet can be attached to a router only once")
        for sid in subnet_ids:
            self.require("Subnet", namespace, sid, "router")
        for other in self.records.live("Router", namespace):
            if current is not None and other["id"] == current["id"]:
                continue
            shared = set(subnet_ids) & set(other["desired"].get("subnetIDs") or [])
            if shared:
                raise Conflict(f"{PREFIX}: subnet {sorted(shared)[0]} is already "
                               f"attached to router {other['id']}")

    def usage(self, desired: Desired) -> dict[str, int]:
        return {"routers": 1}

    def allocate(self, namespace: str, backend_id: str, desired: Desired,
                 current: Record | None) -> dict[str, Any]:
        if not desired.get("externalGateway"):
            addresses.release(self.store, "", backend_id, ["gateway"])
            return {"externalIP": ""}
        ip = addresses.allocate(self.store, "", addresses.EXTERNAL,
                                self.sandbox.settings.external_cidr, backend_id, "gateway")
        return {"externalIP": ip}

    def observed(self, rec: Record) -> dict[str, Any]:
        return {"externalIP": rec["data"].get("externalIP", "")}


class SecurityGroupService(SandboxService):
    kind = "SecurityGroup"

    def usage(self, desired: Desired) -> dict[str, int]:
        return {"securityGroups": 1}

    def check_delete(self, namespace: str, rec: Record) -> None:
        self.in_use(rec, [s for s in self.records.live("Server", namespace)
                          if rec["id"] in (s["desired"].get("securityGroupIDs") or [])],
                    "used by")


class FloatingIPService(SandboxService):
    kind = "FloatingIP"

    def validate(self, namespace: str, desired: Desired, current: Record | None) -> None:
        if desired.get("serverID"):
            self.require("Server", namespace, str(desired["serverID"]), "floating IP")

    def usage(self, desired: Desired) -> dict[str, int]:
        return {"floatingIPs": 1}

    def allocate(self, namespace: str, backend_id: str, desired: Desired,
                 current: Record | None) -> dict[str, Any]:
        ip = addresses.allocate(self.store, "", addresses.EXTERNAL,
                                self.sandbox.settings.external_cidr, backend_id, "fip")
        return {"address": ip}

    def observed(self, rec: Record) -> dict[str, Any]:
        return {"address": rec["data"].get("address", "")}


class LoadBalancerService(SandboxService):
    kind = "LoadBalancer"
    immutable = ("subnetID", "provider")
    busy_on_update = True

    def validate(self, namespace: str, desired: Desired, current: Record | None) -> None:
        if desired.get("provider", "ovn") not in ("ovn", "amphora"):
            raise InvalidRequest(f"{PREFIX}: unknown load balancer provider "
                                 f"{desired.get('provider')!r} (available: ovn, amphora)")
        pools = {p.get("name") for p in desired.get("pools") or []}
        for listener in desired.get("listeners") or []:
            if listener.get("pool") not in pools:
                raise InvalidRequest(f"{PREFIX}: listener {listener.get('name')!r} refers to "
                                     f"unknown pool {listener.get('pool')!r}")
        self.require("Subnet", namespace, str(desired.get("subnetID") or ""), "load balancer")
        for pool in desired.get("pools") or []:
            for member in pool.get("members") or []:
                self.require("Server", namespace, str(member.get("serverID") or ""),
                             f"load balancer pool {pool.get('name')!r}")

    def usage(self, desired: Desired) -> dict[str, int]:
        return {"loadBalancers": 1}

    def allocate(self, namespace: str, backend_id: str, desired: Desired,
                 current: Record | None) -> dict[str, Any]:
        subnet = self.require("Subnet", namespace, str(desired["subnetID"]), "load balancer")
        vip = addresses.allocate(self.store, namespace, subnet["id"], subnet["desired"]["cidr"],
                                 backend_id, "vip", exclude=[subnet["data"]["gatewayIP"]])
        fip = ""
        if desired.get("floatingIP"):
            fip = addresses.allocate(self.store, "", addresses.EXTERNAL,
                                     self.sandbox.settings.external_cidr, backend_id, "fip")
        else:
            addresses.release(self.store, "", backend_id, ["fip"])
        return {"vipAddress": vip, "floatingIP": fip}

    def on_update(self, rec: Record, desired: Desired, data: dict[str, Any]) -> None:
        rec["busyUntil"] = self.records.now() + self.sandbox.settings.scaled(1.0)
        rec["busyReason"] = "applying the new listener/pool configuration"

    def observed(self, rec: Record) -> dict[str, Any]:
        return {"vipAddress": rec["data"].get("vipAddress", ""),
                "floatingIP": rec["data"].get("floatingIP", "")}
