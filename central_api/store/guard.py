"""The loop guard: reports every call of a blocking store made on an event loop's thread.

Why: on PostgreSQL every store call waits on network round trips; made from a coroutine, it
holds the whole process (every request, watch and controller) for that long. Such calls hide
in synchronous helpers reached from ``async`` code, so no review finds them all: with
``SCS_LOOP_GUARD=1`` in its environment, :func:`~central_api.store.open_store` wraps a
blocking store's methods so that each call from a thread running an asyncio loop is logged at
ERROR, once per call chain, and counted. The call itself goes ahead (a test sees every
offender in one run, not the first one). Off, nothing is wrapped: the guard costs nothing.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from .base import Store

ENV = "SCS_LOOP_GUARD"
MESSAGE = "blocking store call on the event loop"
"""Start of the ERROR line for each new call chain (tests look for it in the server's log)."""
METHODS = ("create", "update", "delete", "get", "list", "events_since", "changes_since",
           "current_revision", "compacted_revision", "compact")
"""The contract's calls that reach the database (``iter_list`` is checked at every step)."""

log = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parent.parent
_STORE = Path(__file__).resolve().parent
_ASYNC = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class LoopGuard:
    """Counts a store's calls from event-loop threads, by call chain (see :func:`chain`)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def check(self, method: str) -> None:
        """Record the call if this thread runs an event loop (and was not called from the
        store itself: one store method calling another is the same offence)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        frame = inspect.currentframe()
        caller = _caller(frame.f_back.f_back if frame and frame.f_back else None)
        if caller is None:
            return
        site = f"{chain(caller)} -> {method}"
        with self._lock:
            self.calls[site] += 1
            first = self.calls[site] == 1
        if first:
            log.error("%s: %s (further calls along this chain are counted, not logged)",
                      MESSAGE, site)


def _caller(frame: FrameType | None) -> FrameType | None:
    """The first frame outside the store package (None: the store called itself)."""
    if frame is None or _in(frame, _STORE):
        return None
    return frame


def _in(frame: FrameType, directory: Path) -> bool:
    return Path(frame.f_code.co_filename).resolve().is_relative_to(directory)


def chain(frame: FrameType) -> str:
    """``file:function`` of each central_api frame from the innermost coroutine (the code
    that should have left the loop) down to the store's caller, e.g.
    ``server/app.py:CentralApi.token_request > registry/resources.py:Resources.get``."""
    names: list[str] = []
    current: FrameType | None = frame
    while current is not None:
        if _in(current, _PACKAGE):
            path = Path(current.f_code.co_filename).resolve().relative_to(_PACKAGE)
            names.append(f"{path}:{current.f_code.co_qualname}")
        if current.f_code.co_flags & _ASYNC:
            break
        current = current.f_back
    return " > ".join(reversed(names)) or "<outside central_api>"


def install(store: Store) -> LoopGuard:
    """Wrap ``store``'s database calls (on this instance only) with a new guard."""
    guard = LoopGuard()
    for name in METHODS:
        setattr(store, name, _guarded(guard, name, getattr(store, name)))
    setattr(store, "iter_list", _guarded_iter(guard, store.iter_list))  # noqa: B010
    setattr(store, "loop_guard", guard)  # noqa: B010 - the ledger guards its calls too
    return guard


def guard_of(store: Store) -> LoopGuard | None:
    """The guard installed on ``store``, if any (:class:`~.ledger.Ledger` wraps its own
    database calls with it: they block like the store's)."""
    guard = getattr(store, "loop_guard", None)
    return guard if isinstance(guard, LoopGuard) else None


def guard_methods(guard: LoopGuard, target: object, names: tuple[str, ...]) -> None:
    """Wrap ``names`` of ``target`` (an object calling a guarded store) like the store's."""
    for name in names:
        setattr(target, name, _guarded(guard, name, getattr(target, name)))


def install_if_enabled(store: Store) -> Store:
    """``store``, guarded if it blocks and ``SCS_LOOP_GUARD=1`` (see the module docstring)."""
    if store.blocking and os.environ.get(ENV) == "1":
        install(store)
    return store


def _guarded(guard: LoopGuard, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        guard.check(name)
        return method(*args, **kwargs)

    return call


def _guarded_iter(guard: LoopGuard, method: Callable[..., Iterator[dict[str, Any]]]
                  ) -> Callable[..., Iterator[dict[str, Any]]]:
    """Each batch of ``iter_list`` is a round trip: check every step of the iteration."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        items = method(*args, **kwargs)
        while True:
            guard.check("iter_list")
            try:
                item = next(items)
            except StopIteration:
                return
            yield item

    return call
