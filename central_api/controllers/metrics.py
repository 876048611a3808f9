"""Controller metrics in Prometheus text format (served at ``/metrics``).

A registry per process rather than the library's global one, so tests and several managers in
one process do not collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue_depth = Gauge("scs_controller_queue_depth", "Keys waiting in the work queue",
                                 ["kind"], registry=self.registry)
        self.reconcile_seconds = Histogram(
            "scs_controller_reconcile_seconds", "Time per reconcile", ["kind"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30), registry=self.registry)
        self.reconciles = Counter("scs_controller_reconciles_total", "Reconciles by result",
                                  ["kind", "result"], registry=self.registry)
        self.errors = Counter("scs_controller_errors_total", "Reconcile errors by reason",
                              ["kind", "reason"], registry=self.registry)
        self.probe_up = Gauge("scs_probe_up", "1 if the backend probe's last run succeeded, "
                              "else 0", ["probe"], registry=self.registry)
        self.probe_seconds = Histogram(
            "scs_probe_duration_seconds", "Time a backend probe took", ["probe"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10), registry=self.registry)
        self.leader = Gauge("scs_controller_leader", "1 while this process leads",
                            registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
