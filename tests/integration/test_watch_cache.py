"""Reads served from the watch cache answer exactly what the store would (issue 21).

A real server on SQLite and two on one PostgreSQL; every assertion is what a client sees:
its own writes at once, a write made through another process at once on a consistent list,
selectors following label changes, pages of one snapshot across writes, kube's
resourceVersion rules (410 for a compacted one), and watches that start from the cache's
snapshot with no event lost or repeated while writers run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central_api.store.sqlite import SqliteStore
from tests.integration.conftest import client_for, create_database, unique
from tests.pg import PostgresServer
from tests.server import TENANTS_AS_PLAIN_OBJECTS, ScsServer

SECRETS = "/api/v1/namespaces/{ns}/secrets"


def secret(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "stringData": {"k": name}}


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["metadata"]["name"] for item in response.json()["items"]]


def test_a_create_is_read_back_at_once_by_get_and_list(http: httpx.Client,
                                                      namespace: str) -> None:
    base = SECRETS.format(ns=namespace)
    http.get(base)  # the cache of Secrets is filled: later reads come from it
    for i in range(30):
        name = f"cm-{i:02d}"
        created = http.post(base, json=secret(name, app="ryw"))
        assert created.status_code == 201, created.text

        got = http.get(f"{base}/{name}")
        listed = http.get(base, params={"labelSelector": "app=ryw"})

        assert got.status_code == 200, got.text
        assert got.json() == created.json()
        assert names(listed)[-1] == name and len(names(listed)) == i + 1
        assert int(listed.json()["metadata"]["resourceVersion"]) >= \
            int(created.json()["metadata"]["resourceVersion"])


def test_a_deleted_object_is_gone_at_once(http: httpx.Client, namespace: str) -> None:
    base = SECRETS.format(ns=namespace)
    assert http.post(base, json=secret("short-lived")).status_code == 201
    assert http.get(f"{base}/short-lived").status_code == 200

    assert http.delete(f"{base}/short-lived").status_code == 200

    assert http.get(f"{base}/short-lived").status_code == 404
    assert http.get(f"{base}/short-lived").json()["reason"] == "NotFound"
    assert "short-lived" not in names(http.get(base))


def test_label_selectors_follow_label_changes(http: httpx.Client, namespace: str) -> None:
    base = SECRETS.format(ns=namespace)
    for i in range(6):
        assert http.post(base, json=secret(f"sel-{i}", tier="a" if i % 2 else "b",
                                              shard=str(i))).status_code == 201
    assert names(http.get(base, params={"labelSelector": "tier=a"})) == [
        "sel-1", "sel-3", "sel-5"]

    patch = {"metadata": {"labels": {"tier": "b"}}}
    assert http.patch(f"{base}/sel-3", json=patch, headers={
        "Content-Type": "application/merge-patch+json"}).status_code == 200
    assert http.delete(f"{base}/sel-5").status_code == 200

    assert names(http.get(base, params={"labelSelector": "tier=a"})) == ["sel-1"]
    assert names(http.get(base, params={"labelSelector": "tier=b"})) == [
        "sel-0", "sel-2", "sel-3", "sel-4"]
    assert names(http.get(base, params={"labelSelector": "tier in (a,b),shard notin (0,4)"})) \
        == ["sel-1", "sel-2", "sel-3"]
    assert names(http.get(base, params={"labelSelector": "tier!=b"})) == ["sel-1"]
    assert names(http.get(base, params={"labelSelector": "shard>2"})) == ["sel-3", "sel-4"]
    assert names(http.get(base, params={"fieldSelector": "metadata.name=sel-2"})) == ["sel-2"]
    assert names(http.get(base, params={"fieldSelector": "metadata.name!=sel-2",
                                        "labelSelector": "tier=b"})) == [
        "sel-0", "sel-3", "sel-4"]
    everywhere = http.get("/api/v1/secrets", params={"labelSelector": "tier=a"})
    assert [(i["metadata"]["namespace"], i["metadata"]["name"])
            for i in everywhere.json()["items"]] == [(namespace, "sel-1")]


def walk(http: httpx.Client, path: str, limit: int, between: Any = None,
         **params: str) -> list[str]:
    """Every page of a paginated list; ``between(page_number)`` runs between pages."""
    seen: list[str] = []
    token, page = "", 0
    while True:
        query = {"limit": str(limit), **params, **({"continue": token} if token else {})}
        response = http.get(path, params=query)
        seen += names(response)
        token = response.json()["metadata"].get("continue", "")
        if not token:
            return seen
        page += 1
        if between is not None:
            between(page)


def test_pages_show_one_snapshot_while_the_resource_changes(http: httpx.Client,
                                                           namespace: str) -> None:
    base = SECRETS.format(ns=namespace)
    for i in range(10):
        assert http.post(base, json=secret(f"page-{i}", app="pages")).status_code == 201
    expected = [f"page-{i}" for i in range(10)]
    assert walk(http, base, 3) == expected
    assert walk(http, base, 4, labelSelector="app=pages") == expected

    def write(page: int) -> None:  # after the cursor, before it, and a change of an item
        assert http.post(base, json=secret(f"page-9{page}", app="pages")).status_code == 201
        assert http.delete(f"{base}/page-{page}").status_code == 200

    assert walk(http, base, 3, between=write) == expected
    now = names(http.get(base))
    assert "page-91" in now and "page-1" not in now


def test_resource_version_semantics(http: httpx.Client, namespace: str,
                                    server: ScsServer) -> None:
    base = SECRETS.format(ns=namespace)
    first = http.post(base, json=secret("rv-a")).json()["metadata"]["resourceVersion"]
    second = http.post(base, json=secret("rv-b")).json()["metadata"]["resourceVersion"]

    assert names(http.get(base, params={"resourceVersion": "0"})) == ["rv-a", "rv-b"]
    not_older = http.get(base, params={"resourceVersion": first,
                                       "resourceVersionMatch": "NotOlderThan"})
    assert names(not_older) == ["rv-a", "rv-b"]
    assert int(not_older.json()["metadata"]["resourceVersion"]) >= int(second)
    exact = http.get(base, params={"resourceVersion": first, "resourceVersionMatch": "Exact"})
    assert names(exact) == ["rv-a"]
    assert exact.json()["metadata"]["resourceVersion"] == first
    future = http.get(base, params={"resourceVersion": str(int(second) + 10_000)})
    assert future.status_code == 504, future.text

    token = http.get(base, params={"limit": "1"}).json()["metadata"]["continue"]
    assert http.post(base, json=secret("rv-c")).status_code == 201  # the snapshot differs
    store = SqliteStore(server.data_dir / "state.db")  # a second writer, as another process
    try:
        store.compact(store.current_revision())
    finally:
        store.close()

    gone = http.get(base, params={"resourceVersion": first, "resourceVersionMatch": "Exact"})
    assert gone.status_code == 410, gone.text
    expired = http.get(base, params={"limit": "1", "continue": token})
    assert expired.status_code == 410, expired.text
    assert expired.json()["reason"] == "Expired"
    assert names(http.get(base)) == ["rv-a", "rv-b", "rv-c"]


def watch_events(http: httpx.Client, path: str, timeout: int,
                 stop: threading.Event | None = None, **params: str) -> list[dict[str, Any]]:
    events = []
    with http.stream("GET", path, params={"watch": "true", "timeoutSeconds": str(timeout),
                                          **params}) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.strip():
                events.append(json.loads(line))
            if stop is not None and stop.is_set() and events and \
                    events[-1]["object"]["metadata"]["name"] == "last":
                break
    return events


def test_watches_started_from_the_cache_miss_and_repeat_nothing_under_writes(
        http: httpx.Client, namespace: str) -> None:
    """Each watch starts with the cache's snapshot, then follows from its revision: every
    object written shows up exactly once, as ADDED, in revision order, whenever it started."""
    base = SECRETS.format(ns=namespace)
    for i in range(20):
        assert http.post(base, json=secret(f"pre-{i:02d}", app="w")).status_code == 201
    done = threading.Event()
    watches: list[list[dict[str, Any]]] = []

    def watcher(params: dict[str, str]) -> None:
        watches.append(watch_events(http, base, 30, done, **params))

    threads = []
    for i in range(60):
        assert http.post(base, json=secret(f"obj-{i:02d}", app="w")).status_code == 201
        if i % 15 == 0:
            params = [{}, {"resourceVersion": "0"}, {"labelSelector": "app=w"},
                      {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
                       "allowWatchBookmarks": "true"}][i // 15]
            thread = threading.Thread(target=watcher, args=(params,))
            thread.start()
            threads.append(thread)
    done.set()
    assert http.post(base, json=secret("last", app="w")).status_code == 201
    for thread in threads:
        thread.join(40)

    expected = sorted([f"pre-{i:02d}" for i in range(20)] + [f"obj-{i:02d}" for i in range(60)]
                      + ["last"])
    assert len(watches) == 4
    for events in watches:
        objects = [e for e in events if e["type"] != "BOOKMARK"]
        assert all(e["type"] == "ADDED" for e in objects), objects
        assert sorted(e["object"]["metadata"]["name"] for e in objects) == expected
        revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in objects]
        initial = next(i for i, r in enumerate(revisions) if i and r < revisions[i - 1]) \
            if revisions != sorted(revisions) else 0
        assert revisions[initial:] == sorted(revisions[initial:])


# -- two replicas on one PostgreSQL ---------------------------------------------------------

@pytest.fixture(scope="module")
def pg_replicas(postgres_server: PostgresServer) -> Iterator[tuple[ScsServer, ScsServer]]:
    """Two ``scs serve`` on one database, with one encryption key (Secrets are encrypted)."""
    store = create_database(postgres_server)
    a = ScsServer(store=store, config=TENANTS_AS_PLAIN_OBJECTS)
    b = ScsServer(data_dir=Path(tempfile.mkdtemp(prefix="scs-replica-")), store=store,
                  config=TENANTS_AS_PLAIN_OBJECTS)
    try:
        a.start()
        shutil.copy2(a.data_dir / "encryption.key", b.data_dir / "encryption.key")
        b.start()
        yield a, b
    finally:
        a.cleanup()
        b.cleanup()
        shutil.rmtree(b.data_dir, ignore_errors=True)


def test_a_consistent_list_on_one_replica_sees_a_write_through_the_other_at_once(
        pg_replicas: tuple[ScsServer, ScsServer]) -> None:
    a, b = pg_replicas
    namespace = unique("ns")
    with client_for(a) as via_a, client_for(b) as via_b:
        assert via_a.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}) \
            .status_code == 201
        base = SECRETS.format(ns=namespace)
        assert names(via_b.get(base)) == []  # B's cache of Secrets is filled now
        for i in range(10):
            name = f"s-{i}"
            created = via_a.post(base, json={"metadata": {"name": name, "labels": {"n": "x"}},
                                             "stringData": {"k": "v"}})
            assert created.status_code == 201, created.text

            assert names(via_b.get(base, params={"labelSelector": "n=x"}))[-1] == name
            got = via_b.get(f"{base}/{name}")
            assert got.status_code == 200, got.text
            assert got.json()["data"] == created.json()["data"]
            deleted = via_a.delete(f"{base}/{name}")
            assert deleted.status_code == 200
            assert via_b.get(f"{base}/{name}").status_code == 404
