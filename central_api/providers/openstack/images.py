"""Glance: private images that Glance imports from a URL (the Image kind).

- **Ownership.** Name ``scs-<uid>``, tag ``scs-owner-uid=<uid>``, visibility ``private``,
  owned by the namespace's project (others can share or publish look-alikes).
- **Two steps, resumable.** Creating the image record and asking Glance to import the URL
  (``web-download``) are two calls. Glance marks an image when an import starts
  (``os_glance_import_task``, then ``os_glance_importing_to_stores``/``_failed_import``) and
  keeps the marks. An unmarked ``queued`` image (a crash in between) reports no source, so
  the reconciler's update starts the import; a marked one that is ``queued`` again failed
  and reports ERROR with the task's message for as long as Glance keeps the task. A failed
  import is never retried by itself: the user recreates the Image.
- **Refused imports.** Glance may refuse to start an import at all (400 "URI for
  web-download does not pass filtering" for a source its ``[import_filtering_opts]`` do not
  allow, a method it does not offer, a policy). openstacksdk returns that answer instead of
  raising, and the image stays ``queued`` and unmarked, so it would look like an import never
  asked for and be asked again on every reconcile. The refusal is therefore recorded on the
  image (``scs-import-refused``: Glance's status and message) and reported as ERROR from then
  on, like a failed import; answers that may heal (409, 413, 5xx) raise and are retried.
- **Only public sources.** Glance downloads from inside the provider's network, so before it
  is asked to, every address the URL's host resolves to must be public (:mod:`...net`);
  otherwise a tenant could have Glance read the metadata service or an internal endpoint and
  hand the answer back as an image. This covers the URL as given, not what Glance does next:
  Glance follows redirects and resolves the name again itself, and its
  ``[import_filtering_opts]`` check only the first URL too. The tenant's own application
  credential can ask Glance for the same import directly, so the real boundary is the
  provider's egress filtering for glance-api (docs/operator.md). Labs that import from
  private addresses set ``allowPrivateImageSources``.
- **Checksums.** Glance hashes the data with its ``hashing_algorithm`` (sha512 by default).
  A ``spec.checksum`` in another algorithm, or one of data the cloud converted
  (``image_conversion``), cannot be verified, which counts like a mismatch: the image
  reports ERROR and is deactivated, so no server in the project boots it.
- **Mutable fields** are Glance properties: ``architecture`` (``hw_architecture`` for Nova's
  scheduler and ``architecture`` for SCS image metadata), ``min_disk``, ``min_ram``,
  ``os_distro``, ``os_version``. Source, checksum and disk format are fixed at creation; the
  requested format is kept in ``scs-disk-format`` because a converting cloud changes
  ``disk_format``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

from openstack.connection import Connection
from openstack.exceptions import ForbiddenException, HttpException, raise_from_response
from openstack.image.v2._proxy import Proxy as GlanceV2
from openstack.image.v2.image import Image as GlanceImage

from ...net import non_public_address
from ..base import BackendResource, InvalidRequest, Scope, State
from .connection import Connections
from .errors import translate
from .flavors import BACKEND_ARCH, image_arch
from .ownership import OWNER_KEY, is_owned_by, owner_tag, resource_name

log = logging.getLogger("central_api.openstack")

SOURCE_KEY = "scs-source-url"
CHECKSUM_KEY = "scs-checksum"
FORMAT_KEY = "scs-disk-format"
IMPORT_LOCK = "os_glance_import_task"
"""Set by Glance while an import runs."""
IMPORT_MARKS = (IMPORT_LOCK, "os_glance_importing_to_stores", "os_glance_failed_import")
REFUSED_KEY = "scs-import-refused"
"""Set by the provider when Glance refused to start the import: its answer."""
PROPERTY_LENGTH = 255
"""Glance keeps at most this many characters of an extra property's value."""
STATES: dict[str, State] = {"active": "ACTIVE", "killed": "ERROR", "deactivated": "ERROR",
                            "deleted": "DELETING", "pending_delete": "DELETING"}
"""Glance's image statuses; the others (queued, saving, uploading, importing) are PENDING."""


def glance(conn: Connection) -> GlanceV2:
    """Glance's v2 API (imports, tasks and deactivation do not exist in v1)."""
    return cast(GlanceV2, conn.image)


def find_image(conn: Connection, owner_uid: str) -> Any | None:
    """The project's own image for ``owner_uid``. Other projects can share or publish
    images carrying any tag or name, so the owner project is checked too."""
    project = conn.current_project_id
    for query in ({"tag": owner_tag(owner_uid)}, {"name": resource_name(owner_uid)}):
        for image in glance(conn).images(**query):
            if image.owner == project and is_owned_by(image, owner_uid):
                return image
    return None


