"""Store calls from coroutines: in a worker thread when the store waits on the network."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from .base import Store

T = TypeVar("T")


async def off_loop(store: Store, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` — code that calls ``store`` — in a worker thread when ``store``
    blocks (PostgreSQL: a round trip held every request, watch and controller meanwhile),
    in place when it does not (SQLite answers in microseconds, less than the thread hop)."""
    if not store.blocking:
        return func(*args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(func, *args, **kwargs))


async def off_loop_write(store: Store, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Like :func:`off_loop` for code that writes to ``store``: in a worker thread also when
    only the commit waits (SQLite syncing its WAL), which would hold the loop for each write."""
    if not (store.blocking or store.commits_wait):
        return func(*args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(func, *args, **kwargs))
