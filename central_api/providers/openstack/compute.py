"""Nova: keypairs and servers.

Server conventions:

- **Ownership.** Name ``scs-<uid>``, Nova tag and metadata ``scs-owner-uid=<uid>``.
- **VM-HA.** ``haPolicy: restart`` sets the server metadata ``HA_Enabled=True``, the key
  OpenStack Masakari (instance HA) uses to select servers it evacuates/restarts when their
  host fails, plus ``scs-ha-policy=restart`` for the record. ``none`` removes both. (No
  ratified SCS VM-HA standard key was found; Masakari's key is what existing clouds honour.)
- **Architecture and GPUs** are chosen through flavor extra specs and image properties; see
  :mod:`.flavors`.
- **Images.** ``image`` names a provider image (per architecture, see :mod:`.flavors`);
  ``imageRef`` is a tenant's Image object, whose Glance ID the controller resolves for
  booting only: the reference (not the ID) is part of the immutable fields, so a deleted or
  replaced Image never affects a running server.
- **Immutable fields.** Flavor/resources, image, architecture, GPUs, networks, keypair and
  user data cannot change in place (that would be a rebuild or resize with downtime): their
  hash is kept in metadata ``scs-spec-sha256`` and a change raises InvalidRequest. Security
  groups, volumes and the HA policy are reconciled in place; volumes are attached only once
  the server is ACTIVE (or SHUTOFF), so a Server reports them on a later update.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from openstack.connection import Connection

from ..base import BackendResource, InvalidRequest, Scope
from .connection import Connections
from .errors import fault_message, map_state
from .flavors import check_flavor, image_arch, normalise_arch, pick_flavor, pick_image
from .keys import fingerprint
from .ownership import OWNER_KEY, is_owned_by, owner_tag, resource_name

HA_METADATA = {"HA_Enabled": "True", "scs-ha-policy": "restart"}
SPEC_HASH_KEY = "scs-spec-sha256"
IMAGE_KEY = "scs-image"
ARCH_KEY = "scs-architecture"
IMMUTABLE = ("flavor", "resources", "image", "architecture", "gpu", "networkIDs", "keypairID",
             "userData")
POWER_STATES = {0: "NOSTATE", 1: "RUNNING", 3: "PAUSED", 4: "SHUTDOWN", 6: "CRASHED",
                7: "SUSPENDED"}
ATTACHABLE = {"ACTIVE", "SHUTOFF"}


def spec_hash(desired: Mapping[str, Any]) -> str:
    """A stable hash of the fields that cannot change without replacing the server."""
    subset = {k: desired.get(k) for k in IMMUTABLE}
    subset["architecture"] = normalise_arch(subset.get("architecture") or "amd64")
    if desired.get("imageRef"):  # only then: servers booted before Images existed keep theirs
        subset["imageRef"] = desired["imageRef"]
    return hashlib.sha256(json.dumps(subset, sort_keys=True, default=str).encode()).hexdigest()


# -- Keypair -----------------------------------------------------------------------------------
class KeypairService:
    """Keypair named ``scs-<uid>`` (unique per owner, hence per project); the name is its ID.

    Nova keypairs cannot be edited: a changed ``publicKey`` replaces the keypair under the same
    name (servers already booted keep the key they were given).
    """

    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    @staticmethod
    def _to_resource(item: Any, owner_uid: str) -> BackendResource:
        key = (item.public_key or "").strip()
        return BackendResource(id=str(item.name), owner_uid=owner_uid, state="ACTIVE",
                               desired={"publicKey": key},
                               observed={"fingerprint": item.fingerprint or fingerprint(key)})

    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        def find(conn: Connection) -> BackendResource | None:
            item = conn.compute.find_keypair(resource_name(owner_uid), ignore_missing=True)
            return None if item is None else self._to_resource(item, owner_uid)
        return await self.connections.run(scope, find)

    @staticmethod
    def _ensure(conn: Connection, owner_uid: str, public_key: str) -> Any:
        fingerprint(public_key)  # refuse garbage before Nova does, with a clearer message
        name = resource_name(owner_uid)
        item = conn.compute.find_keypair(name, ignore_missing=True)
        if item is not None and (item.public_key or "").strip() == public_key.strip():
            return item
        if item is not None:
            conn.compute.delete_keypair(name, ignore_missing=True)
        return conn.compute.create_keypair(name=name, public_key=public_key.strip())

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        def create(conn: Connection) -> BackendResource:
            return self._to_resource(self._ensure(conn, owner_uid, desired["publicKey"]),
                                     owner_uid)
        return await self.connections.run(scope, create)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        return await self.create(scope, resource.owner_uid, desired)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        await self.connections.run(
            scope, lambda conn: conn.compute.delete_keypair(resource.id, ignore_missing=True))


# -- Server ------------------------------------------------------------------------------------
def find_server(conn: Connection, owner_uid: str) -> Any | None:
    """The server for ``owner_uid``: by tag, else by exact name (both checked for ownership)."""
    for server in conn.compute.servers(tags=owner_tag(owner_uid)):
        if is_owned_by(server, owner_uid):  # old Nova ignores the tags filter
            return server
    name = resource_name(owner_uid)
    for server in conn.compute.servers(name=f"^{re.escape(name)}$"):
        if is_owned_by(server, owner_uid):
            return server
    return None


def _addresses(server: Any) -> list[str]:
    """Fixed addresses first, then floating ones, in Nova's network order."""
    fixed: list[str] = []
    floating: list[str] = []
    for entries in (server.addresses or {}).values():
        for entry in entries:
            target = floating if entry.get("OS-EXT-IPS:type") == "floating" else fixed
            if entry.get("addr") and entry["addr"] not in target:
                target.append(entry["addr"])
    return fixed + floating


