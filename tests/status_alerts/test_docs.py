"""docs/status-alerts.md's example alert rules are valid Prometheus rules (``promtool``)
and use only series a real server serves."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.server import REPO, ScsServer

from .monitoring import require_binaries
from .support import admin, serve

DOC = REPO / "docs" / "status-alerts.md"


def yaml_blocks() -> list[Any]:
    text = DOC.read_text()
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def prometheus_rule() -> dict[str, Any]:
    rules = [b for b in yaml_blocks() if isinstance(b, dict) and b.get("kind") ==
             "PrometheusRule"]
    assert len(rules) == 1
    return dict(rules[0])


def rule_expressions() -> list[str]:
    return [rule["expr"] for group in prometheus_rule()["spec"]["groups"]
            for rule in group["rules"]]


@pytest.fixture(scope="module")
def server() -> Iterator[ScsServer]:
    yield from serve()


def test_example_rules_pass_promtool(tmp_path: Path) -> None:
    require_binaries()
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(prometheus_rule()["spec"]))
    checked = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout


def test_example_rules_use_served_series(server: ScsServer) -> None:
    with admin(server) as http:
        served = http.get("/metrics").text
    families = set(re.findall(r"^# TYPE (\w+) ", served, re.M))
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for expr in rule_expressions()
            for name in re.findall(r"\bscs_\w+", expr)}
    assert used and used <= families, used - families
