"""Usage is exact across leader changes of two replicas on one PostgreSQL (issue 16, item 1).

Two ``scs serve`` processes share one PostgreSQL database (and with it the sandbox cloud,
which lives in the store under ``sandbox/...`` keys), the encryption key, the ServiceAccount
signing keys and one test clock file. The accountant and the billing exporter run only in
the replica holding the Lease ``scs-system/scs-ledger``. The end-to-end test creates
objects at known clock times through replica A, resizes through B, kills (``kill -9``) the
lease holder twice (each replica is the victim once) and freezes it once (SIGSTOP past its
lease, then SIGCONT: for a moment two replicas think they lead), moving the clock while no
controller runs; deletes at known times — and every record, read through either replica,
must equal the expected seconds exactly: no gap, no overlap, no row twice. The billing sink
(a real HTTP server) holds the first batch while its leader is killed: the next leader
re-sends exactly that batch under the same idempotency key, and no row ever travels under
two keys.

The last test forces what the end-to-end run can only make likely: two accountants that
both read the same cursor and open states before either commits (found: idle hours closed
by both were appended twice, since the cursor's compare-and-set compared it with itself).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from central_api.controllers.metering import Accountant, OpenState
from central_api.kinds.metering import Meter, to_us
from central_api.machinery.clock import set_clock_file
from central_api.store import open_store
from central_api.store.base import Store
from central_api.store.ledger import CursorMoved, Ledger
from tests.integration.conftest import create_database
from tests.metering.test_usage import IAAS, Api, at, eventually, network, onboard
from tests.metering_ingest.sink import FailingSink
from tests.pg import PostgresServer
from tests.server import ScsServer

LEASE = "/apis/coordination.k8s.io/v1/namespaces/scs-system/leases/scs-ledger"
SINK = "billing"
ISSUER = ["--service-account-issuer", "https://scs.metering-replicas.test"]


@dataclass
class Replicas:
    a: ScsServer
    b: ScsServer
    clock: Path
    sink: FailingSink

    def set_time(self, clock: str) -> None:
        set_clock_file(str(self.clock), at(clock))

    def leader(self, via: ScsServer | None = None) -> ScsServer:
        """The replica whose pid is in the lease's holder identity (``host-pid-random``),
        read through ``via`` (default: a running replica)."""
        via = via or (self.a if self.alive(self.a) else self.b)
        holder = str(Api(via).call("GET", LEASE)["spec"]["holderIdentity"])
        pid = int(holder.rsplit("-", 2)[1])
        found = [r for r in (self.a, self.b) if r.proc is not None and r.proc.pid == pid]
        if not found:
            raise AssertionError(f"the lease holder {holder} is neither replica")
        return found[0]

    def other(self, replica: ScsServer) -> ScsServer:
        return self.b if replica is self.a else self.a

    @staticmethod
    def alive(replica: ScsServer) -> bool:
        return replica.proc is not None and replica.proc.poll() is None

    def kill_leader_and_take_over(self, clock_while_down: str) -> ScsServer:
        """``kill -9`` the lease holder, move the clock while no controller runs, wait until
        the other replica holds the lease, restart the victim (now a follower)."""
        victim = self.leader()
        victim.kill()
        self.set_time(clock_while_down)
        survivor = self.other(victim)
        eventually(lambda: self.leader() is survivor, timeout=60)
        victim.start(timeout=60)
        return survivor

    def freeze_leader_until_taken_over(self, clock_while_frozen: str) -> ScsServer:
        """SIGSTOP the lease holder (a long pause: GC, swap, a partition) until the other
        replica took the lease, then SIGCONT it: for a moment both think they lead."""
        frozen = self.leader()
        survivor = self.other(frozen)
        os.kill(frozen.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            self.set_time(clock_while_frozen)
            eventually(lambda: self.leader(via=survivor) is survivor, timeout=60)
        finally:
            os.kill(frozen.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
        return survivor


@pytest.fixture(scope="module")
def replicas(postgres_server: PostgresServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    store = create_database(postgres_server)
    clock = tmp_path_factory.mktemp("clock") / "now"
    set_clock_file(str(clock), at("09:50:00"))
    sink = FailingSink(plan=["hold"]).start()
    config = {"providers": {"iaas": {"type": "sandbox", "speed": 0},
                            "kaas": {"type": "sandbox", "speed": 0}},
              "metering": {"sinks": [{"name": SINK, "url": sink.url, "batchSize": 2}]}}
    env = {"SCS_TEST_CLOCK_FILE": str(clock)}
    b_dir = Path(tempfile.mkdtemp(prefix="scs-metering-replica-"))
    a = ScsServer(store=store, config=config, env=env, extra_args=ISSUER)
    b = ScsServer(data_dir=b_dir, store=store, config=config, env=env, extra_args=ISSUER)
    try:
        a.start(timeout=60)
        shutil.copy2(a.data_dir / "encryption.key", b_dir / "encryption.key")
        shutil.copytree(a.data_dir / "sa-signing", b_dir / "sa-signing")
        b.start(timeout=60)
        yield Replicas(a, b, clock, sink)
    finally:
        sink.stop()
        a.cleanup()
        b.cleanup()
        shutil.rmtree(b_dir, ignore_errors=True)


def server(api: Api, name: str, flavor: str) -> str:
    api.call("POST", f"{IAAS}/servers", {
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Server",
        "metadata": {"name": name}, "spec": {"flavor": flavor, "image": "ubuntu-24.04",
                                             "networks": [{"name": "net"}]}})
    return f"{IAAS}/servers/{name}"


def volume(api: Api, name: str, size: int) -> str:
    api.call("POST", f"{IAAS}/volumes", {
        "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Volume",
        "metadata": {"name": name}, "spec": {"sizeGiB": size}})
    return f"{IAAS}/volumes/{name}"


def merge_patch(api: Api, path: str, patch: dict[str, Any]) -> None:
    response = api.http.patch(path, content=json.dumps(patch),
                              headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text


def closed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if not r["spec"]["open"]]


def row_ending(api: Api, name: str, end: str) -> bool:
    """A closed record of ``name`` ending at ``end`` (an hour the accountant closed)."""
    return any(r["spec"]["name"] == name and r["spec"]["end"][11:19] == end
               for r in closed(api.records()))


def periods(records: list[dict[str, Any]], name: str) -> list[tuple[str, str, str, float]]:
    return sorted((r["spec"]["start"][11:19], r["spec"]["end"][11:19],
                   r["spec"]["flavor"] or str(r["spec"]["sizeGiB"]), r["spec"]["seconds"])
                  for r in records if r["spec"]["name"] == name)


EXPECTED = {
    "web": [("10:00:00", "11:00:00", "SCS-2V-4", 3600.0),
            ("11:00:00", "12:00:00", "SCS-2V-4", 3600.0),
            ("12:00:00", "12:30:00", "SCS-2V-4", 1800.0),
            ("12:30:00", "13:00:00", "SCS-4V-8", 1800.0),
            ("13:00:00", "14:00:00", "SCS-4V-8", 3600.0),
            ("14:00:00", "15:00:00", "SCS-4V-8", 3600.0),
            ("15:00:00", "15:10:00", "SCS-4V-8", 600.0)],
    "db": [("11:15:30", "12:00:00", "SCS-1V-2", 2670.0),
           ("12:00:00", "13:00:00", "SCS-1V-2", 3600.0),
           ("13:00:00", "14:00:00", "SCS-1V-2", 3600.0),
           ("14:00:00", "15:00:00", "SCS-1V-2", 3600.0),
           ("15:00:00", "15:10:00", "SCS-1V-2", 600.0)],
    "data": [("10:00:00", "11:00:00", "10", 3600.0),
             ("11:00:00", "12:00:00", "10", 3600.0),
             ("12:00:00", "12:30:00", "10", 1800.0),
             ("12:30:00", "13:00:00", "20", 1800.0),
             ("13:00:00", "13:40:00", "20", 2400.0)],
}
"""Every closed record per object: (start, end, flavor or GiB, seconds)."""


@pytest.mark.slow
def test_records_are_exact_across_leader_changes_of_two_replicas(replicas: Replicas) -> None:
    via_a, via_b = Api(replicas.a), Api(replicas.b)
    onboard(via_a, "acme")
    network(via_a)

    replicas.set_time("10:00:00")
    created = [server(via_a, "web", "SCS-2V-4"), volume(via_a, "data", 10)]
    for path in created:
        eventually(lambda p=path: via_b.ready(p))  # type: ignore[misc]
    replicas.set_time("11:15:30")
    db = server(via_a, "db", "SCS-1V-2")
    eventually(lambda: via_b.ready(db))

    replicas.set_time("12:30:00")  # resized through the other replica
    merge_patch(via_b, created[0], {"spec": {"flavor": "SCS-4V-8"}})
    merge_patch(via_b, created[1], {"spec": {"sizeGiB": 20}})
    for path in created:
        eventually(lambda p=path: via_a.ready(p))  # type: ignore[misc]

    # First leader change, while the sink holds the exporter's first batch.
    assert replicas.sink.holding.wait(60), "the first batch was never posted"
    first_leader = replicas.leader()
    survivor = replicas.kill_leader_and_take_over(clock_while_down="13:40:00")
    replicas.sink.release.set()
    eventually(lambda: row_ending(Api(survivor), "web", "13:00:00"), timeout=60)

    via_a, via_b = Api(replicas.a), Api(replicas.b)
    via_follower = Api(replicas.other(survivor))
    via_follower.call("DELETE", created[1])  # the volume, at 13:40
    eventually(lambda: via_follower.gone(created[1]))

    # Second leader change: the first leader's replica (restarted) takes over again.
    second = replicas.kill_leader_and_take_over(clock_while_down="14:20:00")
    assert second is first_leader
    eventually(lambda: row_ending(Api(second), "web", "14:00:00"), timeout=60)

    # Third: the leader frozen past its lease; the other takes over, then it wakes up.
    third = replicas.freeze_leader_until_taken_over(clock_while_frozen="15:10:00")
    assert third is survivor
    eventually(lambda: row_ending(Api(third), "web", "15:00:00"), timeout=60)
    via_a, via_b = Api(replicas.a), Api(replicas.b)
    for path in (created[0], db):  # at 15:10, one through each replica
        (via_a if path == db else via_b).call("DELETE", path)
    for path in (created[0], db):
        eventually(lambda p=path: via_a.gone(p))  # type: ignore[misc]
    replicas.set_time("15:20:00")

    total = sum(len(rows) for rows in EXPECTED.values())
    records = eventually(lambda: (found := via_a.records())
                         and len(closed(found)) >= total and found, timeout=90)
    assert not [r for r in records if r["spec"]["open"]]
    for name, expected in EXPECTED.items():
        assert periods(records, name) == expected, name
    assert_no_duplicate_or_overlap(records)
    assert sorted(map(key_of, via_b.records())) == sorted(map(key_of, records))
    assert {r["spec"]["tenant"] for r in records} == {"acme"}

    assert_each_row_exported_once_under_one_key(replicas.sink, records)


def key_of(record: dict[str, Any]) -> tuple[Any, ...]:
    spec = record["spec"]
    return (spec["seq"], spec["uid"], spec["part"], spec["start"], spec["end"],
            spec["seconds"], spec["flavor"], spec["sizeGiB"])


def assert_no_duplicate_or_overlap(records: list[dict[str, Any]]) -> None:
    """No (object, part, start) twice, no seq twice, and each object's rows back to back."""
    seqs = [r["spec"]["seq"] for r in records]
    assert len(seqs) == len(set(seqs))
    by_object: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for r in records:
        by_object[(r["spec"]["uid"], r["spec"]["part"])].append(
            (r["spec"]["start"], r["spec"]["end"]))
    for obj, spans in by_object.items():
        spans.sort()
        assert len({start for start, _ in spans}) == len(spans), f"a row twice: {obj}"
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end == start, f"gap or overlap in {obj}: {end} → {start}"


