"""The Garden: one client of its API, connected on first use, and the CloudProfile.

The provider is built before the event loop that runs the controllers exists, and the
Kubernetes client's HTTP session belongs to one loop, so the client connects lazily in the
loop that first needs it (and again should another loop use the provider). The CloudProfile
is read at most every :data:`PROFILE_SECONDS`: every create and update needs its versions
and zones, and it changes rarely.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kubernetes_asyncio.config.config_exception import ConfigException

from ...config import GardenerConfig
from ..base import BackendUnavailable, ProviderError
from ..kube import KubeClient
from .mapping import API, Profile
from .offer import profile

PROFILE_SECONDS = 30.0


class Garden:
    def __init__(self, settings: GardenerConfig) -> None:
        self.settings = settings
        self._client: KubeClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cloud_profile: tuple[float, dict[str, Any]] | None = None

    async def client(self) -> KubeClient:
        """The client of the running loop; of two passes connecting at once, the second
        closes its client and uses the first's."""
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        try:
            client = await KubeClient.connect(self.settings)
        except (OSError, ValueError, ConfigException) as exc:
            raise BackendUnavailable(f"the Garden's kubeconfig cannot be used: {exc}"
                                     ) from None
        if self._client is not None and self._loop is loop:
            await client.close()
            return self._client
        self._client, self._loop = client, loop
        return client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

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
