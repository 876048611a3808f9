"""docs/terraform.md stays true to the provider: its replace-on-change table is what the
kinds' schemas mark immutable, and every type name it mentions is served (no Terraform run:
the schemas are built as the provider builds them)."""

from __future__ import annotations

import re

from central_api.terraform.kinds import actions, served_kinds
from central_api.terraform.schema import Node
from tests.server import REPO

GUIDE = (REPO / "docs" / "terraform.md").read_text()
EXAMPLES_OF_THE_CLASH_RULE = {"scs_iaas_network", "scs_example_network"}


def replaced(node: Node, path: str = "") -> list[str]:
    found = []
    for name, child in node.attributes.items():
        here = f"{path}.{name}" if path else name
        if child.replace:
            found.append(here)
        found += replaced(child, here)
        if child.element is not None:
            found += replaced(child.element, here)
    return found


def test_the_replace_table_lists_every_immutable_attribute() -> None:
    table = dict(re.findall(r"^\| `(scs_\w+)` \| (.+) \|$", GUIDE, re.M))
    documented = {kind: sorted(re.findall(r"`([\w.]+)`", cell)) for kind, cell in table.items()}
    actual = {}
    for kind in served_kinds():
        if kind.resource is not None:
            fields = [f for f in replaced(kind.resource) if not f.startswith("metadata.")]
            if fields:
                actual[kind.type_name] = sorted(fields)
    assert documented == actual


def test_every_type_the_guide_names_is_served() -> None:
    kinds = served_kinds()
    served = {k.type_name for k in kinds} | {a.type_name for a in actions()}
    named = set(re.findall(r"\b(scs_[a-z_]+[a-z])\b", GUIDE)) - EXAMPLES_OF_THE_CLASH_RULE
    assert named <= served, sorted(named - served)
