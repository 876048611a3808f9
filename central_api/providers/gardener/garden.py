"""The Garden: one client of its API, connected on first use, and the CloudProfile.

The client is made on first use, one per event loop (:class:`~..kube.Connection`). The
CloudProfile is read at most every :data:`PROFILE_SECONDS`: every create and update needs
its versions and zones, and it changes rarely.
"""

from __future__ import annotations

import time
from typing import Any

from ...config import GardenerConfig
from ..base import ProviderError
from ..kube import Connection, KubeClient
from .mapping import API, Profile
from .offer import profile

PROFILE_SECONDS = 30.0


class Garden:
    def __init__(self, settings: GardenerConfig) -> None:
        self.settings = settings
        self._connection = Connection(settings, "the Garden")
        self._cloud_profile: tuple[float, dict[str, Any]] | None = None

    async def client(self) -> KubeClient:
        """The client of the running loop (:class:`~..kube.Connection`)."""
        return await self._connection.client()

    async def close(self) -> None:
        await self._connection.close()

    async def cloud_profile(self) -> dict[str, Any]:
        """The configured CloudProfile (cached for :data:`PROFILE_SECONDS`)."""
        cached = self._cloud_profile
        if cached is not None and time.monotonic() - cached[0] < PROFILE_SECONDS:
            return cached[1]
        kube = await self.client()
        found = await kube.get(API, "cloudprofiles", "", self.settings.cloud_profile)
        if found is None:
            raise ProviderError(f"the Garden has no CloudProfile "
                                f"{self.settings.cloud_profile!r} (providers.kaas.gardener."
                                "cloudProfile)")
        self._cloud_profile = (time.monotonic(), found)
        return found

    async def profile(self) -> Profile:
        return profile(await self.cloud_profile(), self.settings.region)
