"""The operator configurations in examples/ load as written (a renamed key fails here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from central_api.config import load_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("**/config-*.yaml"))


def test_there_are_example_configs() -> None:
    assert {p.name for p in EXAMPLES} >= {"config-capi.yaml", "config-gardener.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_loads(path: Path) -> None:
    config = load_config(path)
    kaas = config.providers["kaas"]
    assert kaas.type == path.stem.removeprefix("config-")
    assert getattr(kaas, kaas.type).kubeconfig.startswith("/etc/scs/")


def test_a_default_lifetime_above_the_maximum_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("providers:\n  kaas:\n"
                    "    kubeconfigs: {defaultSeconds: 7200, maxSeconds: 3600}\n")
    with pytest.raises(ValueError, match="providers.kaas.kubeconfigs: .*defaultSeconds"):
        load_config(path)