def assert_each_row_exported_once_under_one_key(sink: FailingSink,
                                                records: list[dict[str, Any]]) -> None:
    """Every row reached the sink, each under exactly one idempotency key; the batch held
    while its leader was killed was re-sent by the next leader with the same key."""
    seqs = sorted(r["spec"]["seq"] for r in records)
    delivered = lambda: {s for r in sink.received if r.answered in (200, -1)  # noqa: E731
                         for s in r.seqs}
    eventually(lambda: delivered() >= set(seqs), timeout=60)
    keys_of: dict[int, set[str]] = defaultdict(set)
    bodies: dict[str, list[int]] = {}
    for request in sink.received:
        assert bodies.setdefault(request.key, request.seqs) == request.seqs, request.key
        for seq in request.seqs:
            keys_of[seq].add(request.key)
    assert {seq: keys for seq, keys in keys_of.items() if len(keys) > 1} == {}
    held = sink.received[0]
    assert held.answered == -1
    assert [r.answered for r in sink.received if r.key == held.key] == [-1, 200]
    accepted = [s for r in sink.received if r.answered == 200 for s in r.seqs]
    assert sorted(set(accepted)) == seqs  # and only rows that are in the ledger
    sent = {int(row["seq"]): row for r in sink.received for row in r.body["rows"]}
    for record in records:
        row = sent[record["spec"]["seq"]]
        assert (row["uid"], row["seconds"]) == (record["spec"]["uid"],
                                                record["spec"]["seconds"])


