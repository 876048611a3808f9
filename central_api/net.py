"""Which hosts the Central API may make a backend contact on a user's behalf.

A URL that a user supplies (a tenant's identity provider, an image source) is fetched from
inside the provider's network, where loopback, private and link-local addresses (the
metadata service) reach things no customer should. Callers refuse such URLs unless the
operator allows private addresses for a lab.
"""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit


async def non_public_address(url: str) -> str:
    """The first address ``url``'s host resolves to that is not globally routable, or "".

    Raises OSError when the host does not resolve. The fetch resolves again when it
    connects, so a DNS answer that changes in between (rebinding) is not covered.
    """
    parts = urlsplit(url)
    infos = await asyncio.get_running_loop().getaddrinfo(
        parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            return str(address)
    return ""
