"""How often the KaaS controller asks a busy backend again: a tenth of the time so far."""

from __future__ import annotations

import datetime as dt

import pytest

from central_api.controllers.kaas import POLL_MAX, POLL_PENDING, _poll_after
from central_api.kinds.kaas import Cluster


def busy_for(seconds: float | None) -> Cluster:
    conditions = [] if seconds is None else [{
        "type": "Ready", "status": "False", "reason": "Progressing",
        "lastTransitionTime": (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds))
        .strftime("%Y-%m-%dT%H:%M:%SZ")}]
    return Cluster.model_validate({
        "apiVersion": "kaas.scs.community/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {"kubernetesVersion": "1.34"}, "status": {"conditions": conditions}})


@pytest.mark.parametrize(("seconds", "low", "high"), [
    (None, POLL_PENDING, POLL_PENDING), (2, POLL_PENDING, POLL_PENDING),
    (100, 9.5, 10.5), (3600, POLL_MAX, POLL_MAX), (-60, POLL_PENDING, POLL_PENDING)])
def test_a_busy_backend_is_polled_less_often_the_longer_it_takes(
        seconds: float | None, low: float, high: float) -> None:
    assert low <= _poll_after(busy_for(seconds)) <= high
