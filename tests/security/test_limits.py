"""What one authenticated caller may cost a real ``scs serve``: watch memory, watches per
identity, slow and excess connections, object size and the tenant's storage quota.

Each attack of issue 22 runs against a server whose limits are lowered with ``prlimit``
(address space, open files), so that a regression fails here instead of taking the machine
down with it.
"""

from __future__ import annotations

import base64
import contextlib
import resource
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.security.support import (
    NO_RATE_LIMIT,
    TENANTS,
    assert_forbidden,
    bind,
    can_i,
    client,
    create_namespace,
    create_service_account,
    created,
    request_token,
    sa_subject,
    secret,
    tenant,
    tls,
    unique,
    wait_for,
)
from tests.server import ScsServer

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
HEADER_TIMEOUT = 1.0
MAX_CONNECTIONS = 160
WATCHES_PER_USER = 70
OPEN_FILES = 420


def memory(pid: int, field: str = "VmRSS") -> int:
    """Bytes of ``field`` (VmRSS: resident, VmSize: address space) of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def open_descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def limit(pid: int, **limits: int) -> None:
    """``prlimit`` on the running server (soft and hard), e.g. ``as_=...``, ``nofile=...``."""
    args = [f"--{name.rstrip('_')}={value}" for name, value in limits.items()]
    subprocess.run(["prlimit", f"--pid={pid}", *args], check=True)


class Limited:
    def __init__(self, server: ScsServer, admin: httpx.Client, member: httpx.Client,
                 namespace: str) -> None:
        self.server, self.admin, self.member, self.namespace = server, admin, member, namespace

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def alive(self) -> bool:
        assert self.server.proc is not None
        return self.server.proc.poll() is None

    def log(self) -> str:
        return self.server.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    """A server with low limits; tenant ``acme`` (namespace acme-a) and a member of it."""
    config = tmp_path_factory.mktemp("limits") / "config.yaml"
    config.write_text(yaml.safe_dump({"limits": {
        "headerTimeoutSeconds": HEADER_TIMEOUT, "maxConnections": MAX_CONNECTIONS,
        "watchesPerUser": WATCHES_PER_USER}}))
    server = ScsServer(extra_args=["--config", str(config), *NO_RATE_LIMIT],
                       address_space=3 * 1024 * MiB)  # the watch test lowers it further
    admin = None
    try:
        server.start()
        admin = client(server, server.token)
        created(admin.post(TENANTS, json=tenant("acme")), "tenant acme")
        create_namespace(admin, "acme-a", "acme")
        create_namespace(admin, "robots")
        create_service_account(admin, "robots", "member")
        bind(admin, "member", sa_subject("robots", "member"), "acme-a")
        with client(server, request_token(admin, "robots", "member")) as member:
            wait_for(lambda: can_i(member, "create", "secrets", "", "acme-a"),
                     what="the member binding")
            yield Limited(server, admin, member, "acme-a")
    finally:
        if admin is not None:
            admin.close()
        server.cleanup()


def big_secret(name: str, size: int) -> dict[str, Any]:
    body = secret(name)
    body["data"] = {"blob": base64.b64encode(b"x" * size).decode()}
    return body


# --- watches ----------------------------------------------------------------------------------

def test_watch_memory_does_not_grow_with_the_namespace(limited: Limited) -> None:
    """Issue 22: every watch built the namespace's whole list for itself (about 1.2x its size
    each); 60 watches of 30 MB of Secrets would need about 2 GB. The server runs under an
    address-space limit far below that."""
    path = f"/api/v1/namespaces/{limited.namespace}/secrets"
    before = limited.member.get(path).json()["metadata"]["resourceVersion"]
    for i in range(30):
        created(limited.member.post(path, json=big_secret(f"blob-{i}", 750 * 1024)),
                f"secret blob-{i}")
    time.sleep(1)
    limit(limited.pid, as_=memory(limited.pid, "VmSize") + 1024 * MiB)
    # From now (the initial list), and from before the writes (a replay of their events).
    for params in ({"watch": "1"}, {"watch": "1", "resourceVersion": before}):
        at_rest = memory(limited.pid)
        with contextlib.ExitStack() as stack:
            for _ in range(60):  # the client reads nothing: the server must not buffer for it
                stack.enter_context(limited.member.stream("GET", path, params=params))
            time.sleep(3)
            grown = memory(limited.pid) - at_rest
            assert limited.alive(), limited.log()[-3000:]
            assert grown < 400 * MiB, \
                f"60 watches ({params}) of a 30 MB namespace took {grown // MiB} MiB"
            assert limited.admin.get("/version").status_code == 200
        time.sleep(1)


def test_watches_per_identity_are_capped_with_429(limited: Limited) -> None:
    path = f"/api/v1/namespaces/{limited.namespace}/secrets"
    name = unique("watcher")
    create_service_account(limited.admin, "robots", name)
    bind(limited.admin, "member", sa_subject("robots", name), limited.namespace)
    watcher = client(limited.server, request_token(limited.admin, "robots", name))
    wait_for(lambda: can_i(watcher, "watch", "secrets", "", limited.namespace),
             what="the watcher's binding")
    now = watcher.get(path, params={"limit": "1"}).json()["metadata"]["resourceVersion"]
    with contextlib.ExitStack() as stack:
        stack.callback(watcher.close)
        for _ in range(WATCHES_PER_USER):
            response = stack.enter_context(watcher.stream(
                "GET", path, params={"watch": "1", "resourceVersion": now}))
            assert response.status_code == 200
        refused = watcher.get(path, params={"watch": "1", "resourceVersion": now})
        assert refused.status_code == 429, refused.text
        assert "too many open watches" in refused.json()["message"]
        assert refused.headers.get("retry-after")
        admin_watch = stack.enter_context(limited.admin.stream(
            "GET", path, params={"watch": "1", "resourceVersion": now}))
        assert admin_watch.status_code == 200  # the operator is not counted
        assert limited.member.get(path, params={"limit": "1"}).status_code == 200  # others

    # closed watches are released: the next one is admitted
    with client(limited.server, request_token(limited.admin, "robots", name)) as again:
        wait_for(lambda: _watch_status(again, path, now) == 200, timeout=5,
                 what="closed watches to be released")


def _watch_status(http: httpx.Client, path: str, revision: str) -> int:
    with http.stream("GET", path, params={"watch": "1", "timeoutSeconds": "1",
                                          "resourceVersion": revision}) as response:
        return response.status_code


# --- connections ------------------------------------------------------------------------------

def _tls_connect(server: ScsServer) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return tls(server).wrap_socket(raw, server_hostname="127.0.0.1")


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def test_a_partial_request_header_is_closed_after_the_header_timeout(limited: Limited) -> None:
    with _tls_connect(limited.server) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        assert _closed_by_peer(sock, HEADER_TIMEOUT + 5), "a half-sent header kept its connection"
        assert time.monotonic() - started < HEADER_TIMEOUT + 3


def test_an_idle_keep_alive_connection_dribbling_bytes_is_closed(limited: Limited) -> None:
    """After a response, the next request's header has to arrive within the timeout too,
    however slowly its bytes trickle in (valid ones: llhttp answers a malformed request
    line with 400 at once, which would not test the deadline)."""
    with _tls_connect(limited.server) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        answer = b""
        while not answer.endswith(b"}"):  # the whole JSON body of /version
            answer += sock.recv(4096)
        assert b"200 OK" in answer
        sock.sendall(b"GET /version HTTP/1.1\r\nX-Slow: ")
        closed = False
        for _ in range(int(HEADER_TIMEOUT * 10) + 30):
            try:
                sock.sendall(b"s")
            except OSError:
                closed = True
                break
            if _closed_by_peer(sock, 0.1):
                closed = True
                break
        assert closed, "a connection dribbling a header byte by byte stayed open"


def test_a_connection_flood_cannot_exhaust_descriptors(limited: Limited) -> None:
    """Issue 22: about a thousand half-open connections exhausted a 1,024 file limit and
    locked everyone out. Here the server may open 420 files and is sent 800 connections:
    it keeps its descriptors below the limit, and answers again once the flood stops."""
    limit(limited.pid, nofile=OPEN_FILES)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the flood's own sockets
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    flood: list[socket.socket] = []
    try:
        for _ in range(800):
            with contextlib.suppress(OSError):
                flood.append(socket.create_connection(("127.0.0.1", limited.server.port),
                                                      timeout=5))
        time.sleep(1)
        assert open_descriptors(limited.pid) < OPEN_FILES - 32
        refused = sum(_closed_by_peer(sock, 0.01) for sock in flood)
        assert refused >= len(flood) - MAX_CONNECTIONS - 8, \
            f"only {refused} of {len(flood)} connections beyond the cap were closed"
    finally:
        for sock in flood:
            sock.close()
    wait_for(lambda: _ready(limited.server), timeout=10,
             what="the server to take new connections after the flood")
    assert "Too many open files" not in limited.log()


def _ready(server: ScsServer) -> bool:
    try:
        with client(server, server.token) as fresh:  # a new connection, not a kept-alive one
            return fresh.get("/readyz").status_code == 200
    except httpx.TransportError:  # refused while the flood's connections are let go
        return False


# --- object size and the tenant's storage quota ------------------------------------------------

def test_objects_over_the_size_limit_are_refused_with_413(limited: Limited) -> None:
    path = f"/api/v1/namespaces/{limited.namespace}/secrets"
    response = limited.member.post(path, json=big_secret("too-big", 1200 * 1024))
    assert response.status_code == 413, response.text
    status = response.json()
    assert status["reason"] == "RequestEntityTooLarge"
    assert "limit for one object is 1572864 bytes" in status["message"]
    assert limited.member.get(f"{path}/too-big").status_code == 404


def test_a_tenants_storage_quota_refuses_growth_and_is_reported(limited: Limited) -> None:
    admin, ns = limited.admin, unique("quota")
    quota_tenant = unique("small")
    created(admin.post(TENANTS, json={
        **tenant(quota_tenant),
        "spec": {**tenant(quota_tenant)["spec"],
                 "quotas": {"apiObjects": 4, "apiBytes": 400 * 1024}}}), "small tenant")
    create_namespace(admin, ns, quota_tenant)
    bind(admin, "member", sa_subject("robots", "member"), ns)
    path = f"/api/v1/namespaces/{ns}/secrets"
    wait_for(lambda: can_i(limited.member, "create", "secrets", "", ns), what="binding")

    # Onboarding writes the tenant's credential Secret into the tenant's own namespace, which
    # counts too: wait for it, or the counts below race with it.
    wait_for(lambda: _tenant_ready(admin, quota_tenant), what="the tenant onboarded")

    # bytes: 300 KiB fit, another 200 KiB would not
    created(limited.member.post(path, json=big_secret("first", 220 * 1024)), "first")
    usage = wait_for(lambda: _api_usage(admin, quota_tenant, lambda u: u["objects"] >= 3),
                     what="the usage in the tenant's status")
    over = assert_forbidden(limited.member.post(path, json=big_secret("second", 150 * 1024)),
                            "a write beyond the tenant's apiBytes")
    assert f'exceeded quota of tenant "{quota_tenant}"' in over["message"]
    assert "apiBytes" in over["message"]
    assert limited.member.get(f"{path}/second").status_code == 404

    # objects: our member binding, the credential Secret and "first" are counted already
    for i in range(4 - usage["objects"]):
        created(limited.member.post(path, json=secret(f"small-{i}")), f"small-{i}")
    over = assert_forbidden(limited.member.post(path, json=secret("one-too-many")),
                            "an object beyond the tenant's apiObjects")
    assert "apiObjects" in over["message"]

    # deleting makes room again, and the status follows
    assert limited.member.delete(f"{path}/first").status_code == 200
    wait_for(lambda: _api_usage(admin, quota_tenant, lambda u: u["bytes"] < 100 * 1024),
             what="the freed bytes in the status")
    created(limited.member.post(path, json=secret("fits-again")), "after the delete")


def _tenant_ready(admin: httpx.Client, name: str) -> bool:
    conditions = (admin.get(f"{TENANTS}/{name}").json().get("status") or {}).get("conditions")
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions or ())


def _api_usage(admin: httpx.Client, name: str, ready: Any) -> dict[str, int] | None:
    usage = (admin.get(f"{TENANTS}/{name}").json().get("status") or {}).get("apiUsage")
    return usage if usage and ready(usage) else None


def test_the_store_file_is_private(limited: Limited) -> None:
    for path in limited.server.data_dir.glob("state.db*"):
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is readable by others"
