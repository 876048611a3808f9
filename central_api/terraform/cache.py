"""The generated Terraform types, kept between provider processes.

Terraform starts the provider afresh for validate, plan and apply — three or four times per
command — and declaring the built-in kinds (their pydantic models and schemas) takes most of
a process's start (0.7 s of 1.3 s on a 2-core machine). The generated types are plain data,
so they are written once as JSON under ``$XDG_CACHE_HOME/scs-terraform`` (default
``~/.cache``), in a file named by a fingerprint of this package's version and of the source
files that declare kinds or map them: a changed or added kind makes a new fingerprint, and
the next start generates again. A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import __version__
from .schema import Node
from .types import TfAction, TfKind, Where

PACKAGE = Path(__file__).resolve().parent.parent
SOURCES = ("kinds", "terraform")


def fingerprint() -> str:
    digest = hashlib.sha256(__version__.encode())
    for folder in SOURCES:
        for path in sorted((PACKAGE / folder).glob("*.py")):
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scs-terraform" / f"types-{fingerprint()}.json"


def load() -> tuple[list[TfKind], list[TfAction]]:
    """The types, from the cache when it is current, else generated (and cached)."""
    path = cache_file()
    try:
        return _decode(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from .kinds import actions, served_kinds  # the kinds' declarations: the slow part

    kinds, found = served_kinds(), actions()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".types-")
        with os.fdopen(fd, "w") as out:
            json.dump({"kinds": [asdict(k) for k in kinds],
                       "actions": [asdict(a) for a in found]}, out)
        os.replace(tmp, path)
    except OSError:
        pass
    return kinds, found


def _node(data: dict[str, Any] | None) -> Node | None:
    if data is None:
        return None
    element = _node(data.pop("element"))
    attributes = {n: _node(a) for n, a in data.pop("attributes").items()}
    return Node(**data, element=element, attributes=attributes)  # type: ignore[arg-type]


def _decode(data: dict[str, Any]) -> tuple[list[TfKind], list[TfAction]]:
    kinds = []
    for k in data["kinds"]:
        data_node = _node(k["data"])
        if data_node is None:
            raise ValueError("a kind without data source schema")
        kinds.append(TfKind(k["type_name"], Where(**k["res"]), _node(k["resource"]),
                            data_node, k["waits"]))
    found = []
    for a in data["actions"]:
        node = _node(a["data"])
        if node is None:
            raise ValueError("an action without schema")
        found.append(TfAction(a["type_name"], Where(**a["res"]), a["subresource"],
                              a["request_kind"], a["api_version"], node))
    return kinds, found
