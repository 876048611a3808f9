"""Group commit under real concurrency: many clients write at once through one server, some
of them in conflict, and the server is killed (SIGKILL) right after the acknowledgements.

What must hold (issue 21): every acknowledged write is in the store when it is opened again;
a write that failed (AlreadyExists, a stale resourceVersion) failed alone and left nothing
behind; no write is half there (each stored object is exactly what its writer sent, and the
revision log has no gap that a failed or torn write could have left).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central_api.store import open_store
from central_api.store.base import Key
from tests.integration.conftest import client_for, create_database, wait_for
from tests.pg import PostgresServer
from tests.server import ScsServer

ACCOUNTS = "/api/v1/namespaces/default/serviceaccounts"
RESOURCE = "core/serviceaccounts"
WRITERS = 16
ACKED_BEFORE_KILL = 300


class Writer(threading.Thread):
    """Creates ServiceAccounts back to back (a plain kind: no controller writes them);
    every second name is shared with the next writer (exactly one of the two creates may
    win), and every create is followed by an update with a stale resourceVersion (must fail
    with 409 and change nothing)."""

    def __init__(self, server: ScsServer, index: int) -> None:
        super().__init__(daemon=True)
        self.server, self.index = server, index
        self.acked: dict[str, tuple[str, str, str]] = {}
        """name -> (uid, resourceVersion, writer tag) of each 201."""
        self.refused: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with client_for(self.server) as http:
            i = 0
            while True:
                i += 1
                shared = i % 2 == 0
                name = f"pair{self.index // 2}-{i}" if shared else f"w{self.index}-{i}"
                body = {"metadata": {"name": name, "annotations": {"by": f"w{self.index}"}}}
                try:
                    created = http.post(ACCOUNTS, json=body)
                    if created.status_code == 201:
                        meta = created.json()["metadata"]
                        self.acked[name] = (meta["uid"], meta["resourceVersion"],
                                            f"w{self.index}")
                        self._stale_update(http, name, int(meta["resourceVersion"]) - 1)
                    elif created.status_code == 409:
                        self.refused.append(name)
                    else:
                        self.errors.append(f"{created.status_code} {created.text[:200]}")
                except httpx.HTTPError:
                    return  # the server is gone: this request was never acknowledged

    def _stale_update(self, http: httpx.Client, name: str, stale: int) -> None:
        body = {"metadata": {"name": name, "resourceVersion": str(stale),
                             "annotations": {"by": "stale"}}}
        answer = http.put(f"{ACCOUNTS}/{name}", json=body)
        if answer.status_code != 409:
            self.errors.append(f"stale update of {name}: {answer.status_code}")


def write_then_kill(server: ScsServer) -> list[Writer]:
    writers = [Writer(server, i) for i in range(WRITERS)]
    for writer in writers:
        writer.start()
    try:
        wait_for(lambda: sum(len(w.acked) for w in writers) >= ACKED_BEFORE_KILL,
                 timeout=120, what=f"{ACKED_BEFORE_KILL} acknowledged creates")
    finally:
        server.kill()
    for writer in writers:
        writer.join(30)
        assert not writer.is_alive(), "a client did not notice the crash"
    return writers


def check_store(url: str, writers: list[Writer]) -> None:
    assert not [e for w in writers for e in w.errors], "unexpected answers"
    acked = {name: ack for w in writers for name, ack in w.acked.items()}
    assert len(acked) == sum(len(w.acked) for w in writers), "a name was created twice"
    store = open_store(url)
    try:
        for name, (uid, revision, tag) in acked.items():
            meta = store.get(Key(RESOURCE, "default", name))["metadata"]
            assert (meta["uid"], meta["resourceVersion"], meta["annotations"]) == \
                (uid, revision, {"by": tag}), name
        refused = {name for w in writers for name in w.refused}
        assert refused <= set(acked) | _stored_names(store), \
            "a create refused as AlreadyExists has no object that won"
        events = store.events_since(0, limit=1_000_000)
    finally:
        store.close()
    revisions = [e.revision for e in events]
    assert revisions == list(range(revisions[0], revisions[0] + len(revisions)))
    for event in events:
        if event.key.resource == RESOURCE and event.key.name in acked:
            assert event.type == "ADDED"
            assert event.object["metadata"]["annotations"]["by"] != "stale"


def _stored_names(store: Any) -> set[str]:
    return {o["metadata"]["name"] for o in store.list(RESOURCE, "default").items}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="scs-group-commit-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_sqlite_concurrent_writes_are_all_there_after_sigkill_and_failures_left_nothing(
        data_dir: Path) -> None:
    writers = write_then_kill(ScsServer(data_dir=data_dir).start())

    check_store(str(data_dir / "state.db"), writers)


@pytest.mark.slow
def test_postgresql_concurrent_writes_are_all_there_after_sigkill_and_failures_left_nothing(
        data_dir: Path, postgres_server: PostgresServer) -> None:
    store = create_database(postgres_server)
    writers = write_then_kill(ScsServer(data_dir=data_dir, store=store).start())

    check_store(store, writers)
