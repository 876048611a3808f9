"""The wall clock of revision stamps and metering, which tests may set.

Why: usage is billed from the times at which revisions were written (the store's ``stamp``
of every revision, see :mod:`central_api.store.sql`). A test that creates a Server at
"10:00:00", resizes it at "12:30:00" and deletes it at "13:00:00" must be able to say so,
also across a ``kill -9`` of the server, so the clock is read from a file the test writes
before each action: when the environment variable ``SCS_TEST_CLOCK_FILE`` names a file,
:func:`now` returns the float seconds since the epoch written in it, re-read on every call.
A missing or malformed file is an error (:class:`ClockError`), never a silent fall-back to
real time: a test that forgot to set the time must fail, not bill the wrong hours.

Only the store's stamps and the metering accountant read this clock; condition times and
everything else stay on real time. ``scs serve`` warns loudly at start when the variable is
set (:func:`clock_warning`): a production server must never run on it.
"""

from __future__ import annotations

import math
import os
import time

ENV = "SCS_TEST_CLOCK_FILE"
MAX_FILE_BYTES = 64
"""A clock file holds one number; anything longer is not one."""


class ClockError(RuntimeError):
    """The test clock file is missing, unreadable or holds no valid time."""


def now() -> float:
    """Seconds since the epoch: ``time.time()``, or the test clock when ``SCS_TEST_CLOCK_FILE``
    is set (see the module docstring)."""
    path = os.environ.get(ENV)
    if not path:
        return time.time()
    return read_clock_file(path)


def read_clock_file(path: str) -> float:
    """The time written in ``path``: a finite, non-negative float (e.g. ``1767261600.25``)."""
    try:
        with open(path, "rb") as clock:
            raw = clock.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ClockError(f"{ENV}={path!r}: cannot read the test clock: {exc}") from exc
    try:
        if len(raw) > MAX_FILE_BYTES:
            raise ValueError("too long")
        value = float(raw.decode("ascii").strip())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClockError(f"{ENV}={path!r}: the test clock file must hold seconds since "
                         f"the epoch, not {raw[:MAX_FILE_BYTES]!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise ClockError(f"{ENV}={path!r}: {value} is not a time")
    return value


def set_clock_file(path: str, seconds: float) -> None:
    """Write ``seconds`` to the clock file ``path`` atomically (for tests): a reader never
    sees a half-written number."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as clock:
        clock.write(repr(float(seconds)))
    os.replace(tmp, path)


def clock_warning() -> str | None:
    """The warning ``scs serve`` logs at start when the test clock is on, else None."""
    path = os.environ.get(ENV)
    if not path:
        return None
    return (f"TEST CLOCK IN USE: {ENV}={path!r} — revision stamps and metering read the time "
            "from that file, not from the system clock. Never run a production server so.")
