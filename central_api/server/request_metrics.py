"""Request, watch and store metrics of the API server, for ``/metrics``.

Label values come from a small, fixed set so that no caller can grow the series without
bound: the verb, the API group and resource *as the catalog serves them* (a made-up path
counts as ``unknown``), the code class — never names, namespaces, users or raw paths.
Mounted APIs (the status page, the Alertmanager receiver) are labelled by their prefix.

With ``scs serve --workers N`` every worker process counts its own requests, and a scrape of
``/metrics`` is answered by whichever worker accepted the scraper's connection: the numbers
are that worker's, not the sum (a counter seems to drop when the next scrape lands on another
worker; ``scs_controller_leader`` is 1 only on the worker that runs the controllers). Scrape
a single-worker server, or read them per worker, until they are aggregated across workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request

from ..store.offload import off_loop
from .requestinfo import RequestInfo, request_path

if TYPE_CHECKING:
    from .app import ServerContext

VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete",
                   "deletecollection", "head", "post", "put", "options"})
UNKNOWN = "unknown"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STORE_CHECK_SECONDS = 2.0
"""A store round trip slower than this counts as the store being down for the scrape."""


class RequestMetrics:
    """Counts and times every answer (a :class:`~central_api.server.app.Observer`)."""

    def __init__(self, ctx: ServerContext, registry: CollectorRegistry) -> None:
        self.ctx = ctx
        labels = ["api", "verb", "group", "resource"]
        self.requests = Counter("scs_api_requests_total", "API requests by what they asked "
                                "and the answer's code class", [*labels, "code"],
                                registry=registry)
        self.seconds = Histogram("scs_api_request_duration_seconds", "Time to answer (to "
                                 "the first byte of a watch)", labels, buckets=LATENCY_BUCKETS,
                                 registry=registry)

    def __call__(self, request: Request, code: int, seconds: float) -> None:
        labels = self.labels(request, code)
        self.requests.labels(*labels, f"{code // 100}xx").inc()
        self.seconds.labels(*labels).observe(seconds)

    def labels(self, request: Request, code: int) -> tuple[str, str, str, str]:
        path = request_path(request.scope)  # not request.url: ~3 % of a GET to build
        info: RequestInfo | None = getattr(request.state, "info", None)
        for prefix in self.ctx.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                verb = info.verb if info else request.method.lower()
                return prefix, _bounded_verb(verb), "", ""
        if info is None or not info.is_resource:
            return "nonresource", _bounded_verb(info.verb if info else
                                                request.method.lower()), "", ""
        return "kube", _bounded_verb(info.verb), *self._resource(info, code)

    def _resource(self, info: RequestInfo, code: int) -> tuple[str, str]:
        """Group and resource if served (a subresource only once it answered)."""
        rt = self.ctx.catalog.lookup(info.api_group, info.api_version, info.resource)
        if rt is None:
            return UNKNOWN, UNKNOWN
        if info.subresource and code < 400:
            return rt.group, f"{rt.plural}/{info.subresource}"
        return rt.group, rt.plural


def _bounded_verb(verb: str) -> str:
    return verb if verb in VERBS else "other"


class WatchCollector(Collector):
    """Open watches per resource, read from the watch hub at scrape time (clients' watches
    and the server's own informers alike; "*" is the garbage collector's watch of all)."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("scs_watches", "Open watches per stored resource",
                                   labels=["resource"])
        hub = getattr(self.ctx, "hub", None)
        if hub is not None:
            for resource, count in sorted(hub.watchers_by_resource().items()):
                family.add_metric([resource or "*"], count)
        yield family


class StoreHealth:
    """Whether the store answers: checked with one round trip when ``/metrics`` is scraped,
    so a store that stopped answering shows as ``scs_store_up 0`` with the time of the last
    good round trip (an alert can fire on either)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge("scs_store_up", "1 if the store answered the last scrape's round "
                        "trip in time, else 0", registry=registry)
        self.last_success = Gauge("scs_store_last_success_timestamp_seconds", "Unix time of "
                                  "the last successful store round trip", registry=registry)
        self.seconds = Histogram("scs_store_roundtrip_seconds", "Time of the scrape's store "
                                 "round trip", buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1,
                                                        2), registry=registry)

    async def check(self, ctx: ServerContext) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(STORE_CHECK_SECONDS):
                await off_loop(ctx.store, ctx.store.current_revision)
        except Exception:  # any failure, a timeout included, is "down"
            self.up.set(0)
            return
        self.seconds.observe(time.monotonic() - started)
        self.up.set(1)
        self.last_success.set(time.time())


def install_request_metrics(ctx: ServerContext, registry: CollectorRegistry) -> StoreHealth:
    """Request metrics as an observer and watch counts as a collector in ``registry``; the
    returned store check is run by the ``/metrics`` endpoint before rendering."""
    ctx.observers.append(RequestMetrics(ctx, registry))
    registry.register(WatchCollector(ctx))
    return StoreHealth(registry)