def _property(image: Any, key: str) -> Any:
    """An image attribute or extra property; None and "" are the same (unset)."""
    value = getattr(image, key, None) if key.isidentifier() else None
    if value is None:
        value = (getattr(image, "properties", None) or {}).get(key)
    return "" if value is None else value


def _mutable(desired: Mapping[str, Any]) -> dict[str, Any]:
    """Glance attributes for the fields an Image may change."""
    arch = BACKEND_ARCH[str(desired.get("architecture") or "amd64")]
    return {"hw_architecture": arch, "architecture": arch,
            "min_disk": int(desired.get("minDiskGiB") or 0),
            "min_ram": int(desired.get("minMemoryMiB") or 0),
            "os_distro": str(desired.get("osDistro") or ""),
            "os_version": str(desired.get("osVersion") or "")}


def set_properties(conn: Connection, image: Any, changes: Mapping[str, Any]) -> Any:
    """Update attributes and extra properties. openstacksdk replaces the whole set of extra
    properties with the ones given, so the image's others are passed along."""
    return glance(conn).update_image(image, **{**(image.properties or {}), **changes})


def _changes(image: Any, desired: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in _mutable(desired).items()
            if _property(image, key) != value}


def import_started(image: Any) -> bool:
    """Whether an import was ever requested: Glance marks the image when it starts one and
    keeps the marks after a failure (its task records expire, these do not); an import Glance
    refused to start is marked by the provider."""
    return any(key in (image.properties or {}) for key in (*IMPORT_MARKS, REFUSED_KEY))


def glance_answer(exc: HttpException) -> str:
    """Glance's refusal as one line: status and Glance's own message. Glance answers in
    HTML or plain text; openstacksdk extracts the message from HTML only."""
    response = exc.response
    details = str(exc.details or "")
    text = str(getattr(response, "text", "") or "")
    if text and (not details or details == getattr(response, "reason", None)):
        lines = (re.sub(r"<.+?>", "", line).strip() for line in text.splitlines())
        details = ": ".join(dict.fromkeys(line for line in lines if line))
    code = exc.status_code
    answer = details if details.startswith(str(code)) else f"{code} {details}".strip()
    return answer if len(answer) <= PROPERTY_LENGTH else answer[:PROPERTY_LENGTH - 1] + "…"


def start_import(conn: Connection, image: Any, url: str) -> Any:
    """Ask Glance to import ``url`` (web-download); returns the image. openstacksdk returns
    Glance's answer without raising: a refusal is recorded on the image (see the module
    docstring), answers that may change by themselves raise the contract's error."""
    response = glance(conn).import_image(image, method="web-download", uri=url)
    try:
        raise_from_response(response)
    except HttpException as exc:
        error = translate(exc)
        if not isinstance(error, InvalidRequest) or exc.status_code == 401:
            raise error from exc
        answer = glance_answer(exc)
        log.warning("Glance refused to import %s into image %s: %s", url, image.id, answer)
        image = set_properties(conn, image, {REFUSED_KEY: answer})
    return image


def _failure(conn: Connection, image: Any) -> str:
    tasks = sorted(glance(conn).image_tasks(image),
                   key=lambda t: str(getattr(t, "created_at", "") or ""))
    failed = [t for t in tasks if t.status == "failure"]
    return str(failed[-1].message) if failed else "Glance no longer keeps the reason"


def checksum_problem(image: Any, expected: str) -> str:
    """Why the imported data does not prove to be ``expected``; "" when it does."""
    if not expected:
        return ""
    requested = _property(image, FORMAT_KEY)
    if requested and requested != image.disk_format:
        return (f"cannot verify the checksum: the cloud converted the image from {requested} "
                f"to {image.disk_format}, so its digest is not the downloaded data's")
    algorithm, _, digest = expected.partition(":")
    computed = str(image.hash_algo or "")
    if not computed:
        return f"cannot verify the {algorithm} checksum: this cloud computes no digests"
    if computed != algorithm:
        return (f"cannot verify the {algorithm} checksum: this cloud computes {computed} "
                f"digests; give spec.checksum as {computed}:<hex> in a new Image")
    if str(image.hash_value or "").lower() != digest.lower():
        return (f"checksum mismatch: expected {expected}, the downloaded data has "
                f"{image.hash_algo}:{image.hash_value}")
    return ""


