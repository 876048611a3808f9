"""How many worker processes ``--workers`` or the config's ``workers`` asks for."""

from __future__ import annotations

import os

import pytest

from central_api.config import Config
from central_api.server.workers import worker_count


def test_auto_is_one_worker_per_usable_cpu() -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("setting", [1, "2", 3])
def test_a_positive_number_is_taken(setting: int | str) -> None:
    assert worker_count(setting) == int(setting)


@pytest.mark.parametrize("setting", [0, "-1", "two", ""])
def test_anything_else_is_refused(setting: int | str) -> None:
    with pytest.raises(ValueError, match="workers must be a positive number or 'auto'"):
        worker_count(setting)


def test_the_config_key_defaults_to_one_and_takes_auto() -> None:
    assert Config().workers == 1
    assert Config.model_validate({"workers": "auto"}).workers == "auto"
    with pytest.raises(ValueError):
        Config.model_validate({"workers": 0})
