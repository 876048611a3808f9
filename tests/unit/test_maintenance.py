"""Maintenance windows (Gardener's HHMMSS+ZZZZ, wrapping midnight, time zones, the default
window) and the KaaS controller's choice of the patch version a backend gets."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest

from central_api.controllers.kaas import ClusterReconciler
from central_api.controllers.maintenance import Plan, Running, plan
from central_api.kinds.kaas import Cluster, ClusterSpec
from central_api.kinds.timewindow import default_window, window_of, window_problem
from central_api.providers.base import BackendResource, Scope
from central_api.providers.kaas import KaasProvider

UTC = dt.UTC


def at(text: str, zone: int = 0) -> dt.datetime:
    """A moment on 2026-12-03 at ``HH:MM`` in UTC+``zone`` hours."""
    hours, minutes = (int(p) for p in text.split(":"))
    return dt.datetime(2026, 12, 3, hours, minutes, tzinfo=dt.timezone(dt.timedelta(hours=zone)))


# -- windows ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("begin", "end", "inside", "outside"), [
    ("220000+0000", "230000+0000", ["22:00", "22:59"], ["21:59", "23:00", "03:00"]),
    ("230000+0000", "010000+0000", ["23:00", "23:59", "00:00", "00:59"],
     ["01:00", "22:59", "12:00"]),  # wraps midnight
    ("220000+0100", "230000+0100", ["21:00", "21:30"], ["22:00", "22:30", "20:59"]),
    ("003000+0200", "020000+0200", ["22:30", "23:59"], ["00:30", "22:29", "00:00"]),
    ("233000-0500", "013000-0500", ["04:30", "06:29"], ["23:30", "06:30"]),  # UTC next day
])
def test_a_window_holds_the_moments_between_begin_and_end_in_its_zone(
        begin: str, end: str, inside: list[str], outside: list[str]) -> None:
    window = window_of(begin, end)
    assert all(window.contains(at(t)) for t in inside), inside
    assert not any(window.contains(at(t)) for t in outside), outside


def test_the_same_moment_in_another_zone_is_the_same_answer() -> None:
    window = window_of("220000+0100", "230000+0100")
    assert window.contains(at("22:30", zone=1)) and window.contains(at("21:30"))
    assert window.contains(at("16:30", zone=-5))
    assert not window.contains(at("22:30"))


def test_opens_in_counts_to_the_next_begin_across_midnight() -> None:
    window = window_of("220000+0100", "230000+0100")  # 21:00-22:00 UTC
    assert window.opens_in(at("20:00")) == 3600
    assert window.opens_in(at("21:30")) == 0
    assert window.opens_in(at("22:00")) == 23 * 3600


def test_window_text_shows_its_own_zone() -> None:
    assert window_of("220000+0100", "230000+0100").text == "22:00–23:00 +0100"
    assert window_of("223015+0530", "010000+0000").text == "22:30:15 +0530–01:00 +0000"


@pytest.mark.parametrize(("begin", "end", "problem"), [
    ("220000+0000", "221000+0000", "30 minutes to 6 hours"),
    ("220000+0000", "050000+0000", "30 minutes to 6 hours"),
    ("250000+0000", "260000+0000", "not a time of day"),
    ("220000+1500", "230000+1500", "not a time of day"),
    ("220000+0000", "220000+0000", "30 minutes to 6 hours"),
])
def test_bad_windows_are_explained(begin: str, end: str, problem: str) -> None:
    assert problem in window_problem(begin, end)


def test_good_windows_pass_including_one_that_wraps() -> None:
    assert window_problem("230000+0100", "030000+0100") == ""
    assert window_problem("220000+0000", "223000+0000") == ""


def test_the_spec_refuses_a_bad_window_with_its_field() -> None:
    spec = ClusterSpec.model_validate({"kubernetesVersion": "1.34", "maintenance": {
        "timeWindow": {"begin": "220000+0000", "end": "221000+0000"}}})
    assert [c.field for c in spec.causes()] == ["spec.maintenance.timeWindow"]


@pytest.mark.parametrize("minute", range(0, 24 * 60, 7))
def test_the_default_window_is_an_hour_of_the_night_never_within_six_hours_of_creation(
        minute: int) -> None:
    created = dt.datetime(2026, 12, 3, tzinfo=UTC) + dt.timedelta(minutes=minute)
    window = default_window(created)
    assert (window.end - window.begin) % 86400 == 3600
    assert window.begin >= 22 * 3600 or window.begin < 6 * 3600
    for later in range(0, 6 * 60, 10):
        assert not window.contains(created + dt.timedelta(minutes=later))
    assert window == default_window(created + dt.timedelta(days=3))  # stable
    assert window.text.endswith("+0000 (default)")


# -- the version the backend gets ----------------------------------------------------------
OFFER: dict[str, Any] = {"kubernetes": {"versions": [
    {"version": "1.33.9"}, {"version": "1.33.10"},
    {"version": "1.34.6", "classification": "deprecated",
     "expirationDate": "2026-12-10T00:00:00Z"},
    {"version": "1.34.7"}, {"version": "1.34.8", "classification": "preview"},
    {"version": "1.32.12", "classification": "expired"},
    {"version": "1.32.13", "expirationDate": "2026-12-01T00:00:00Z"},
]}, "clusterClasses": [{"name": "openstack-scs2-1-34-v1", "kubernetesVersion": "1.34.6"},
                       {"name": "openstack-scs2-1-34-v2", "kubernetesVersion": "1.34.7"}]}
WINDOW = window_of("220000+0100", "230000+0100")  # 21:00-22:00 UTC
IN, OUT = at("21:30"), at("12:00")


def spec(version: str, auto: bool = True) -> dict[str, Any]:
    return {"kubernetesVersion": version, "maintenance": {"autoUpdate": {
        "kubernetesVersion": auto}}}


def decide(version: str, running: str | None, now: dt.datetime, auto: bool = True,
           settled: bool = True, offer: dict[str, Any] | None = OFFER) -> Plan:
    return plan(spec(version, auto), Running(running, settled) if running else None, offer,
                WINDOW, now)


def test_a_new_cluster_gets_the_spec_patch_or_the_minors_newest_at_once() -> None:
    assert decide("1.34.6", None, OUT) == Plan("1.34.6")
    assert decide("1.34", None, OUT) == Plan("1.34.7")  # 1.34.8 is only a preview
    assert decide("1.34", None, OUT, offer=None) == Plan("1.34")  # the backend resolves it


def test_a_user_change_of_version_is_applied_at_once() -> None:
    assert decide("1.34.7", "1.34.6", OUT).version == "1.34.7"
    assert decide("1.34", "1.33.10", OUT).version == "1.34.7"
    assert decide("1.34", "1.34", OUT).version == "1.34.7"  # a backend given a minor before
    assert decide("1.34.8", "1.34.7", OUT).version == "1.34.8"  # a preview when asked for


def test_a_newer_patch_waits_for_the_window_and_says_so() -> None:
    waiting = decide("1.34.6", "1.34.6", OUT)
    assert waiting.version == "1.34.6" and waiting.pending == "1.34.7"
    assert waiting.message == "patch 1.34.7 scheduled for the window 22:00–23:00 +0100"
    assert waiting.wait == 9 * 3600
    applied = decide("1.34.6", "1.34.6", IN)
    assert applied.version == "1.34.7" and not applied.pending
    assert "applied in the window" in applied.message


def test_a_minor_spec_updates_even_without_auto_update_but_never_to_a_preview() -> None:
    assert decide("1.34", "1.34.6", IN, auto=False).version == "1.34.7"
    assert decide("1.34", "1.34.6", OUT, auto=False).version == "1.34.6"
    assert decide("1.34", "1.34.7", IN) == Plan("1.34.7")  # 1.34.8 is a preview


def test_a_pinned_patch_stays_unless_it_expires() -> None:
    assert decide("1.33.9", "1.33.9", IN, auto=False) == Plan("1.33.9")
    expiring = decide("1.34.6", "1.34.6", OUT, auto=False)  # expires 2026-12-10: not yet
    assert expiring == Plan("1.34.6")
    later = plan(spec("1.34.6", auto=False), Running("1.34.6", True), OFFER, WINDOW,
                 dt.datetime(2026, 12, 10, 21, 30, tzinfo=UTC))
    assert later.version == "1.34.7" and "(1.34.6 has expired)" in later.message


def test_an_expired_version_is_moved_to_a_usable_patch_only() -> None:
    moved = decide("1.32.12", "1.32.12", OUT, auto=False)
    assert moved.version == "1.32.12" and moved.pending == "" \
        and "no newer patch of 1.32 is offered" in moved.message  # 1.32.13 expired too


def test_a_pinned_cluster_class_keeps_its_patch_and_says_why() -> None:
    pinned = plan({**spec("1.34.6"), "clusterClass": "openstack-scs2-1-34-v1"},
                  Running("1.34.6", True), OFFER, WINDOW, IN)
    assert pinned.version == "1.34.6" and not pinned.pending
    assert "spec.clusterClass pins openstack-scs2-1-34-v1" in pinned.message


def test_a_pinned_cluster_class_gives_a_minor_the_patch_the_class_installs() -> None:
    pinned = {**spec("1.34"), "clusterClass": "openstack-scs2-1-34-v1"}
    assert plan(pinned, None, OFFER, WINDOW, IN).version == "1.34.6"  # not the newest 1.34.7
    kept = plan(pinned, Running("1.34.6", True), OFFER, WINDOW, IN)
    assert kept.version == "1.34.6" and not kept.pending


def test_a_running_cluster_is_never_moved_down_or_while_busy() -> None:
    assert decide("1.34.6", "1.34.8", IN).version == "1.34.8"  # spec below the running patch
    busy = decide("1.33.9", "1.33.9", IN, settled=False)
    assert busy.version == "1.33.9" and busy.pending == "1.33.10" and busy.wait is None
    assert "once the current change is done" in busy.message
    assert decide("1.33.10", "1.33.10", IN) == Plan("1.33.10")  # already the newest


# -- the controller with its clock set by the test --------------------------------------------
class Backend:
    """A KaaS cluster service that records which version it was given."""

    def __init__(self) -> None:
        self.found: BackendResource | None = None
        self.given: list[str] = []

    async def find(self, scope: Scope, owner_uid: str) -> BackendResource | None:
        return self.found

    async def create(self, scope: Scope, owner_uid: str, desired: Mapping[str, Any]
                     ) -> BackendResource:
        return self._take(owner_uid, desired)

    async def update(self, scope: Scope, resource: BackendResource,
                     desired: Mapping[str, Any]) -> BackendResource:
        return self._take(resource.owner_uid, desired)

    async def delete(self, scope: Scope, resource: BackendResource) -> None:
        self.found = None

    def _take(self, owner_uid: str, desired: Mapping[str, Any]) -> BackendResource:
        version = str(desired["kubernetesVersion"])
        self.given.append(version)
        self.found = BackendResource("backend-1", owner_uid, "ACTIVE", desired=dict(desired),
                                     observed={"kubernetesVersion": version,
                                               "controlPlaneReady": True, "nodePools": []})
        return self.found


class Api:
    """The few reads and writes the reconciler makes: the namespace and the profile."""

    async def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def create(self, kind: Any, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    async def update(self, kind: Any, obj: dict[str, Any]) -> dict[str, Any]:
        return obj


def test_the_controller_holds_a_new_patch_until_its_clock_reaches_the_window() -> None:
    backend, now = Backend(), [OUT]

    async def offer() -> dict[str, Any]:
        return OFFER

    async def no_access(*_: Any) -> Any:
        raise NotImplementedError

    provider = KaasProvider("fake", backend, offer, no_access)
    reconciler = ClusterReconciler(Api(), provider, clock=lambda: now[0])  # type: ignore[arg-type]
    cluster = Cluster.model_validate({
        "metadata": {"name": "c", "namespace": "ns", "uid": "u1", "generation": 1,
                     "creationTimestamp": "2026-12-01T10:00:00Z"},
        "spec": {"kubernetesVersion": "1.34.6", "maintenance": {"timeWindow": {
            "begin": "220000+0100", "end": "230000+0100"}}}})

    async def passes() -> list[float | None]:
        return [(await reconciler.reconcile(cluster)).requeue_after for _ in range(2)]

    waits = asyncio.run(passes())
    assert backend.given == ["1.34.6"]
    assert cluster.status.maintenance is not None
    assert cluster.status.maintenance.pendingVersion == "1.34.7"
    assert cluster.status.maintenance.window == "22:00–23:00 +0100"
    assert waits[-1] == 9 * 3600 + 1  # back when the window opens
    now[0] = IN
    asyncio.run(passes())
    assert backend.given == ["1.34.6", "1.34.7"]
    assert cluster.status.kubernetesVersion == "1.34.7"
    assert cluster.status.maintenance.pendingVersion == ""


def test_an_expiration_date_without_offset_is_utc_and_does_not_break_the_decision() -> None:
    """A backend may state a plain date (or a time without offset); comparing it with the
    aware clock must not raise, which would fail every pass of every cluster."""
    offer = {"kubernetes": {"versions": [{"version": "1.34.6", "expirationDate": "2026-12-03"},
                                         {"version": "1.34.7",
                                          "expirationDate": "2026-12-04T00:00:00"}]}}
    moved = plan(spec("1.34.6", auto=False), Running("1.34.6", True), offer, WINDOW, IN)
    assert moved.version == "1.34.7" and "(1.34.6 has expired)" in moved.message