class ImageService:
    """Image: see the module docstring."""

    def __init__(self, connections: Connections, allow_private_sources: bool = False) -> None:
        self.connections = connections
        self.allow_private_sources = allow_private_sources

    def _to_resource(self, conn: Connection, image: Any, owner_uid: str) -> BackendResource:
        status = str(image.status or "").lower()
        state: State = STATES.get(status, "PENDING")
        message = f"Glance reports {status}" if state == "ERROR" else ""
        started = import_started(image)
        source = _property(image, SOURCE_KEY) if started else ""  # "": update imports
        refused = _property(image, REFUSED_KEY)
        if status == "queued" and refused:
            state, message = "ERROR", f"Glance refused to import {source}: {refused}"
        elif status == "queued" and started and not _property(image, IMPORT_LOCK):
            state, message = "ERROR", f"Glance could not import {source}: {_failure(conn, image)}"
        if status in ("active", "deactivated"):
            problem = checksum_problem(image, _property(image, CHECKSUM_KEY))
            if problem:
                state, message = "ERROR", problem
        desired = {"source": {"url": source} if source else None,
                   "checksum": _property(image, CHECKSUM_KEY),
                   # the requested format: a cloud may convert the data (image_conversion)
                   "diskFormat": _property(image, FORMAT_KEY) or image.disk_format or "",
                   "architecture": image_arch(image) or "amd64",
                   "minDiskGiB": int(image.min_disk or 0), "minMemoryMiB": int(image.min_ram or 0),
                   "osDistro": _property(image, "os_distro"),
                   "osVersion": _property(image, "os_version")}
        checksum = f"{image.hash_algo}:{image.hash_value}" if image.hash_value else ""
        return BackendResource(id=str(image.id), owner_uid=owner_uid, state=state,
                               message=message, desired=desired,
                               observed={"sizeBytes": int(image.size or 0),
                                         "checksum": checksum})

    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        def find(conn: Connection) -> BackendResource | None:
            image = find_image(conn, owner_uid)
            return None if image is None else self._verified(conn, image, owner_uid)
        return await self.connections.run(scope, find)

    async def _check_source(self, url: str) -> None:
        if self.allow_private_sources:
            return
        host = urlsplit(url).hostname or ""
        try:
            address = await non_public_address(url)
        except OSError as exc:
            raise InvalidRequest(f"cannot resolve the image source host {host}: {exc}") \
                from None
        if address:
            raise InvalidRequest(f"the image source {host} resolves to {address}, which is not "
                                 "a public address; the cloud only imports from public hosts")

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        url = str(desired["source"]["url"])
        await self._check_source(url)

        def create(conn: Connection) -> BackendResource:
            image = find_image(conn, owner_uid)
            if image is None:
                extra = {**_mutable(desired), OWNER_KEY: owner_uid,
                         CHECKSUM_KEY: desired.get("checksum") or "",
                         FORMAT_KEY: desired["diskFormat"]}
                # The resource, not Proxy.create_image: that helper looks images up by name,
                # adds checksum properties of its own and wants data to upload.
                image = GlanceImage.new(
                    name=resource_name(owner_uid), disk_format=desired["diskFormat"],
                    container_format="bare", visibility="private",
                    tags=[owner_tag(owner_uid)], **{k: v for k, v in extra.items() if v != ""}
                ).create(glance(conn))
            return self._import(conn, image, owner_uid, url)
        return await self.connections.run(scope, create)

    def _import(self, conn: Connection, image: Any, owner_uid: str, url: str
                ) -> BackendResource:
        """Start the import unless one was started (or refused)."""
        if str(image.status) == "queued" and not import_started(image):
            image = set_properties(conn, image, {SOURCE_KEY: url})
            start_import(conn, image, url)
        return self._to_resource(conn, glance(conn).get_image(image.id), owner_uid)

    def _verified(self, conn: Connection, image: Any, owner_uid: str) -> BackendResource:
        """An active image whose data fails ``spec.checksum`` is deactivated, so that no
        one in the project boots it (the resource reports ERROR either way)."""
        if str(image.status) == "active" and checksum_problem(
                image, _property(image, CHECKSUM_KEY)):
            try:
                glance(conn).deactivate_image(image)
                image = glance(conn).get_image(image.id)
            except ForbiddenException:
                log.warning("Glance's policy refuses to deactivate image %s, whose checksum "
                            "does not match", image.id)
        return self._to_resource(conn, image, owner_uid)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        for key in ("checksum", "diskFormat"):
            if resource.desired.get(key) != desired.get(key):
                raise InvalidRequest(f"{key} is fixed at creation; create a new Image")
        url = str(desired["source"]["url"])
        if resource.desired.get("source") is None:
            await self._check_source(url)

        def update(conn: Connection) -> BackendResource:
            image = glance(conn).get_image(resource.id)
            current = _property(image, SOURCE_KEY)
            if current and current != url:
                raise InvalidRequest("the source is fixed at creation; create a new Image")
            changes = _changes(image, desired)
            if changes:
                image = set_properties(conn, image, changes)
            return self._import(conn, image, resource.owner_uid, url)
        return await self.connections.run(scope, update)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        await self.connections.run(
            scope, lambda conn: glance(conn).delete_image(resource.id, ignore_missing=True))
