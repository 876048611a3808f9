"""The probe incident lifecycle (:func:`central_api.controllers.status_probes.step`): a pure
state machine, driven here with explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from central_api.controllers.status_probes import (
    AddUpdate,
    End,
    Open,
    ProbeState,
    Thresholds,
    adopted,
    clean_error,
    incident_name,
    step,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
LIMITS = Thresholds(failures=3, recoveries=2, max_updates=5)


def run(results: list[str | None], state: ProbeState | None = None,
        limits: Thresholds = LIMITS) -> tuple[ProbeState, list[object]]:
    """Feed results (None: success, else the error), one per 10 s from T0."""
    state = state or ProbeState()
    actions: list[object] = []
    for i, error in enumerate(results):
        state, done = step(state, error is None, error or "", T0 + timedelta(seconds=10 * i),
                           "identity", limits)
        actions += done
    return state, actions


def test_incident_opens_after_threshold_consecutive_failures_with_first_failure_time() -> None:
    state, actions = run(["down", "down"])
    assert actions == [] and state.failures == 2
    state, actions = run(["down", "down", "down"])
    assert actions == [Open(incident_name("identity", T0), T0, "down", 3)]
    assert state.incident == "probe-identity-20250301-120000"


def test_a_success_before_the_threshold_starts_the_count_again() -> None:
    state, actions = run(["down", "down", None, "down", "down"])
    assert actions == [] and state.failures == 2
    assert state.first_failure == T0 + timedelta(seconds=30)


def test_recovery_needs_consecutive_successes_and_ends_at_that_time() -> None:
    _, actions = run(["down"] * 3 + [None, None])
    assert actions[-1] == End(incident_name("identity", T0), T0 + timedelta(seconds=40), 2)


def test_flapping_keeps_one_incident() -> None:
    state, actions = run(["down"] * 3 + [None, "down"] * 10)
    assert [a for a in actions if isinstance(a, Open)] == actions[:1]
    assert not any(isinstance(a, End) for a in actions)
    assert state.incident == incident_name("identity", T0)


def test_updates_only_when_the_error_changes_and_bounded() -> None:
    _, actions = run(["down"] * 3 + ["down"] * 20)
    assert [type(a) for a in actions] == [Open]
    errors = [f"error {i}" for i in range(20)]
    _, actions = run(["down"] * 3 + errors)
    updates = [a for a in actions if isinstance(a, AddUpdate)]
    assert len(updates) == LIMITS.max_updates - 1  # the opening update counts
    assert updates[0].error == "error 0"


def test_after_recovery_a_new_outage_opens_a_new_incident() -> None:
    _, actions = run(["down"] * 3 + [None, None] + ["down"] * 3)
    opened = [a for a in actions if isinstance(a, Open)]
    assert [o.began for o in opened] == [T0, T0 + timedelta(seconds=50)]
    assert opened[0].name != opened[1].name


def test_a_restarted_runner_adopts_the_open_incident_instead_of_opening_another() -> None:
    incident = {"metadata": {"name": "probe-identity-20250301-120000"},
                "spec": {"beganAt": "2025-03-01T12:00:00.000Z",
                         "updates": [{"order": 0, "description": "down"}]}}
    state = adopted(incident, LIMITS)
    state, actions = run(["down", "down"], state)
    assert actions == []
    state, actions = run([None, None], state)
    assert actions == [End("probe-identity-20250301-120000", T0 + timedelta(seconds=10), 2)]


def test_adopted_incident_reports_a_different_error() -> None:
    incident = {"metadata": {"name": "x"}, "spec": {"beganAt": None, "updates": []}}
    _, actions = run(["timeout"], adopted(incident, LIMITS))
    assert actions == [AddUpdate("x", "timeout")]


def test_recovery_threshold_one_ends_at_first_success() -> None:
    _, actions = run(["down", None], limits=Thresholds(failures=1, recoveries=1))
    assert [type(a) for a in actions] == [Open, End]


def test_error_text_loses_url_credentials_and_query_strings() -> None:
    error = ValueError("cannot reach https://admin:s3cret@keystone.example:5000/v3?token=abc "
                       "now")
    text = clean_error(error)
    assert "s3cret" not in text and "token=abc" not in text
    assert "https://keystone.example:5000/v3" in text
    assert len(clean_error(ValueError("x" * 5000))) == 1000
