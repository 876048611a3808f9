"""The accountant's rules with fixed stamps: metered states per kind, the fold, hour splits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from central_api.controllers.metering import (
    GRACE_US,
    Change,
    Folded,
    OpenState,
    Usage,
    close_hours,
    fold,
    metered_state,
)
from central_api.kinds.metering import (
    HOUR_US,
    Meter,
    format_stamp,
    hours,
    parse_stamp,
    quantities,
    split_hours,
)

DAY = datetime(2026, 1, 5, tzinfo=UTC)


def at(clock: str) -> int:
    """Microseconds of "HH:MM:SS[.ffffff]" on a fixed day."""
    h, m, s = clock.split(":")
    return round((DAY.timestamp() + int(h) * 3600 + int(m) * 60 + float(s)) * 1_000_000)


def obj(kind: str = "Server", uid: str = "u1", generation: int = 1, ready: bool | None = True,
        observed: int | None = None, deleting: bool = False, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"uid": uid, "name": f"{kind.lower()}-a", "namespace": "acme",
                            "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-05T13:00:00Z"
    status: dict[str, Any] = {"observedGeneration": generation}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                 "observedGeneration": observed or generation}]
    if kind == "Server":
        status["flavor"] = spec.get("flavor", "SCS-2V-4")
    return {"metadata": meta, "spec": spec, "status": status}


def change(clock: str, o: dict[str, Any], kind: str = "Server", deleted: bool = False) -> Change:
    return Change(at(clock), kind, deleted, o)


def run(changes: list[Change], states: dict[str, OpenState] | None = None
        ) -> tuple[Folded, dict[str, OpenState]]:
    states = {} if states is None else states
    return fold(states, changes, lambda ns: f"tenant-of-{ns}"), states


def seconds(rows: list[Usage]) -> list[tuple[str, float]]:
    return [(r.meter.flavor or r.meter.volume_type, r.seconds) for r in rows]


# -- hour splits -------------------------------------------------------------------------------
def test_split_at_every_full_hour() -> None:
    pieces = split_hours(at("10:20:00"), at("12:10:00"))
    assert pieces == [(at("10:20:00"), at("11:00:00")), (at("11:00:00"), at("12:00:00")),
                      (at("12:00:00"), at("12:10:00"))]


def test_split_within_one_hour_and_on_boundaries() -> None:
    assert split_hours(at("10:00:00"), at("11:00:00")) == [(at("10:00:00"), at("11:00:00"))]
    assert split_hours(at("10:59:59.999999"), at("11:00:00.000001")) == [
        (at("10:59:59.999999"), at("11:00:00")), (at("11:00:00"), at("11:00:00.000001"))]
    assert split_hours(at("10:00:00"), at("10:00:00")) == []
    assert split_hours(at("11:00:00"), at("10:00:00")) == []


def test_split_pieces_sum_to_the_interval_exactly() -> None:
    start, end = at("03:17:42.123456"), at("21:01:00.654321")
    pieces = split_hours(start, end)
    assert sum(b - a for a, b in pieces) == end - start
    assert all(a // HOUR_US == (b - 1) // HOUR_US for a, b in pieces)


# -- metered states ----------------------------------------------------------------------------
def test_server_is_metered_once_ready_with_its_flavor() -> None:
    assert metered_state("Server", obj(ready=None), False, None) is None
    assert metered_state("Server", obj(ready=False), False, None) is None
    assert metered_state("Server", obj(flavor="SCS-4V-8"), False, None) == \
        (Meter(flavor="SCS-4V-8"),)


def test_ready_for_an_older_generation_keeps_the_previous_state() -> None:
    before = (Meter(flavor="SCS-2V-4"),)
    resizing = obj(generation=2, observed=1, flavor="SCS-4V-8")
    assert metered_state("Server", resizing, False, before) == before
    assert metered_state("Server", resizing, False, None) is None


def test_an_outage_does_not_stop_metering() -> None:
    before = (Meter(flavor="SCS-2V-4"),)
    assert metered_state("Server", obj(ready=False), False, before) == before


def test_deletion_ends_metering() -> None:
    before = (Meter(flavor="SCS-2V-4"),)
    assert metered_state("Server", obj(deleting=True), False, before) is None
    assert metered_state("Server", obj(), True, before) is None


def test_volume_floating_ip_and_load_balancer_states() -> None:
    volume = obj("Volume", sizeGiB=20, volumeType="ssd")
    assert metered_state("Volume", volume, False, None) == \
        (Meter(volume_type="ssd", size_gib=20),)
    assert metered_state("Volume", obj("Volume", sizeGiB=5), False, None) == \
        (Meter(volume_type="default", size_gib=5),)
    assert metered_state("FloatingIP", obj("FloatingIP"), False, None) == (Meter(),)
    assert metered_state("LoadBalancer", obj("LoadBalancer"), False, None) == (Meter(),)


def test_cluster_meters_pools_and_a_control_plane_unless_hosted() -> None:
    cluster = obj("Cluster", controlPlane={"replicas": 3}, nodePools=[
        {"name": "a", "flavor": "SCS-4V-8", "replicas": 2},
        {"name": "b", "flavor": "SCS-8V-16", "autoscaling": {"min": 1, "max": 5}},
        {"name": "idle", "flavor": "SCS-2V-4", "replicas": 0}])
    cluster["status"]["nodePools"] = [{"name": "b", "desiredReplicas": 4}]
    assert metered_state("Cluster", cluster, False, None) == (
        Meter(part="control-plane", flavor="SCS-2V-4", count=3),
        Meter(part="pool/a", flavor="SCS-4V-8", count=2),
        Meter(part="pool/b", flavor="SCS-8V-16", count=4))
    hosted = obj("Cluster", controlPlane={"hosted": True}, nodePools=[
        {"name": "a", "flavor": "SCS-4V-8", "replicas": 1}])
    assert metered_state("Cluster", hosted, False, None) == \
        (Meter(part="pool/a", flavor="SCS-4V-8", count=1),)


# -- the fold ----------------------------------------------------------------------------------
def test_create_resize_delete_gives_exact_rows_per_hour() -> None:
    server = obj(flavor="SCS-2V-4")
    result, states = run([
        change("10:00:00", obj(ready=None)),
        change("10:00:00", server),
        change("12:30:00", obj(generation=2, observed=1, flavor="SCS-4V-8")),
        change("12:30:00", obj(generation=2, flavor="SCS-4V-8")),
        change("13:00:00", obj(generation=2, flavor="SCS-4V-8", deleting=True)),
        change("13:00:05", obj(generation=2, flavor="SCS-4V-8", deleting=True), deleted=True),
    ])
    assert seconds(result.rows) == [("SCS-2V-4", 3600.0), ("SCS-2V-4", 3600.0),
                                    ("SCS-2V-4", 1800.0), ("SCS-4V-8", 1800.0)]
    assert [r.start_us for r in result.rows] == [at("10:00:00"), at("11:00:00"),
                                                 at("12:00:00"), at("12:30:00")]
    assert {r.tenant for r in result.rows} == {"tenant-of-acme"}
    assert states == {}
    assert result.changed == {"u1": None}


def test_resize_counts_from_the_revision_that_applied_it() -> None:
    result, _ = run([
        change("10:00:00", obj(flavor="SCS-2V-4")),
        change("10:10:00", obj(generation=2, observed=1, flavor="SCS-2V-4")),  # spec changed
        change("10:25:00", obj(generation=2, flavor="SCS-4V-8")),  # applied
        change("10:40:00", obj(generation=2, flavor="SCS-4V-8", deleting=True)),
    ])
    assert seconds(result.rows) == [("SCS-2V-4", 1500.0), ("SCS-4V-8", 900.0)]


def test_unchanged_revisions_and_outages_emit_nothing() -> None:
    result, states = run([
        change("10:00:00", obj()),
        change("10:05:00", obj(ready=False)),
        change("10:06:00", obj()),
    ])
    assert result.rows == []
    assert states["u1"].since_us == at("10:00:00")


def test_never_ready_objects_leave_no_state() -> None:
    result, states = run([change("10:00:00", obj(ready=None)),
                          change("10:01:00", obj(ready=None, deleting=True)),
                          change("10:02:00", obj(ready=None), deleted=True)])
    assert result.rows == [] and result.changed == {} and states == {}


def test_delete_without_deletion_timestamp_ends_at_the_deleted_event() -> None:
    result, _ = run([change("10:00:00", obj()),
                     change("10:00:30.25", obj(), deleted=True)])
    assert seconds(result.rows) == [("SCS-2V-4", 30.25)]


def test_a_cluster_row_per_part_per_hour() -> None:
    cluster = obj("Cluster", nodePools=[{"name": "a", "flavor": "SCS-4V-8", "replicas": 2}])
    grown = obj("Cluster", generation=2,
                nodePools=[{"name": "a", "flavor": "SCS-4V-8", "replicas": 3}])
    result, _ = run([change("10:30:00", cluster, "Cluster"),
                     change("11:15:00", grown, "Cluster"),
                     change("11:45:00", grown, "Cluster", deleted=True)])
    got = [(r.meter.part, r.meter.count, r.seconds) for r in result.rows]
    assert got == [("control-plane", 1, 1800.0), ("pool/a", 2, 1800.0),
                   ("control-plane", 1, 900.0), ("pool/a", 2, 900.0),
                   ("control-plane", 1, 1800.0), ("pool/a", 3, 1800.0)]


def test_states_resume_from_their_json() -> None:
    result, states = run([change("10:00:00", obj(flavor="SCS-2V-4"))])
    saved = {uid: OpenState.from_json(s.to_json()) for uid, s in states.items()}
    assert saved == states
    later, _ = run([change("10:20:00", obj(), deleted=True)], saved)
    assert seconds(later.rows) == [("SCS-2V-4", 1200.0)]


def test_close_hours_closes_passed_hours_after_the_grace() -> None:
    _, states = run([change("10:20:00", obj())])
    out = Folded()
    close_hours(states, at("12:00:00") + GRACE_US - 1, out)
    assert seconds(out.rows) == [("SCS-2V-4", 2400.0)]
    assert states["u1"].since_us == at("11:00:00")
    close_hours(states, at("12:00:00") + GRACE_US, out)
    assert seconds(out.rows) == [("SCS-2V-4", 2400.0), ("SCS-2V-4", 3600.0)]
    assert out.changed["u1"].since_us == at("12:00:00")  # type: ignore[union-attr]


def test_a_late_event_before_a_closed_hour_counts_from_the_boundary() -> None:
    _, states = run([change("10:20:00", obj())])
    out = Folded()
    close_hours(states, at("11:00:00") + GRACE_US, out)
    late, _ = run([change("10:59:59", obj(), deleted=True)], states)
    assert seconds(out.rows) + seconds(late.rows) == [("SCS-2V-4", 2400.0)]


def test_split_sums_match_whole_interval_across_many_changes() -> None:
    changes = [change("00:00:00.5", obj())]
    for i in range(1, 40):
        flavor = "SCS-2V-4" if i % 2 else "SCS-4V-8"
        changes.append(change(f"{i // 2:02d}:{(i * 17) % 60:02d}:00",
                              obj(generation=i + 1, flavor=flavor)))
    changes.append(change("23:59:59.5", obj(generation=40), deleted=True))
    result, _ = run(sorted(changes, key=lambda c: c.stamp_us))
    assert sum(r.end_us - r.start_us for r in result.rows) == at("23:59:59.5") - at("00:00:00.5")


# -- quantities and times ----------------------------------------------------------------------
def test_quantities_per_kind() -> None:
    units = {(q.unit, q.per_hour, q.flavor) for q in quantities("Server", Meter(flavor="SCS-4V-8"))}
    assert units == {("instance-hours", 1, "SCS-4V-8"), ("vCPU-hours", 4, "SCS-4V-8"),
                     ("RAM-GiB-hours", 8.0, "SCS-4V-8")}
    assert [q.unit for q in quantities("Server", Meter(flavor="m1.small"))] == ["instance-hours"]
    assert [(q.unit, q.per_hour, q.flavor) for q in
            quantities("Volume", Meter(volume_type="ssd", size_gib=20))] == \
        [("volume-GiB-hours", 20, "ssd")]
    assert [q.unit for q in quantities("FloatingIP", Meter())] == ["floatingip-hours"]
    assert [q.unit for q in quantities("LoadBalancer", Meter())] == ["loadbalancer-hours"]
    plane = quantities("Cluster", Meter(part="control-plane", flavor="SCS-2V-4", count=3))
    assert [(q.unit, q.per_hour) for q in plane] == [("control-plane-hours", 1),
                                                     ("control-plane-node-hours", 3)]
    assert [(q.unit, q.per_hour) for q in
            quantities("Cluster", Meter(part="pool/a", flavor="SCS-4V-8", count=2))] == \
        [("node-hours", 2)]


def test_hours_round_to_six_decimals() -> None:
    assert hours(1800) == 0.5
    assert hours(1) == 0.000278


@pytest.mark.parametrize("text", ["2026-01-05", "2026-01-05T00:00:00Z",
                                  "2026-01-05T01:00:00+01:00", "2026-01-05T00:00:00"])
def test_parse_stamp_reads_dates_and_offsets(text: str) -> None:
    assert parse_stamp(text) == DAY.timestamp()


def test_format_stamp_shows_microseconds() -> None:
    assert format_stamp(at("10:00:00.000001") / 1e6) == "2026-01-05T10:00:00.000001Z"
    with pytest.raises(ValueError):
        parse_stamp("yesterday")
