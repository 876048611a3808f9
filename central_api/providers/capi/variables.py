"""Topology variables checked against the ClusterClass's variable schemas before writing.

Cluster API's webhook refuses a Cluster whose variables do not match the class; checking
first turns that into a message naming the variable and the pool, and catches it even where
the management cluster runs no webhook. The schemas are the class's ``status.variables``
(what CAPI itself validates against: the spec's definitions plus external patches'), or its
``spec.variables`` while the class has not been reconciled yet. Validation is the Central
API's own structural-schema validation, the same code that checks CRD objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...kinds.structural import validate

Definitions = dict[str, Mapping[str, Any]]


def definitions(cluster_class: Mapping[str, Any]) -> Definitions:
    """Variable name → openAPIV3Schema, from the class's status, else its spec."""
    found: Definitions = {}
    for item in (cluster_class.get("status") or {}).get("variables") or []:
        defs = item.get("definitions") or []
        if defs:
            found[str(item["name"])] = (defs[0].get("schema") or {}).get("openAPIV3Schema") \
                or {}
    if found:
        return found
    for item in (cluster_class.get("spec") or {}).get("variables") or []:
        found[str(item["name"])] = (item.get("schema") or {}).get("openAPIV3Schema") or {}
    return found


def problems(topology: Mapping[str, Any], defs: Definitions) -> list[str]:
    """Every variable of the topology (cluster-wide and per-MachineDeployment overrides)
    that the class does not declare or whose value its schema refuses, as
    ``path: message``."""
    out = _check(topology.get("variables") or [], "spec.topology.variables", defs)
    for md in (topology.get("workers") or {}).get("machineDeployments") or []:
        overrides = (md.get("variables") or {}).get("overrides") or []
        at = f"spec.topology.workers.machineDeployments[{md.get('name')}].variables.overrides"
        out += _check(overrides, at, defs)
    return out


def _check(variables: list[Mapping[str, Any]], at: str, defs: Definitions) -> list[str]:
    out = []
    for variable in variables:
        name = str(variable.get("name"))
        path = f"{at}[{name}]"
        schema = defs.get(name)
        if schema is None:
            out.append(f"{path}: the class declares no variable {name!r}")
            continue
        for cause in validate(variable.get("value"), schema):
            field = f"{path}.{cause.field}" if cause.field else path
            out.append(f"{field}: {cause.message.replace(':  in body ', ': ')}")
    return out


def missing_worker_class(cluster_class: Mapping[str, Any], name: str) -> str:
    """A message if the class has no worker class ``name`` (``capi.workerClass``), else ""."""
    workers = ((cluster_class.get("spec") or {}).get("workers") or {}).get(
        "machineDeployments") or []
    offered = [str(w.get("class")) for w in workers]
    if name in offered:
        return ""
    return f"the class has no worker class {name!r} (it has: {', '.join(offered) or 'none'})"
