"""Cinder volumes.

Cinder has no tags, so ownership lives in volume metadata ``scs-owner-uid=<uid>`` and the
name ``scs-<uid>``; ``find`` lists by exact name and checks the metadata (the metadata list
filter is admin-only on many clouds). Volumes only grow: Cinder cannot shrink one, so a
smaller ``sizeGiB`` is an InvalidRequest rather than a silent no-op. A changed
``volumeType`` is a retype (with migration if the backend needs it); ``imageRef`` only
matters at creation. A Volume has no architecture: when an image name exists once per
architecture (the convention Servers choose by), the amd64 or untagged image is used — the
Server kind's default architecture — and only an image that exists solely for other
architectures is taken as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openstack.connection import Connection

from ..base import BackendResource, Conflict, InvalidRequest, Scope
from .connection import Connections
from .errors import map_state
from .flavors import image_arch, pick_image
from .ownership import is_owned_by, owner_metadata, resource_name

BUSY = {"in-use", "attaching", "detaching", "reserved", "creating", "downloading",
        "extending", "retyping", "maintenance", "backing-up", "restoring-backup"}


def find_volume(conn: Connection, owner_uid: str) -> Any | None:
    for volume in conn.block_storage.volumes(details=True, name=resource_name(owner_uid)):
        if is_owned_by(volume, owner_uid):
            return volume
    return None


def volume_image(conn: Connection, name: str) -> Any:
    """The image a volume is created from (see the module docstring for the choice)."""
    images = [i for i in conn.image.images(name=name)
              if i.name == name and str(i.status).lower() == "active"]
    if any(image_arch(i) in ("", "amd64") for i in images):
        return pick_image(images, name, "amd64")
    if not images:
        raise InvalidRequest(f"image {name!r} not found")
    return images[0]


class VolumeService:
    """Volume: ``sizeGiB`` (grow only), ``volumeType``, ``imageRef`` (at creation)."""

    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    @staticmethod
    def _to_resource(volume: Any, owner_uid: str) -> BackendResource:
        attachments = volume.attachments or []
        state = map_state(volume.status)
        message = f"Cinder reports {volume.status}" if state == "ERROR" else ""
        return BackendResource(
            id=str(volume.id), owner_uid=owner_uid, state=state, message=message,
            desired={"sizeGiB": int(volume.size or 0), "volumeType": volume.volume_type or "",
                     "imageRef": (volume.metadata or {}).get("scs-image", "")},
            observed={"attachedTo": attachments[0].get("server_id", "") if attachments
                      else ""})

    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        def find(conn: Connection) -> BackendResource | None:
            volume = find_volume(conn, owner_uid)
            return None if volume is None else self._to_resource(volume, owner_uid)
        return await self.connections.run(scope, find)

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        def create(conn: Connection) -> BackendResource:
            volume = find_volume(conn, owner_uid)
            if volume is None:
                metadata = owner_metadata(owner_uid)
                attrs: dict[str, Any] = {"name": resource_name(owner_uid),
                                         "size": int(desired["sizeGiB"])}
                if desired.get("volumeType"):
                    attrs["volume_type"] = desired["volumeType"]
                if desired.get("imageRef"):
                    attrs["image_id"] = volume_image(conn, desired["imageRef"]).id
                    metadata["scs-image"] = desired["imageRef"]
                volume = conn.block_storage.create_volume(metadata=metadata, **attrs)
            return self._to_resource(volume, owner_uid)
        return await self.connections.run(scope, create)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        def update(conn: Connection) -> BackendResource:
            volume = conn.block_storage.get_volume(resource.id)
            size = int(desired["sizeGiB"])
            if size < int(volume.size or 0):
                raise InvalidRequest(f"volumes cannot shrink ({volume.size} GiB → {size} GiB)")
            if desired.get("imageRef", "") != (volume.metadata or {}).get("scs-image", ""):
                raise InvalidRequest("imageRef only applies at creation; create a new Volume")
            if size > int(volume.size or 0):
                conn.block_storage.extend_volume(volume.id, size)
            wanted_type = desired.get("volumeType") or ""
            if wanted_type and wanted_type != volume.volume_type:
                conn.block_storage.retype_volume(volume.id, wanted_type,
                                                 migration_policy="on-demand")
            return self._to_resource(conn.block_storage.get_volume(volume.id),
                                     resource.owner_uid)
        return await self.connections.run(scope, update)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        def delete(conn: Connection) -> None:
            volume = conn.block_storage.find_volume(resource.id, ignore_missing=True)
            if volume is None or volume.status == "deleting":
                return
            if volume.attachments or volume.status in BUSY:
                # Cinder would answer 400 (terminal); this is a wait for the server to let go.
                raise Conflict(f"volume is {volume.status}; it is deleted once detached")
            conn.block_storage.delete_volume(volume.id, ignore_missing=True)
        await self.connections.run(scope, delete)
