"""The watch cache's own rules: a fill loses and repeats no event, indexes follow changes."""

from __future__ import annotations

from typing import Any

import orjson

from central_api.machinery.selectors import parse_label_selector
from central_api.registry.watchcache import Selection, WatchCache, cached, served_prefix
from central_api.store.base import Event, EventType, Key

RESOURCE = "core/secrets"


def obj(name: str, revision: int, namespace: str = "ns", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "resourceVersion": str(revision)}, "data": {}}


def event(kind: EventType, name: str, revision: int, **labels: str) -> Event:
    return Event(kind, revision, Key(RESOURCE, "ns", name), obj(name, revision, **labels))


def selected(cache: WatchCache, **what: Any) -> list[str]:
    return [name for _, name, _ in cache.select(Selection(**what))[0]]


def filled(objects: list[dict[str, Any]], revision: int, *during: Event) -> WatchCache:
    """A cache filled from ``objects`` listed at ``revision`` while ``during`` arrived."""
    cache = WatchCache(RESOURCE)
    cache.begin_fill()
    for e in during:
        cache.offer(e)
    listed = WatchCache(RESOURCE)
    listed.load([(o["metadata"]["namespace"], o["metadata"]["name"], cached(o))
                 for o in objects])
    cache.finish_fill(listed, revision)
    return cache


def test_events_during_a_fill_apply_once_after_the_lists_revision() -> None:
    cache = filled([obj("a", 5), obj("b", 6)], 6,
                   event("ADDED", "b", 6),            # already in the list: not again
                   event("ADDED", "c", 7),            # after the list: applied
                   event("DELETED", "a", 8))

    assert selected(cache) == ["b", "c"]
    assert cache.changed == 8
    entry = cache.get("ns", "c")
    assert entry is not None
    assert orjson.loads(served_prefix("v1", "Secret") + entry.body) == obj("c", 7)


def test_the_label_index_follows_label_changes_and_deletes() -> None:
    cache = filled([obj(f"o{i}", i + 1, tier="a" if i % 2 else "b") for i in range(8)], 8)
    tier_a = parse_label_selector("tier=a")
    assert selected(cache, label=tier_a) == ["o1", "o3", "o5", "o7"]

    cache.offer(event("MODIFIED", "o3", 9, tier="b"))
    cache.offer(event("DELETED", "o5", 10, tier="a"))
    cache.offer(event("ADDED", "o9", 11, tier="a"))

    assert selected(cache, label=tier_a) == ["o1", "o7", "o9"]
    assert selected(cache, label=parse_label_selector("tier in (a,b),tier!=b")) == [
        "o1", "o7", "o9"]


def test_pages_continue_after_the_last_key_in_order() -> None:
    cache = filled([obj(f"n{i}", i + 1, namespace=ns) for ns in ("x", "y") for i in range(3)],
                   6)
    first, after = cache.select(Selection(limit=4))
    rest, end = cache.select(Selection(limit=4, after=after))

    assert [(ns, name) for ns, name, _ in first] == [("x", "n0"), ("x", "n1"), ("x", "n2"),
                                                     ("y", "n0")]
    assert after == ("y", "n0")
    assert [(ns, name) for ns, name, _ in rest] == [("y", "n1"), ("y", "n2")]
    assert end is None
