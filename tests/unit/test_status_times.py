"""Times of the status kinds: whatever the schema's date-time format admits, the status
page's rules (active, overlapping, ended before began) can read — a stored time that
only the schema accepts must not become a 500 of every later read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from central_api.kinds.status import INCIDENT, IncidentSpec, is_active, parse_time
from central_api.kinds.structural import validate


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-01t10:00:00z", datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ("2026-12-31T23:59:60Z", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("2026-01-01 11:00:00+0100", datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ("2026-01-01T10:00", datetime(2026, 1, 1, 10, tzinfo=UTC)),
])
def test_every_time_the_schema_admits_is_read(text: str, expected: datetime) -> None:
    assert not validate({"spec": {"beganAt": text}}, INCIDENT.schema)
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00:00Z",
                                  "2026-01-01T00:00:00+25:00", "2026-01-01T24:00:00Z"])
def test_a_time_the_schema_refuses_is_left_to_the_schema(text: str) -> None:
    assert validate({"spec": {"beganAt": text}}, INCIDENT.schema)
    assert IncidentSpec(beganAt=text).causes() == []


def test_an_incident_is_active_from_its_begin_until_its_end() -> None:
    incident = {"spec": {"beganAt": "2026-01-01T10:00:00Z", "endedAt": "2026-01-01T11:00:00Z"}}
    assert not is_active(incident, datetime(2026, 1, 1, 9, 59, tzinfo=UTC))
    assert is_active(incident, datetime(2026, 1, 1, 10, tzinfo=UTC))
    assert not is_active(incident, datetime(2026, 1, 1, 11, tzinfo=UTC))
