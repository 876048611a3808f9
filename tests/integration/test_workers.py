"""``scs serve --workers 2``: two forked worker processes on one port, on SQLite and on
PostgreSQL.

Which worker served a connection is read from ``/proc``: the server side of the client's TCP
connection (``/proc/net/tcp``) is a socket inode, and exactly one worker holds a descriptor
of it. So the tests place requests on chosen workers instead of hoping for it.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import create_database, tls, unique, wait_for
from tests.pg import PostgresServer
from tests.server import ScsServer

NAMESPACES = "/api/v1/namespaces"
NETWORKS = "/apis/iaas.scs.community/v1alpha1/namespaces/{ns}/networks"
START_TIMEOUT = 120
"""The parent and then each worker build a server: on the shared 2-core machine, under the
other suites' load, that took longer than the harness' default 30 s."""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ScsServer]:
    store = ""
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        store = create_database(postgres)
    audit = tmp_path_factory.mktemp("audit") / "audit.log"
    srv = ScsServer(store=store, extra_args=["--workers", "2", "--audit-log", str(audit)],
                    config={"providers": {"iaas": {"type": "sandbox", "speed": 0}}})
    try:
        srv.start(timeout=START_TIMEOUT)
        wait_for(lambda: two_workers(srv), what="two workers")
        yield srv
    finally:
        srv.cleanup()


def workers(server: ScsServer) -> set[int]:
    """The worker processes: the children of ``scs serve``."""
    assert server.proc is not None
    pid = server.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(child) for child in children}


def two_workers(server: ScsServer, without: int = 0) -> set[int] | None:
    """The two workers, once there are two (and ``without`` is not one of them)."""
    found = workers(server)
    return found if len(found) == 2 and without not in found else None


def connect(server: ScsServer) -> http.client.HTTPSConnection:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=tls(server),
                                       timeout=10)
    conn.connect()
    return conn


def worker_of(server: ScsServer, conn: http.client.HTTPSConnection) -> int:
    """The pid of the worker holding the server side of ``conn``."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    local, remote = f"0100007F:{server.port:04X}", f"0100007F:{client_port:04X}"

    def inode() -> str | None:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return fields[9]
        return None

    target = f"socket:[{wait_for(inode, what='the accepted connection')}]"

    def holder() -> int | None:
        for pid in workers(server):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd) == target:
                        return pid
                except OSError:
                    continue
        return None

    return wait_for(holder, what="the worker holding the connection")


