"""Table cells: ages render exactly like kube's ``duration.HumanDuration``.

The expected strings follow k8s.io/apimachinery/pkg/util/duration (HumanDuration and its
tests): seconds up to 2 minutes, minutes with seconds below 10 minutes, minutes up to 3 hours,
hours with minutes below 8 hours, hours up to 2 days, days with hours below 8 days, days up to
2 years, years with days below 8 years, then years. Up to one second in the future is "0s"
(clock skew); further in the future is "<invalid>".
"""

from __future__ import annotations

import pytest

from central_api.server.tables import human_duration

SECOND, MINUTE, HOUR, DAY = 1, 60, 3600, 86400
YEAR = 365 * DAY


@pytest.mark.parametrize(("seconds", "expected"), [
    (0, "0s"),
    (0.9, "0s"),
    (1, "1s"),
    (59, "59s"),
    (70, "70s"),
    (119, "119s"),
    (119.99, "119s"),
    (2 * MINUTE, "2m"),
    (2 * MINUTE + 1, "2m1s"),
    (190, "3m10s"),
    (5 * MINUTE + 30, "5m30s"),
    (9 * MINUTE + 59, "9m59s"),
    (10 * MINUTE, "10m"),
    (10 * MINUTE + 30, "10m"),
    (70 * MINUTE, "70m"),
    (179 * MINUTE + 59, "179m"),
    (3 * HOUR, "3h"),
    (3 * HOUR + 30 * MINUTE, "3h30m"),
    (7 * HOUR + 59 * MINUTE + 59, "7h59m"),
    (8 * HOUR, "8h"),
    (47 * HOUR, "47h"),
    (48 * HOUR, "2d"),
    (49 * HOUR, "2d1h"),
    (7 * DAY + 23 * HOUR, "7d23h"),
    (8 * DAY, "8d"),
    (8 * DAY + 2 * HOUR, "8d"),
    (367 * DAY, "367d"),
    (2 * YEAR - 1, "729d"),
    (2 * YEAR, "2y"),
    (2 * YEAR + 25 * HOUR, "2y1d"),
    (8 * YEAR - DAY, "7y364d"),
    (8 * YEAR + 2 * HOUR, "8y"),
    (20 * YEAR, "20y"),
])
def test_human_duration_matches_kube(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


@pytest.mark.parametrize("seconds", [-0.5, -1, -1.9])
def test_up_to_one_second_in_the_future_counts_as_now(seconds: float) -> None:
    assert human_duration(seconds) == "0s"


@pytest.mark.parametrize("seconds", [-2, -60, -YEAR])
def test_further_in_the_future_is_invalid(seconds: float) -> None:
    assert human_duration(seconds) == "<invalid>"
