"""The controller work queue: de-duplication, one worker per key, per-key backoff."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from central_api.controllers.queue import WorkQueue


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_adding_a_key_twice_queues_it_once() -> None:
    async def scenario() -> int:
        queue = WorkQueue()
        queue.add("a")
        queue.add("a")
        return len(queue)

    assert run(scenario()) == 1


def test_a_key_changed_while_processing_is_queued_again_after_done() -> None:
    async def scenario() -> tuple[int, int, object]:
        queue = WorkQueue()
        queue.add("a")
        key = await queue.get()
        queue.add("a")            # changed while a worker holds it
        during = len(queue)       # not handed to a second worker
        queue.done(key)
        return during, len(queue), await queue.get()

    assert run(scenario()) == (0, 1, "a")


def test_backoff_grows_per_failure_and_forget_resets_it() -> None:
    async def scenario() -> list[float]:
        queue = WorkQueue(base_delay=0.01, max_delay=1.0)
        delays = [queue.add_rate_limited("a") for _ in range(5)]
        queue.forget("a")
        delays.append(queue.add_rate_limited("a"))
        queue.shutdown()
        return delays

    delays = run(scenario())
    assert isinstance(delays, list)
    assert all(0.8 * 0.01 * 2 ** i <= d <= 1.2 * 0.01 * 2 ** i for i, d in enumerate(delays[:5]))
    assert delays[5] <= 0.012


def test_backoff_is_capped() -> None:
    async def scenario() -> float:
        queue = WorkQueue(base_delay=0.01, max_delay=0.5)
        for _ in range(30):
            delay = queue.add_rate_limited("a")
        queue.shutdown()
        return delay

    assert run(scenario()) <= 0.5


def test_add_after_delivers_the_key_later() -> None:
    async def scenario() -> tuple[int, object]:
        queue = WorkQueue()
        queue.add_after("a", 0.05)
        before = len(queue)
        return before, await asyncio.wait_for(queue.get(), 1)

    assert run(scenario()) == (0, "a")


@given(st.lists(st.sampled_from("abcde"), max_size=40))
def test_every_added_key_is_delivered_exactly_once(keys: list[str]) -> None:
    async def scenario() -> list[object]:
        queue = WorkQueue()
        for key in keys:
            queue.add(key)
        out = []
        while len(queue):
            key = await queue.get()
            out.append(key)
            queue.done(key)
        return out

    delivered = run(scenario())
    assert isinstance(delivered, list)
    assert sorted(delivered) == sorted(set(keys))


def test_changes_overtake_waiting_resyncs() -> None:
    async def scenario() -> list[object]:
        queue = WorkQueue()
        for key in ("old-1", "old-2", "old-3"):
            queue.add(key, resync=True)
        queue.add("new")                  # created just now
        queue.add("old-3")                # changed while waiting as a resync: moves up
        order = [await queue.get() for _ in range(len(queue))]
        for key in order:
            queue.done(key)
        return [*order, len(queue)]

    assert run(scenario()) == ["new", "old-3", "old-1", "old-2", 0]


def test_a_resync_never_demotes_a_waiting_change() -> None:
    async def scenario() -> list[object]:
        queue = WorkQueue()
        queue.add("a", resync=True)
        queue.add("b")
        queue.add("b", resync=True)
        return [await queue.get(), await queue.get(), len(queue)]

    assert run(scenario()) == ["b", "a", 0]


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.booleans()), max_size=40))
def test_every_added_key_is_handed_out_exactly_once(adds: list[tuple[str, bool]]) -> None:
    async def scenario() -> list[object]:
        queue = WorkQueue()
        for key, resync in adds:
            queue.add(key, resync=resync)
        return [await queue.get() for _ in range(len(queue))]

    handed = run(scenario())
    assert isinstance(handed, list)
    assert sorted(handed) == sorted({key for key, _ in adds})
