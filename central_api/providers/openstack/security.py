"""Neutron security groups, with rules reconciled by diff.

Rules are compared as normalised keys, so ``0.0.0.0/0`` and "no remote prefix" are the same
rule and a single port given only as ``portRangeMin`` equals ``min == max``. Neutron creates
"allow all egress" rules in every new group; the diff never removes them (users expect
outbound traffic to work unless they say otherwise), and a desired rule equal to one of them
is already satisfied.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openstack.connection import Connection

from ..base import BackendResource, Scope
from .network import _NeutronService, find_owned, tag
from .ownership import resource_name


@dataclass(frozen=True)
class RuleKey:
    """A security group rule in normalised form; equal keys mean the same Neutron rule."""

    direction: str
    ethertype: str
    protocol: str | None
    port_min: int | None
    port_max: int | None
    remote: str | None

    def sort_key(self) -> tuple[str, ...]:
        """A total order (fields may be None) so reported rules are stable."""
        return tuple("" if v is None else f"{v:>5}" if isinstance(v, int) else v
                     for v in (self.direction, self.ethertype, self.protocol, self.port_min,
                               self.port_max, self.remote))

    @property
    def is_default_egress(self) -> bool:
        """One of the allow-all egress rules Neutron puts into every new group."""
        return (self.direction == "egress" and self.protocol is None
                and self.port_min is None and self.port_max is None and self.remote is None)

    def to_spec(self) -> dict[str, Any]:
        return {"direction": self.direction, "protocol": self.protocol or "any",
                "portRangeMin": self.port_min, "portRangeMax": self.port_max,
                "remoteIPPrefix": self.remote or ("::/0" if self.ethertype == "IPv6"
                                                  else "0.0.0.0/0"),
                "ethertype": self.ethertype}

    def to_neutron(self) -> dict[str, Any]:
        return {"direction": self.direction, "ether_type": self.ethertype,
                "protocol": self.protocol, "port_range_min": self.port_min,
                "port_range_max": self.port_max, "remote_ip_prefix": self.remote}


def _remote(prefix: str | None) -> str | None:
    """Canonical CIDR; "everything" (0.0.0.0/0, ::/0, empty) is None as Neutron may store it."""
    if not prefix:
        return None
    net = ipaddress.ip_network(prefix, strict=False)
    return None if net.prefixlen == 0 else str(net)


def _ports(low: int | None, high: int | None) -> tuple[int | None, int | None]:
    if low is None and high is None:
        return None, None
    return (low if low is not None else high), (high if high is not None else low)


def desired_key(rule: Mapping[str, Any]) -> RuleKey:
    """Normalise a spec rule (``direction``, ``protocol``, ``portRangeMin/Max``, ...)."""
    protocol = rule.get("protocol") or "any"
    low, high = _ports(rule.get("portRangeMin"), rule.get("portRangeMax"))
    return RuleKey(direction=rule.get("direction") or "ingress",
                   ethertype=rule.get("ethertype") or "IPv4",
                   protocol=None if protocol == "any" else str(protocol).lower(),
                   port_min=low, port_max=high,
                   remote=_remote(rule.get("remoteIPPrefix")))


def backend_key(rule: Any) -> RuleKey:
    """Normalise a Neutron rule object (or anything with the same attributes)."""
    protocol = getattr(rule, "protocol", None)
    low, high = _ports(getattr(rule, "port_range_min", None),
                       getattr(rule, "port_range_max", None))
    return RuleKey(direction=rule.direction, ethertype=getattr(rule, "ether_type", "IPv4"),
                   protocol=str(protocol).lower() if protocol not in (None, "", "any")
                   else None,
                   port_min=low, port_max=high,
                   remote=_remote(getattr(rule, "remote_ip_prefix", None)))


def diff_rules(desired: Iterable[Mapping[str, Any]], existing: Iterable[Any]
               ) -> tuple[list[RuleKey], list[str]]:
    """What to create and which rule IDs to delete so ``existing`` matches ``desired``.

    Default egress rules are kept even when not desired; rules that reference a remote
    group (not expressible in the spec) are left alone too.
    """
    wanted = {desired_key(rule) for rule in desired}
    present: dict[RuleKey, str] = {}
    remove: list[str] = []
    for rule in existing:
        if getattr(rule, "remote_group_id", None):
            continue
        key = backend_key(rule)
        if key in present or (key not in wanted and not key.is_default_egress):
            remove.append(str(rule.id))
        else:
            present[key] = str(rule.id)
    return sorted(wanted - present.keys(), key=RuleKey.sort_key), remove


class SecurityGroupService(_NeutronService):
    """SecurityGroup: ``description`` and ``rules``."""

    def _lister(self, conn: Connection) -> Any:
        return conn.network.security_groups

    def _to_resource(self, conn: Connection, item: Any, owner_uid: str) -> BackendResource:
        rules = [backend_key(r) for r in conn.network.security_group_rules(
            security_group_id=item.id) if not getattr(r, "remote_group_id", None)]
        # Security groups have no status: existing means enforced.
        return BackendResource(
            id=str(item.id), owner_uid=owner_uid, state="ACTIVE",
            desired={"description": item.description or "",
                     "rules": [k.to_spec() for k in sorted(rules, key=RuleKey.sort_key)
                               if not k.is_default_egress]})

    @staticmethod
    def _converge(conn: Connection, group_id: str, rules: Iterable[Mapping[str, Any]]) -> None:
        existing = list(conn.network.security_group_rules(security_group_id=group_id))
        add, remove = diff_rules(rules, existing)
        for rule_id in remove:
            conn.network.delete_security_group_rule(rule_id, ignore_missing=True)
        for key in add:
            conn.network.create_security_group_rule(security_group_id=group_id,
                                                    **key.to_neutron())

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        def create(conn: Connection) -> BackendResource:
            item = find_owned(conn.network.security_groups, owner_uid)
            if item is None:
                item = conn.network.create_security_group(
                    name=resource_name(owner_uid), description=desired.get("description", ""))
            item = tag(conn, item, owner_uid)
            self._converge(conn, item.id, desired.get("rules") or [])
            return self._to_resource(conn, item, owner_uid)
        return await self.connections.run(scope, create)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        def update(conn: Connection) -> BackendResource:
            item = conn.network.update_security_group(
                resource.id, description=desired.get("description", ""))
            self._converge(conn, item.id, desired.get("rules") or [])
            return self._to_resource(conn, item, resource.owner_uid)
        return await self.connections.run(scope, update)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        await self.connections.run(scope, lambda conn: conn.network.delete_security_group(
            resource.id, ignore_missing=True))
