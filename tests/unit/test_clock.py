"""The clock of revision stamps and metering: real time, or the file a test writes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from central_api.machinery import clock


def test_without_the_variable_the_clock_is_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.ENV, raising=False)
    before = time.time()
    assert before <= clock.now() <= time.time()
    assert clock.clock_warning() is None


def test_the_clock_file_is_read_on_every_call(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clock"
    monkeypatch.setenv(clock.ENV, str(path))
    clock.set_clock_file(str(path), 1767261600.25)
    assert clock.now() == 1767261600.25
    clock.set_clock_file(str(path), 1767270600)
    assert clock.now() == 1767270600.0
    path.write_text(" 1767261600.000001\n")
    assert clock.now() == 1767261600.000001
    warning = clock.clock_warning()
    assert warning is not None and str(path) in warning


def test_a_missing_clock_file_is_an_error_not_real_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.ENV, str(tmp_path / "absent"))
    with pytest.raises(clock.ClockError, match="cannot read"):
        clock.now()


@pytest.mark.parametrize("content", ["", "ten o'clock", "nan", "inf", "-5", "1" * 100,
                                     "\xff\xfe"])
def test_a_bad_clock_file_is_an_error(content: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clock"
    path.write_bytes(content.encode("latin-1"))
    monkeypatch.setenv(clock.ENV, str(path))
    with pytest.raises(clock.ClockError):
        clock.now()
