"""Per-identity token buckets: a burst, then the steady rate; bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central_api.auth.ratelimit import RateLimiter, retry_after_seconds


def test_burst_then_refusal_with_retry_after() -> None:
    limiter = RateLimiter(rate_per_second=2, burst=5)
    assert [limiter.check("alice", now=0.0) for _ in range(5)] == [None] * 5
    delay = limiter.check("alice", now=0.0)
    assert delay == pytest.approx(0.5)
    assert retry_after_seconds(delay or 0) == 1


def test_retry_after_is_honest() -> None:
    limiter = RateLimiter(rate_per_second=0.1, burst=1)
    assert limiter.check("bob", now=0.0) is None
    delay = limiter.check("bob", now=3.0)
    assert delay == pytest.approx(7.0)
    assert limiter.check("bob", now=3.0 + 6.9) is not None
    assert limiter.check("bob", now=3.0 + 7.0) is None


def test_refill_over_time_never_beyond_burst() -> None:
    limiter = RateLimiter(rate_per_second=1, burst=3)
    for _ in range(3):
        assert limiter.check("alice", now=0.0) is None
    assert limiter.check("alice", now=0.0) is not None
    assert limiter.check("alice", now=1.0) is None
    assert limiter.check("alice", now=1.0) is not None
    for _ in range(3):  # an hour idle refills only up to the burst
        assert limiter.check("alice", now=3600.0) is None
    assert limiter.check("alice", now=3600.0) is not None


def test_identities_are_independent() -> None:
    limiter = RateLimiter(rate_per_second=1, burst=1)
    assert limiter.check("alice", now=0.0) is None
    assert limiter.check("alice", now=0.0) is not None
    assert limiter.check("bob", now=0.0) is None


def test_clock_going_backwards_refills_nothing() -> None:
    limiter = RateLimiter(rate_per_second=1, burst=1)
    assert limiter.check("alice", now=100.0) is None
    assert limiter.check("alice", now=50.0) is not None
    assert limiter.check("alice", now=100.5) is not None
    assert limiter.check("alice", now=101.0) is None


def test_least_recently_used_identity_is_dropped() -> None:
    limiter = RateLimiter(rate_per_second=1, burst=1, max_identities=2)
    limiter.check("a", now=0.0)
    limiter.check("b", now=0.0)
    limiter.check("a", now=0.0)  # a is now the most recent
    limiter.check("c", now=0.0)  # evicts b
    assert len(limiter) == 2
    assert limiter.check("a", now=0.0) is not None  # a kept its empty bucket
    assert limiter.check("b", now=0.0) is None  # b was forgotten: full bucket again


def test_default_clock_works() -> None:
    limiter = RateLimiter(rate_per_second=1000, burst=1)
    assert limiter.check("alice") is None


@pytest.mark.parametrize(("rate", "burst", "size"), [(0, 1, 1), (-1, 1, 1), (1, 0, 1),
                                                      (1, 1, 0)])
def test_invalid_settings(rate: float, burst: int, size: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst, size)


@pytest.mark.parametrize(("delay", "header"), [(0.0001, 1), (1.0, 1), (1.01, 2), (59.5, 60)])
def test_retry_after_seconds(delay: float, header: int) -> None:
    assert retry_after_seconds(delay) == header


@settings(max_examples=200, deadline=None)
@given(max_identities=st.integers(1, 20),
       names=st.lists(st.integers(0, 60).map(str), max_size=200))
def test_never_more_than_max_identities(max_identities: int, names: list[str]) -> None:
    limiter = RateLimiter(5, 3, max_identities)
    for index, name in enumerate(names):
        limiter.check(name, now=index * 0.01)
        assert len(limiter) <= max_identities


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.1, 50), burst=st.integers(1, 20),
       gaps=st.lists(st.floats(0, 2), min_size=1, max_size=300))
def test_allowed_never_exceeds_burst_plus_rate_times_window(
        rate: float, burst: int, gaps: list[float]) -> None:
    limiter = RateLimiter(rate, burst)
    times: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        if limiter.check("alice", now=now) is None:
            times.append(now)
    # every window [start, end] of the allowed requests obeys the token-bucket bound
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            allowed = j - i + 1
            assert allowed <= burst + rate * (times[j] - start) + 1e-6


@settings(max_examples=100, deadline=None)
@given(rate=st.floats(0.1, 50), burst=st.integers(1, 20),
       gaps=st.lists(st.floats(0, 2), min_size=1, max_size=100))
def test_refused_request_succeeds_after_retry_after(
        rate: float, burst: int, gaps: list[float]) -> None:
    limiter = RateLimiter(rate, burst)
    now = 0.0
    for gap in gaps:
        now += gap
        delay = limiter.check("alice", now=now)
        if delay is not None:
            assert 0 < delay <= 1 / rate + 1e-9
            if delay > 1e-6:  # below that, float rounding may already fill the bucket
                assert limiter.check("alice", now=now + delay * 0.99) is not None
            assert limiter.check("alice", now=now + delay + 1e-9) is None
            return