def _flavor_name(server: Any) -> str:
    flavor = server.flavor
    if flavor is None:
        return ""
    return str(getattr(flavor, "original_name", None) or getattr(flavor, "name", None)
               or getattr(flavor, "id", None) or "")


class ServerService:
    """Server: see the module docstring for the conventions."""

    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    def _to_resource(self, conn: Connection, server: Any, owner_uid: str) -> BackendResource:
        metadata = server.metadata or {}
        ports = sorted(conn.network.ports(device_id=server.id),
                       key=lambda p: str(p.created_at or ""))
        networks = list(dict.fromkeys(p.network_id for p in ports))
        groups = sorted({g for p in ports for g in p.security_group_ids or []})
        volumes = sorted(v["id"] for v in server.attached_volumes or [])
        state = map_state(server.status)
        message = fault_message(server.fault) if state == "ERROR" else ""
        return BackendResource(
            id=str(server.id), owner_uid=owner_uid, state=state, message=message,
            desired={"flavor": _flavor_name(server), "image": metadata.get(IMAGE_KEY, ""),
                     "architecture": metadata.get(ARCH_KEY, ""), "networkIDs": networks,
                     "securityGroupIDs": groups, "volumeIDs": volumes,
                     "keypairID": server.key_name or "",
                     "haPolicy": "restart" if metadata.get("HA_Enabled") == "True" else "none"},
            observed={"addresses": _addresses(server), "flavor": _flavor_name(server),
                      "powerState": POWER_STATES.get(server.power_state, "") if isinstance(
                          server.power_state, int) else str(server.power_state or "")})

    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        def find(conn: Connection) -> BackendResource | None:
            server = find_server(conn, owner_uid)
            return None if server is None else self._to_resource(conn, server, owner_uid)
        return await self.connections.run(scope, find)

    @staticmethod
    def _flavor(conn: Connection, desired: Mapping[str, Any]) -> Any:
        arch = desired.get("architecture") or "amd64"
        gpu = desired.get("gpu") or None
        if desired.get("flavor"):
            flavor = conn.compute.find_flavor(desired["flavor"], ignore_missing=True,
                                              get_extra_specs=True)
            if flavor is None:
                raise InvalidRequest(f"flavor {desired['flavor']!r} not found")
            check_flavor(flavor, arch, gpu)
            return flavor
        resources = desired.get("resources") or {}
        if not resources:
            raise InvalidRequest("give a flavor or resources")
        return pick_flavor(conn.compute.flavors(details=True, get_extra_specs=True),
                           int(resources["cpu"]), int(resources["memoryMiB"]), arch, gpu)

    @staticmethod
    def _image(conn: Connection, desired: Mapping[str, Any], arch: str) -> Any:
        """The Image object's Glance image (``imageRef``), or the provider image by name."""
        if not desired.get("imageID"):
            return pick_image(conn.image.images(name=desired["image"]), desired["image"], arch)
        image = conn.image.get_image(desired["imageID"])
        if image_arch(image) not in ("", arch):
            raise InvalidRequest(f"the Image is built for {image_arch(image)}, the server asks "
                                 f"for {arch}")
        return image

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        def create(conn: Connection) -> BackendResource:
            server = find_server(conn, owner_uid)
            if server is None:
                server = conn.compute.create_server(**self._create_attrs(conn, owner_uid,
                                                                         desired))
                server = conn.compute.get_server(server.id)
            return self._to_resource(conn, server, owner_uid)
        return await self.connections.run(scope, create)

    def _create_attrs(self, conn: Connection, owner_uid: str, desired: Mapping[str, Any]
                      ) -> dict[str, Any]:
        arch = normalise_arch(desired.get("architecture") or "amd64")
        flavor = self._flavor(conn, desired)
        image = self._image(conn, desired, arch)
        metadata = {OWNER_KEY: owner_uid, IMAGE_KEY: desired.get("image") or "", ARCH_KEY: arch,
                    SPEC_HASH_KEY: spec_hash(desired)}
        if desired.get("haPolicy") == "restart":
            metadata.update(HA_METADATA)
        attrs: dict[str, Any] = {
            "name": resource_name(owner_uid), "flavor_id": flavor.id, "image_id": image.id,
            "networks": [{"uuid": n} for n in desired.get("networkIDs") or []],
            "metadata": metadata, "tags": [owner_tag(owner_uid)]}
        if desired.get("securityGroupIDs"):
            # Nova resolves these through Neutron by name or ID.
            attrs["security_groups"] = [{"name": g} for g in desired["securityGroupIDs"]]
        if desired.get("keypairID"):
            attrs["key_name"] = desired["keypairID"]
        if desired.get("userData"):
            attrs["user_data"] = base64.b64encode(desired["userData"].encode()).decode()
        return attrs

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        def update(conn: Connection) -> BackendResource:
            server = conn.compute.get_server(resource.id)
            metadata = server.metadata or {}
            if metadata.get(SPEC_HASH_KEY) and metadata[SPEC_HASH_KEY] != spec_hash(desired):
                raise InvalidRequest(
                    "flavor/resources, image, architecture, gpu, networks, keypair and "
                    "userData cannot change in place; create a new Server instead")
            self._reconcile_ha(conn, server, desired.get("haPolicy") == "restart")
            if desired.get("securityGroupIDs"):
                # None asked: keep what Nova gave at boot (the project's default group)
                # rather than strip the server of every group and so of all traffic.
                self._reconcile_groups(conn, server, set(desired["securityGroupIDs"]))
            if server.status in ATTACHABLE:
                self._reconcile_volumes(conn, server, set(desired.get("volumeIDs") or []))
            return self._to_resource(conn, conn.compute.get_server(server.id),
                                     resource.owner_uid)
        return await self.connections.run(scope, update)

    @staticmethod
    def _reconcile_ha(conn: Connection, server: Any, wanted: bool) -> None:
        metadata = server.metadata or {}
        has = metadata.get("HA_Enabled") == "True"
        if wanted and not has:
            conn.compute.set_server_metadata(server, **HA_METADATA)
        elif has and not wanted:
            conn.compute.delete_server_metadata(server, list(HA_METADATA))

    @staticmethod
    def _reconcile_groups(conn: Connection, server: Any, wanted: set[str]) -> None:
        current = {g for p in conn.network.ports(device_id=server.id)
                   for g in p.security_group_ids or []}
        for group in sorted(wanted - current):
            conn.compute.add_security_group_to_server(server, group)
        for group in sorted(current - wanted):
            conn.compute.remove_security_group_from_server(server, group)

    @staticmethod
    def _reconcile_volumes(conn: Connection, server: Any, wanted: set[str]) -> None:
        current = {v["id"] for v in server.attached_volumes or []}
        for volume in sorted(wanted - current):
            conn.compute.create_volume_attachment(server, volume=volume)
        for volume in sorted(current - wanted):
            conn.compute.delete_volume_attachment(server, volume, ignore_missing=True)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        await self.connections.run(
            scope, lambda conn: conn.compute.delete_server(resource.id, ignore_missing=True))
