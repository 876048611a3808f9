"""Group commit, on every back end: concurrent writes share transactions, and each still
succeeds or fails on its own (issue 21).

Writes come from threads (the registry's worker threads, controllers) and from coroutines
(``create_async``, the HTTP create path) at once, so batches mix both; conflicting writes
(the same new key twice, stale revisions, a refused ``require``) land in the same batches as
writes that must succeed.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from central_api.store.base import Key, KeyExists, RevisionConflict, Store

R = "core/configmaps"
NS = Key("core/namespaces", "", "default")
THREADS = 8
PER_THREAD = 40
COROUTINES = 200


def cm(name: str, **data: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "data": dict(data)}


def refuse_unless_open(ns: dict[str, Any] | None) -> None:
    if ns is None or ns["metadata"].get("deletionTimestamp"):
        raise PermissionError("namespace closed")


def test_writes_from_threads_and_coroutines_at_once_each_succeed_or_fail_alone(
        store: Store) -> None:
    store.create(NS, {"metadata": {"name": "default"}})
    outcomes: dict[str, list[str]] = {}
    lock = threading.Lock()

    def record(name: str, outcome: str) -> None:
        with lock:
            outcomes.setdefault(name, []).append(outcome)

    def thread_writer(t: int) -> None:
        for i in range(PER_THREAD):
            name = f"shared-{i}"  # every thread creates the same names: one wins each
            try:
                store.create(Key(R, "default", name), cm(name, by=f"t{t}"),
                             (NS, refuse_unless_open))
                record(name, "created")
            except KeyExists:
                record(name, "exists")
            own = store.create(Key(R, "default", f"t{t}-{i}"), cm(f"t{t}-{i}"))
            stale = int(own["metadata"]["resourceVersion"]) - 1
            with pytest.raises(RevisionConflict):
                store.update(Key(R, "default", f"t{t}-{i}"), cm(f"t{t}-{i}"), stale)

    async def coroutine_writers() -> list[Any]:
        async def one(i: int) -> Any:
            return await store.create_async(Key(R, "default", f"a-{i % (COROUTINES // 2)}"),
                                            cm(f"a-{i}"))
        return await asyncio.gather(*(one(i) for i in range(COROUTINES)),
                                    return_exceptions=True)

    threads = [threading.Thread(target=thread_writer, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    async_results = asyncio.run(coroutine_writers())
    for thread in threads:
        thread.join(60)

    assert all(sorted(o) == ["created"] + ["exists"] * (THREADS - 1)
               for o in outcomes.values()) and len(outcomes) == PER_THREAD
    assert sum(isinstance(r, KeyExists) for r in async_results) == COROUTINES // 2
    assert sum(isinstance(r, dict) for r in async_results) == COROUTINES // 2
    stored = store.list(R, "default").items
    assert len(stored) == PER_THREAD + THREADS * PER_THREAD + COROUTINES // 2
    events = store.events_since(0, limit=100_000)
    revisions = [e.revision for e in events]
    assert revisions == list(range(revisions[0], revisions[0] + len(revisions))), \
        "a failed write consumed a revision, or a revision is missing"
    assert revisions[-1] == store.current_revision()


def test_a_refused_requirement_fails_only_its_own_write(store: Store) -> None:
    async def writes() -> list[Any]:
        return await asyncio.gather(*(
            store.create_async(Key(R, "default" if i % 2 else "gone", f"r-{i}"),
                               cm(f"r-{i}"), (Key("core/namespaces", "", "default" if i % 2
                                                  else "gone"), refuse_unless_open))
            for i in range(40)), return_exceptions=True)

    store.create(NS, {"metadata": {"name": "default"}})
    results = asyncio.run(writes())

    assert [type(r).__name__ for r in results] == ["PermissionError", "dict"] * 20
    assert sorted(o["metadata"]["name"] for o in store.list(R).items) == sorted(
        f"r-{i}" for i in range(1, 40, 2))


def test_a_write_that_cannot_be_stored_fails_alone(store: Store) -> None:
    async def writes() -> list[Any]:
        return await asyncio.gather(*(
            store.create_async(Key(R, "default", f"e-{i}"),
                               {**cm(f"e-{i}"), "bad": {1, 2}} if i == 5 else cm(f"e-{i}"))
            for i in range(10)), return_exceptions=True)

    results = asyncio.run(writes())

    assert isinstance(results[5], TypeError)
    assert all(isinstance(r, dict) for i, r in enumerate(results) if i != 5)
    assert len(store.list(R).items) == 9


def test_two_creates_of_one_key_queued_together_let_the_first_win(store: Store) -> None:
    """Writes to one key queued together: each sees the one before it in the batch."""
    key = Key(R, "default", "churn")

    async def writes() -> list[Any]:
        created = asyncio.ensure_future(store.create_async(key, cm("churn", v="1")))
        again = asyncio.ensure_future(store.create_async(key, cm("churn", v="2")))
        return await asyncio.gather(created, again, return_exceptions=True)

    created, again = asyncio.run(writes())
    assert isinstance(again, KeyExists)
    updated = store.update(key, cm("churn", v="3"), int(created["metadata"]["resourceVersion"]))
    store.delete(key, int(updated["metadata"]["resourceVersion"]))

    kinds = [(e.type, e.object["data"].get("v")) for e in store.events_since(0)
             if e.key == key]
    assert kinds == [("ADDED", "1"), ("MODIFIED", "3"), ("DELETED", "3")]
    assert store.list(R).items == []
