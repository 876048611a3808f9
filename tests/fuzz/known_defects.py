"""Defects the fuzzer found in files other engineers own, kept visible instead of hidden.

Each entry names the file its fix belongs in, a minimal reproducer and a predicate that
recognises the fuzzed requests hitting it. ``test_schemathesis.py`` replays every reproducer
in a test marked ``xfail(strict=True)``: while the defect is there the test fails as expected;
once it is fixed the test passes, strict xfail reports that as a failure, and the entry must be
deleted here. The fuzz run skips its checks only for a request an entry recognises *and* a
response with one of the entry's status codes, so any other 5xx still fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """A minimal reproducer, sent with the admin token."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class KnownDefect:
    name: str
    owner: str
    """The file the fix belongs in."""
    description: str
    reproducer: Request
    statuses: tuple[int, ...]
    """The wrong status codes the defect answers."""
    matches: Callable[[str, str, Any], bool]
    """Does a fuzzed request (method, decoded path, body) hit this defect?"""


KNOWN_DEFECTS: list[KnownDefect] = []
"""Empty: every defect the fuzzer found so far is fixed (the replay test then has no cases)."""
