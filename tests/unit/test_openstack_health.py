"""What an OpenStack probe failure says in public (:func:`health._reason`), from the real
exceptions keystoneauth raises against loopback sockets: a closed port, and a listening
socket nobody answers. The whole probe against the real services is in
tests/iaas_openstack/test_status_probes.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1.session import Session

from central_api.providers.openstack.health import SERVICES, _reason


def failure(url: str, timeout: float) -> BaseException:
    with pytest.raises(ks_exceptions.ConnectionError) as caught:
        Session().get(url, timeout=timeout, authenticated=False)
    return caught.value


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_a_closed_port_names_the_socket_error_not_the_url(closed_port: int) -> None:
    text = _reason(failure(f"http://127.0.0.1:{closed_port}/v2/images?limit=1", 5), 5)
    assert text == "cannot connect (ECONNREFUSED)"


def test_a_silent_service_is_a_timeout(silent_port: int) -> None:
    assert _reason(failure(f"http://127.0.0.1:{silent_port}/", 0.3), 0.3) == \
        "no answer within 0.3 s"


def test_other_failures_say_their_kind_only() -> None:
    assert _reason(ks_exceptions.EndpointNotFound("http://10.0.0.1:9292"), 5) == \
        "not in the service catalog"
    assert _reason(RuntimeError("secret http://u:p@host/"), 5) == "failed (RuntimeError)"


def test_every_probe_path_asks_for_little_and_has_no_version_prefix() -> None:
    for proxy, path in SERVICES.values():
        assert path.startswith("/") and not path.startswith(("/v2", "/v3")), (proxy, path)
        assert "limit=1" in path or path == "/types", path
