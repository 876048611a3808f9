"""Which addresses count as public for fetches made on a user's behalf (image sources,
tenant identity providers). Literal addresses resolve without DNS, so these run offline."""

from __future__ import annotations

import asyncio

import pytest

from central_api.net import non_public_address


@pytest.mark.parametrize(("url", "address"), [
    ("http://127.0.0.1/x", "127.0.0.1"),
    ("http://2130706433/x", "127.0.0.1"),  # decimal form
    ("http://0177.0.0.1/x", "127.0.0.1"),  # octal form
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://10.1.2.3:8080/x", "10.1.2.3"),
    ("http://[::1]/x", "::1"),
    ("http://[::ffff:169.254.169.254]/x", "::ffff:a9fe:a9fe"),
    ("http://[64:ff9b::a9fe:a9fe]/x", "64:ff9b::a9fe:a9fe"),  # NAT64
    ("http://[2002:a9fe:a9fe::]/x", "2002:a9fe:a9fe::"),  # 6to4
    ("http://[::127.0.0.1]/x", "::7f00:1"),  # IPv4-compatible
    ("http://[fd00::1]/x", "fd00::1"),
])
def test_addresses_that_reach_inside_the_provider_network_are_not_public(
        url: str, address: str) -> None:
    assert asyncio.run(non_public_address(url)) == address


def test_a_name_is_judged_by_the_addresses_it_resolves_to() -> None:
    assert asyncio.run(non_public_address("http://localhost:8080/x")) in ("127.0.0.1", "::1")


@pytest.mark.parametrize("url", ["https://8.8.8.8/x", "http://[2606:4700:4700::1111]/x",
                                 "http://[64:ff9b::808:808]/x"])
def test_public_addresses_pass(url: str) -> None:
    assert asyncio.run(non_public_address(url)) == ""


@pytest.mark.parametrize("url", ["http://a:99999/", "http://[::1/", "http://" + "a" * 64 + "/",
                                 "http://no-such-host.invalid/"])
def test_malformed_or_unresolvable_hosts_raise_os_error(url: str) -> None:
    with pytest.raises(OSError):
        asyncio.run(non_public_address(url))
