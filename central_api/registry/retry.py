"""Retrying a write that lost a race with another writer.

A read-modify-write stores what it read with that resourceVersion; if another thread,
replica or kubectl got in between, the store answers 409 and the write is done again on
what is there now, so no change is lost. Writers in other replicas (on PostgreSQL) collide
again if they retry in lockstep: a jittered, growing pause keeps eight of them at once on
one object from colliding on every attempt (without it eight retries were not enough).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TypeVar

from ..machinery.errors import ApiError

T = TypeVar("T")
ATTEMPTS = 20
BACKOFF_MS = 5


def lost_race(exc: ApiError) -> bool:
    """A 409 from a concurrent write, not one that explains what is wrong with the object
    (those carry causes, and doing the same again cannot help)."""
    return exc.code == 409 and exc.reason in ("Conflict", "AlreadyExists") and not exc.causes


def retry_on_conflict(write: Callable[[], T], *, attempts: int = ATTEMPTS,
                      before_retry: Callable[[], None] | None = None) -> T:
    """``write()`` until it does not lose a race, at most ``attempts`` times; the last
    conflict is raised. ``write`` must read what it changes itself; ``before_retry`` drops
    anything else the caller cached from the state that lost."""
    for attempt in range(attempts):
        try:
            return write()
        except ApiError as exc:
            if not lost_race(exc) or attempt == attempts - 1:
                raise
        if before_retry is not None:
            before_retry()
        time.sleep(secrets.randbelow(BACKOFF_MS * (attempt + 1) + 1) / 1000)
    raise RuntimeError("unreachable: the loop returns or raises")
