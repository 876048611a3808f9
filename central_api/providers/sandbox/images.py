"""Simulated Glance: private images imported from a URL.

An Image turns ACTIVE after its import delay, like a web-download import that succeeds. The
sandbox never fetches the URL (a simulated cloud must not make the Central API's host send
requests on a user's behalf), so it reports no size and no checksum and cannot verify
``spec.checksum``; the Ready message says so.
"""

from __future__ import annotations

from typing import Any

from ...kinds.iaas import IMAGE_IMMUTABLE
from ..base import BackendResource
from .records import Record
from .services import Desired, SandboxService

NOT_DOWNLOADED = "nothing was downloaded, so size and checksum are not known"


class ImageService(SandboxService):
    kind = "Image"
    immutable = IMAGE_IMMUTABLE

    def usage(self, desired: Desired) -> dict[str, int]:
        return {"images": 1}

    def observed(self, rec: Record) -> dict[str, Any]:
        return {"sizeBytes": 0, "checksum": ""}

    def view(self, rec: Record) -> BackendResource:
        resource = super().view(rec)
        if resource.state == "ACTIVE":
            resource.message = NOT_DOWNLOADED
        return resource
