"""Per-identity rate limiting: a token bucket per authenticated user name.

One noisy client (a runaway controller, a leaked token in a loop) must not starve everyone
else of the single store writer, so each identity gets ``burst`` requests at once and then
``rate_per_second`` on average. Memory is bounded: beyond ``max_identities`` the least
recently seen identity is forgotten — it comes back with a full bucket, which errs on the
side of serving rather than locking out, and still caps every identity at its own rate while
it is active. Callers typically exempt ``system:masters`` so the bootstrap admin can always
repair things.

The buckets live in one process. With ``scs serve --workers N`` each worker has its own, so
an identity whose connections spread over all workers gets up to N times the rate (and the
burst); one keep-alive connection, the usual shape of a runaway client, stays at one worker
and so at the configured rate. Replicas on PostgreSQL behave the same way, per replica.
Dividing the rate by N would instead cut every single-connection client to 1/N of what the
operator configured; we keep it per worker and document it (``--workers`` help).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by identity, least recently used first out."""

    def __init__(self, rate_per_second: float, burst: int, max_identities: int = 10000) -> None:
        if not rate_per_second > 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1 or max_identities < 1:
            raise ValueError("burst and max_identities must be at least 1")
        self.rate = float(rate_per_second)
        self.burst = int(burst)
        self.max_identities = int(max_identities)
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        # check() never awaits, so one event loop needs no lock; this one covers threads too
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, identity: str, now: float | None = None) -> float | None:
        """Take one token for ``identity``: None when allowed, else the seconds until one is
        available (for ``Retry-After``; see :func:`retry_after_seconds`)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._touch(identity, now)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self.rate

    def _touch(self, identity: str, now: float) -> _Bucket:
        """The identity's bucket, refilled up to ``now`` and marked most recently used."""
        bucket = self._buckets.get(identity)
        if bucket is None:
            bucket = self._buckets[identity] = _Bucket(float(self.burst), now)
            while len(self._buckets) > self.max_identities:
                self._buckets.popitem(last=False)
            return bucket
        self._buckets.move_to_end(identity)
        elapsed = max(0.0, now - bucket.updated)  # a clock going backwards refills nothing
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
        bucket.updated = max(bucket.updated, now)
        return bucket


def retry_after_seconds(delay: float) -> int:
    """A ``Retry-After`` header value: whole seconds, at least 1."""
    return max(1, math.ceil(delay))
