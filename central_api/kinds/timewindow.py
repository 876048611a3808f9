"""Maintenance time windows: Gardener's ``maintenance.timeWindow`` and the default one.

A window is a daily span given as ``HHMMSS+ZZZZ`` begin and end, each with its own UTC
offset (``220000+0100``–``230000+0100``); it may wrap midnight, and lasts 30 minutes to 6 hours
(as Gardener requires, so a spec valid here is valid for every backend). Arithmetic is done
in seconds of the UTC day, so offsets and midnight need no special cases beyond the wrap.

Without a window a cluster gets a default one of one hour in the night 22:00–06:00 UTC,
placed by its creation time of day (begin = 22:00 + creation time mod 8 h): clusters are
spread over the night like Gardener's random windows, yet the choice is stable, and it never
opens within six hours after the cluster was created.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

MIN_LENGTH = 30 * 60
MAX_LENGTH = 6 * 3600

PATTERN = r"^[0-2][0-9][0-5][0-9][0-5][0-9][+-][0-9]{4}$"
DAY = 24 * 3600
NIGHT_BEGINS = 22 * 3600
NIGHT_LENGTH = 8 * 3600
DEFAULT_LENGTH = 3600


@dataclass(frozen=True)
class Window:
    """A daily window as seconds of the UTC day (``end`` < ``begin``: it wraps midnight)."""

    begin: int
    end: int
    text: str
    """How users read it, in its own offset, e.g. ``22:00–23:00 +0100``."""

    def contains(self, now: dt.datetime) -> bool:
        second = _utc_second(now)
        if self.begin <= self.end:
            return self.begin <= second < self.end
        return second >= self.begin or second < self.end

    def opens_in(self, now: dt.datetime) -> float:
        """Seconds until the window next opens (0 while it is open)."""
        if self.contains(now):
            return 0.0
        return float((self.begin - _utc_second(now)) % DAY)


def _utc_second(now: dt.datetime) -> int:
    utc = now.astimezone(dt.UTC)
    return utc.hour * 3600 + utc.minute * 60 + utc.second


def parse_time(value: str) -> tuple[int, int]:
    """``HHMMSS+ZZZZ`` → (seconds of the local day, UTC offset in seconds); ValueError if
    it is no time of day."""
    if not re.match(PATTERN, value):
        raise ValueError(f"{value!r} is not a time of day HHMMSS+ZZZZ")
    hours, minutes, seconds = int(value[0:2]), int(value[2:4]), int(value[4:6])
    sign = 1 if value[6] == "+" else -1
    offset = sign * (int(value[7:9]) * 3600 + int(value[9:11]) * 60)
    if hours > 23 or minutes > 59 or seconds > 59 or int(value[9:11]) > 59 \
            or abs(offset) > 14 * 3600:
        raise ValueError(f"{value!r} is not a time of day HHMMSS+ZZZZ")
    return hours * 3600 + minutes * 60 + seconds, offset


def _clock(second: int) -> str:
    hours, rest = divmod(second, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02}:{minutes:02}" + (f":{seconds:02}" if seconds else "")


def _zone(offset: int) -> str:
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{'+' if offset >= 0 else '-'}{hours:02}{minutes:02}"


def window_of(begin: str, end: str) -> Window:
    """The window ``begin``–``end`` (Gardener's format); ValueError for a bad time."""
    (local_begin, begin_offset), (local_end, end_offset) = parse_time(begin), parse_time(end)
    if begin_offset == end_offset:
        text = f"{_clock(local_begin)}–{_clock(local_end)} {_zone(begin_offset)}"
    else:
        text = (f"{_clock(local_begin)} {_zone(begin_offset)}–{_clock(local_end)} "
                f"{_zone(end_offset)}")
    return Window((local_begin - begin_offset) % DAY, (local_end - end_offset) % DAY, text)


def length(window: Window) -> int:
    """Seconds the window is open each day."""
    return (window.end - window.begin) % DAY


def window_problem(begin: str, end: str) -> str:
    """Why ``begin``–``end`` is no valid window ("" if it is one)."""
    try:
        found = window_of(begin, end)
    except ValueError as exc:
        return str(exc)
    if not MIN_LENGTH <= length(found) <= MAX_LENGTH:
        return f"the window {found.text} must last 30 minutes to 6 hours"
    return ""


def default_window(created: dt.datetime) -> Window:
    """One hour in 22:00–06:00 UTC, placed by the creation time of day (module doc)."""
    begin = (NIGHT_BEGINS + _utc_second(created) % NIGHT_LENGTH) % DAY
    end = (begin + DEFAULT_LENGTH) % DAY
    return Window(begin, end, f"{_clock(begin)}–{_clock(end)} +0000 (default)")


def effective_window(time_window: dict[str, Any] | None, created: dt.datetime) -> Window:
    if time_window and time_window.get("begin") and time_window.get("end"):
        return window_of(str(time_window["begin"]), str(time_window["end"]))
    return default_window(created)
