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

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")
"""RFC 6052: a NAT64 gateway turns ``64:ff9b::a9fe:a9fe`` into 169.254.169.254."""
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
"""Deprecated IPv4-compatible addresses (``::127.0.0.1``), still routed by some stacks."""


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64, compatible).

    ``is_global`` judges these by their IPv6 prefix alone, yet the packets end up at the
    IPv4 address inside, so that address must be public as well.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64 or address in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    inner = embedded_ipv4(address)
    return address.is_global and (inner is None or inner.is_global)


async def non_public_address(url: str) -> str:
    """The first address ``url``'s host resolves to that is not public, or "".

    Raises OSError when the host does not resolve or the URL's host or port is malformed.
    The fetch resolves again when it connects, so a DNS answer that changes in between
    (rebinding) is not covered; neither are redirects the fetching service follows.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port)
    except (ValueError, UnicodeError) as exc:
        raise OSError(f"malformed host or port: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not is_public(address):
            return str(address)
    return ""