def call(server: ScsServer, conn: http.client.HTTPSConnection, method: str, path: str,
         body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def on_worker(server: ScsServer, wanted: set[int]) -> tuple[http.client.HTTPSConnection, int]:
    """A new connection that landed on one of ``wanted`` (new connections until one does)."""
    for _ in range(200):
        conn = connect(server)
        call(server, conn, "GET", NAMESPACES + "/default")
        pid = worker_of(server, conn)
        if pid in wanted:
            return conn, pid
        conn.close()
    raise AssertionError(f"no connection reached a worker of {wanted} in 200 tries")


def test_both_workers_serve_requests(server: ScsServer) -> None:
    served: set[int] = set()
    for _ in range(200):
        conn = connect(server)
        status, body = call(server, conn, "GET", NAMESPACES + "/default")
        assert status == 200, body
        served.add(worker_of(server, conn))
        conn.close()
        if served == workers(server):
            return
    raise AssertionError(f"only workers {served} of {workers(server)} served in 200 requests")


def test_a_watch_on_one_worker_sees_a_create_made_on_the_other(server: ScsServer) -> None:
    name = unique("watched")
    watch, watcher = on_worker(server, workers(server))
    writer, other = on_worker(server, workers(server) - {watcher})
    assert other != watcher
    status, listed = call(server, watch, "GET", NAMESPACES)
    assert status == 200
    watch.request("GET", f"{NAMESPACES}?watch=1&resourceVersion="
                         f"{listed['metadata']['resourceVersion']}",
                  headers={"Authorization": f"Bearer {server.token}"})
    stream = watch.getresponse()
    assert stream.status == 200

    status, created = call(server, writer, "POST", NAMESPACES, {"metadata": {"name": name}})
    assert status == 201, created
    assert watch.sock is not None
    watch.sock.settimeout(1.0)  # the create is delivered within a second, or this raises
    event = json.loads(stream.readline())
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", name)
    assert event["object"]["metadata"]["resourceVersion"] == \
        created["metadata"]["resourceVersion"]
    watch.close()
    writer.close()


def test_a_write_on_one_worker_is_read_at_once_on_the_other(server: ScsServer) -> None:
    """Reads are consistent across workers (each with its own caches): a GET or LIST on
    one worker right after a create or delete answered by the other sees it."""
    reader, pid = on_worker(server, workers(server))
    writer, _ = on_worker(server, workers(server) - {pid})
    for _ in range(5):
        name = unique("rw")
        assert call(server, writer, "POST", NAMESPACES, {"metadata": {"name": name}})[0] == 201
        assert call(server, reader, "GET", f"{NAMESPACES}/{name}")[0] == 200
        listed = call(server, reader, "GET", NAMESPACES)[1]["items"]
        assert name in [item["metadata"]["name"] for item in listed]
        assert call(server, writer, "DELETE", f"{NAMESPACES}/{name}")[0] == 200
        status, body = call(server, reader, "GET", f"{NAMESPACES}/{name}")
        assert status == 404 or body["metadata"].get("deletionTimestamp"), body
    reader.close()
    writer.close()


def test_controllers_run_in_one_worker_only(server: ScsServer) -> None:
    """Every Network gets one backend network, reconciled by the one worker that leads."""
    ns = unique("ctl")
    conn = connect(server)
    assert call(server, conn, "POST", NAMESPACES, {"metadata": {"name": ns}})[0] == 201
    names = [f"net{i}" for i in range(4)]
    for name in names:
        status, body = call(server, conn, "POST", NETWORKS.format(ns=ns), {
            "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Network",
            "metadata": {"name": name}, "spec": {}})
        assert status == 201, body

    def ready() -> list[dict[str, Any]] | None:
        items = call(server, conn, "GET", NETWORKS.format(ns=ns))[1]["items"]
        done = [i for i in items if any(c["type"] == "Ready" and c["status"] == "True"
                                        for c in i.get("status", {}).get("conditions", []))]
        return items if len(done) == len(names) else None

    items = wait_for(ready, timeout=30, what="the networks Ready")
    _, inventory = call(server, conn, "GET", "/sandbox/v1/inventory")
    backends = [n["ownerUID"] for n in inventory["resources"]["Network"]
                if n["namespace"] == ns]
    assert sorted(backends) == sorted(i["metadata"]["uid"] for i in items)
    conn.close()
    leaders, reconciles = {}, {}
    for pid in workers(server):
        metrics, _ = on_worker(server, {pid})
        metrics.request("GET", "/metrics", headers={"Authorization": f"Bearer {server.token}"})
        text = metrics.getresponse().read().decode()
        metrics.close()
        leaders[pid] = _sample(text, "scs_controller_leader ")
        reconciles[pid] = _sample(text, 'scs_controller_reconciles_total{kind="networks"')
    assert sorted(leaders.values()) == [0, 1], leaders
    for pid, leading in leaders.items():
        assert (reconciles[pid] > 0) == bool(leading), (leaders, reconciles)


def _sample(metrics: str, prefix: str) -> float:
    """The sum of the samples of a Prometheus text exposition whose line starts so."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith(prefix))


def test_a_killed_worker_is_replaced_and_serves(server: ScsServer) -> None:
    before = workers(server)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = wait_for(lambda: two_workers(server, without=victim), timeout=15,
                     what="a new worker")
    (new,) = after - before
    conn, pid = on_worker(server, {new})
    assert pid == new
    assert call(server, conn, "GET", NAMESPACES + "/default")[0] == 200
    conn.close()


def test_audit_lines_are_written_per_worker(server: ScsServer) -> None:
    """Each worker writes its own file (no two processes rotate one file), and audit IDs
    stay unique across workers."""
    audit = Path(server.extra_args[server.extra_args.index("--audit-log") + 1])
    conn, _ = on_worker(server, workers(server))
    conn.close()
    files = wait_for(lambda: sorted(audit.parent.glob("audit.worker*.log")) or None,
                     what="audit files")
    assert [f.name for f in files] == ["audit.worker0.log", "audit.worker1.log"]
    assert not audit.exists()
    ids = [json.loads(line)["auditID"] for file in files
           for line in file.read_text().splitlines()]
    assert ids and len(set(ids)) == len(ids)  # unique across the workers


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_worker(stop: signal.Signals) -> None:
    srv = ScsServer(extra_args=["--workers", "2"])
    try:
        srv.start(timeout=START_TIMEOUT)
        pids = wait_for(lambda: two_workers(srv), what="two workers")
        assert srv.proc is not None
        srv.proc.send_signal(stop)
        assert srv.proc.wait(15) == 0
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids) or None,
                 timeout=5, what="the workers gone")
    finally:
        srv.cleanup()


def test_workers_end_when_the_parent_is_killed() -> None:
    srv = ScsServer(extra_args=["--workers", "2"])
    try:
        srv.start(timeout=START_TIMEOUT)
        pids = wait_for(lambda: two_workers(srv), what="two workers")
        srv.kill()
        wait_for(lambda: not any(_alive(pid) for pid in pids) or None, timeout=15,
                 what="the workers gone")
    finally:
        srv.cleanup()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_bad_worker_count_is_refused() -> None:
    srv = ScsServer(extra_args=["--workers", "0"])
    with pytest.raises(RuntimeError, match="workers must be a positive number"):
        srv.start(timeout=20)
    assert srv.proc is not None and srv.proc.wait(5) == 2