# -- two accountants at once, deterministically ------------------------------------------------
class FirstCommitWaits:
    """The real ledger, except that this accountant's first ``commit_fold`` waits until the
    other accountant reached its own: both have read the cursor, the open states and the
    log before either commits — the interleaving of two leaders for a moment (the old one
    not yet aware that its lease expired), which the end-to-end test above cannot force."""

    def __init__(self, ledger: Ledger, barrier: threading.Barrier) -> None:
        self.ledger, self.barrier, self.waited = ledger, barrier, False

    def cursor(self) -> int:
        return self.ledger.cursor()

    def open_states(self) -> dict[str, dict[str, Any]]:
        return self.ledger.open_states()

    def commit_fold(self, *args: Any, **kwargs: Any) -> list[int]:
        if not self.waited:
            self.waited = True
            self.barrier.wait(30)
        return self.ledger.commit_fold(*args, **kwargs)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = create_database(request.getfixturevalue("postgres_server"))
    opened = open_store(url)
    try:
        yield opened
    finally:
        opened.close()


def accountant_steps(accountant: Accountant) -> None:
    """Step until caught up; a lost compare-and-set is retried from the committed state,
    as :meth:`Accountant.run` does."""
    for _ in range(10):
        try:
            if not accountant.step():
                return
        except CursorMoved:
            continue
    raise AssertionError("the accountant never caught up")


def test_two_accountants_closing_the_same_idle_hours_count_them_once(store: Store) -> None:
    ledger = Ledger(store)
    web = OpenState(uid="web-uid", kind="Server", namespace="acme", name="web",
                    tenant="acme", meters=(Meter(flavor="SCS-2V-4"),),
                    since_us=to_us(at("10:00:00")))
    ledger.commit_fold(0, store.current_revision(), [], {web.uid: web.to_json()})
    barrier = threading.Barrier(2)
    leaders = [Accountant(store, FirstCommitWaits(ledger, barrier),
                          clock=lambda: at("12:00:30")) for _ in range(2)]

    threads = [threading.Thread(target=accountant_steps, args=(a,)) for a in leaders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    rows = [(r.start, r.end, r.seconds) for r in ledger.rows(uid=web.uid)]
    assert rows == [(at("10:00:00"), at("11:00:00"), 3600.0),
                    (at("11:00:00"), at("12:00:00"), 3600.0)]
    assert OpenState.from_json(ledger.open_states()[web.uid]).since_us == \
        to_us(at("12:00:00"))
