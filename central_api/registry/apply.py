"""Server-side apply and ``metadata.managedFields``: who owns which field of an object.

``kubectl apply --server-side``, the kubernetes Python client and Terraform's
``kubernetes_manifest`` rely on kube-apiserver's field management: an applier's configuration is
merged into the live object, fields it applied before but no longer applies are removed unless
someone else owns them, and changing a field someone else owns is a 409 ``Conflict`` unless the
apply is forced. Every other write records an ``Update`` entry for the fields it changed, so that
later appliers see the conflict. Clients read ``managedFields`` back (``kubectl get
--show-managed-fields``, Terraform's drift detection), so the ``FieldsV1`` encoding, entry identity
and ordering follow ``sigs.k8s.io/structured-merge-diff`` and
``k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager`` (strip-meta, before-first-apply, the cap
of ten update managers, and kubectl's last-applied-annotation upgrade path).

A field path is a tuple of ``FieldsV1`` path elements (``f:spec``, ``k:{"port":80}``, ``v:"x"``);
a field set is a set of such paths, each a *member*. Lists are atomic unless the schema says
``x-kubernetes-list-type: map|set``; maps are granular unless ``x-kubernetes-map-type: atomic``;
where the schema says nothing (``x-kubernetes-preserve-unknown-fields``) the shape is deduced.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from central_api.machinery.errors import ApiError, Cause, bad_request
from central_api.registry.patch import (
    Schema,
    check_types,
    field_schema,
    is_declared,
    items_schema,
    json_equal,
    resource_schema,
)

Path = tuple[str, ...]
PathSet = set[Path]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"
APPLY = "Apply"
UPDATE = "Update"

#: Paths kube-apiserver never records as owned (its ``stripMetaManager``).
_STRIPPED: frozenset[Path] = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",)}
    | {("f:metadata", f"f:{name}") for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
        "generation", "managedFields", "resourceVersion")}
)
#: Server-owned metadata an applied configuration cannot set.
_SERVER_META = ("managedFields", "uid", "creationTimestamp", "generation", "resourceVersion",
                "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


class _Missing:
    """Marks an absent value (``None`` is JSON ``null``)."""


_MISSING: Any = _Missing()


# --------------------------------------------------------------------------- path elements


def _go_json(value: Any) -> str:
    """Compact JSON with sorted keys and Go's HTML escaping, as in ``k:``/``v:`` elements."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _item_pe(schema: Schema | None, item: Any, index: int) -> str:
    """Path element of a list item: ``k:`` for list-maps, ``v:`` for sets, else ``i:``."""
    list_type = (schema or {}).get("x-kubernetes-list-type")
    if list_type == "set":
        return "v:" + _go_json(item)
    if list_type == "map" and isinstance(item, dict):
        props = (items_schema(schema) or {}).get("properties") or {}
        keys: dict[str, Any] = {}
        for name in (schema or {}).get("x-kubernetes-list-map-keys") or []:
            if name in item:
                keys[name] = item[name]
            elif "default" in (props.get(name) or {}):
                keys[name] = props[name]["default"]
        if keys:
            return "k:" + _go_json(keys)
    return f"i:{index}"


def _canonical_pe(key: str) -> str:
    prefix, sep, rest = key.partition(":")
    if not sep:
        raise ValueError(f"invalid path element {key!r}")
    if prefix == "f":
        return key
    if prefix in ("k", "v"):
        return f"{prefix}:{_go_json(json.loads(rest))}"
    if prefix == "i":
        return f"i:{int(rest)}"
    raise ValueError(f"invalid path element {key!r}")


def _value_order(value: Any) -> tuple[int, Any]:
    """structured-merge-diff's value order: numbers, strings, bools, lists, maps, null."""
    if isinstance(value, bool):
        return (2, int(value))
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    if value is None:
        return (5, 0)
    return (3 if isinstance(value, list) else 4, _go_json(value))


def _pe_order(pe: str) -> tuple[int, Any]:
    """Fields (by name) < keys < values < indexes, like ``PathElement.Compare``."""
    prefix, rest = pe[0], pe[2:]
    if prefix == "f":
        return (0, rest)
    if prefix == "k":
        keys = json.loads(rest)
        return (1, [(name, _value_order(keys[name])) for name in sorted(keys)])
    if prefix == "v":
        return (2, _value_order(json.loads(rest)))
    return (3, int(rest))


def path_string(path: Path) -> str:
    """A path as kube-apiserver prints it in conflicts: ``.spec.ports[port=80,protocol="TCP"]``."""
    parts: list[str] = []
    for pe in path:
        prefix, rest = pe[0], pe[2:]
        if prefix == "f":
            parts.append("." + rest)
        elif prefix == "k":
            keys = json.loads(rest)
            parts.append("[" + ",".join(f"{k}={_go_json(keys[k])}" for k in sorted(keys)) + "]")
        elif prefix == "v":
            parts.append(f"[={rest}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)


# --------------------------------------------------------------------------- FieldsV1


def fields_to_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Encode a field set as ``FieldsV1``; ``"."`` marks a member that also has children."""
    members = set(paths)
    tree: dict[str, Any] = {}
    for path in members:
        node = tree
        for pe in path:
            node = node.setdefault(pe, {})
    return _render(tree, (), members)


def _render(children: dict[str, Any], path: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if path and path in members and children:
        out["."] = {}
    for pe in sorted(children, key=_pe_order):
        out[pe] = _render(children[pe], path + (pe,), members)
    return out


def fields_from_v1(tree: Any) -> PathSet:
    """Decode ``FieldsV1``; raises ``ValueError`` on malformed input."""
    out: PathSet = set()
    _parse_v1(tree, (), out)
    return out


def _parse_v1(tree: Any, path: Path, out: PathSet) -> None:
    if not isinstance(tree, dict):
        raise ValueError("FieldsV1 must be a JSON object")
    for key, sub in tree.items():
        if key == ".":
            if path:
                out.add(path)
            continue
        child = path + (_canonical_pe(key),)
        if sub == {}:
            out.add(child)
        else:
            _parse_v1(sub, child, out)


# --------------------------------------------------------------------------- typed walks


def _kind(schema: Schema | None, value: Any) -> str:
    """``map`` (granular), ``assoc`` (list-map or set), ``atomic`` or ``scalar``."""
    if isinstance(value, dict):
        return "atomic" if (schema or {}).get("x-kubernetes-map-type") == "atomic" else "map"
    if isinstance(value, list):
        list_type = (schema or {}).get("x-kubernetes-list-type")
        return "assoc" if list_type in ("map", "set") else "atomic"
    return "scalar"


def field_set(value: Any, schema: Schema | None) -> PathSet:
    """``ToFieldSet``: leaves, atomics, list items, empty maps and free map keys are members."""
    out: PathSet = set()
    _collect(value, schema, (), out)
    return out


def _collect(value: Any, schema: Schema | None, path: Path, out: PathSet) -> None:
    kind = _kind(schema, value)
    if kind in ("scalar", "atomic"):
        if path:
            out.add(path)
    elif kind == "map":
        for key, child in value.items():
            child_path = path + ("f:" + key,)
            _collect(child, field_schema(schema, key), child_path, out)
            if child is None or child == {} or not is_declared(schema, key):
                out.add(child_path)
    else:
        for index, item in enumerate(value):
            item_path = path + (_item_pe(schema, item, index),)
            _collect(item, items_schema(schema), item_path, out)
            out.add(item_path)


@dataclass
class _Diff:
    added: PathSet = field(default_factory=set)
    modified: PathSet = field(default_factory=set)
    removed: PathSet = field(default_factory=set)


def _compare(old: Any, new: Any, schema: Schema | None) -> _Diff:
    """``TypedValue.Compare``: changed leaves, plus containers that appeared or vanished."""
    diff = _Diff()
    _walk(old, new, schema, (), diff)
    return diff


def _is_empty(value: Any) -> bool:
    return value is _MISSING or value == {} or value == []


def _walk(old: Any, new: Any, schema: Schema | None, path: Path, diff: _Diff) -> None:
    kinds = {_kind(schema, v) for v in (old, new) if v is not _MISSING}
    if len(kinds) > 1:
        _walk(old, _MISSING, schema, path, diff)
        _walk(_MISSING, new, schema, path, diff)
        diff.added.discard(path)
        diff.removed.discard(path)
        diff.modified.add(path)
        return
    kind = kinds.pop()
    if kind in ("scalar", "atomic") or (_is_empty(old) and _is_empty(new)):
        _walk_leaf(old, new, path, diff)
        return
    if kind == "map":
        _walk_map(old, new, schema, path, diff)
    else:
        _walk_list(old, new, schema, path, diff)
    if old is _MISSING:
        diff.added.add(path)
    elif new is _MISSING:
        diff.removed.add(path)


def _walk_leaf(old: Any, new: Any, path: Path, diff: _Diff) -> None:
    if old is _MISSING:
        diff.added.add(path)
    elif new is _MISSING:
        diff.removed.add(path)
    elif not json_equal(old, new):
        diff.modified.add(path)


def _walk_map(old: Any, new: Any, schema: Schema | None, path: Path, diff: _Diff) -> None:
    before = old if isinstance(old, dict) else {}
    after = new if isinstance(new, dict) else {}
    for key in {**before, **after}:
        _walk(before.get(key, _MISSING), after.get(key, _MISSING), field_schema(schema, key),
              path + ("f:" + key,), diff)


def _index_items(value: Any, schema: Schema | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, item in enumerate(value if isinstance(value, list) else []):
        out.setdefault(_item_pe(schema, item, index), item)
    return out


def _walk_list(old: Any, new: Any, schema: Schema | None, path: Path, diff: _Diff) -> None:
    before, after = _index_items(old, schema), _index_items(new, schema)
    for pe in {**before, **after}:
        _walk(before.get(pe, _MISSING), after.get(pe, _MISSING), items_schema(schema),
              path + (pe,), diff)


# --------------------------------------------------------------------------- merge and prune


def _merge(live: Any, config: Any, schema: Schema | None) -> Any:
    """Merge an applied configuration into (a private copy of) the live value, in place.

    A ``null`` in the configuration removes the field; the applier still owns it.
    """
    kind = _kind(schema, config)
    if kind == "map":
        out = live if isinstance(live, dict) else {}
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(out.get(key, _MISSING), value, field_schema(schema, key))
        return out
    if kind == "assoc":
        return _merge_list(live if isinstance(live, list) else [], config, schema)
    return copy.deepcopy(config)


def _merge_list(live: list[Any], config: list[Any], schema: Schema | None) -> list[Any]:
    """structured-merge-diff's list merge: live order kept, applied items placed in config order."""
    item_schema = items_schema(schema)
    lpes = [_item_pe(schema, item, i) for i, item in enumerate(live)]
    rpes = [_item_pe(schema, item, i) for i, item in enumerate(config)]
    lmap, rmap = dict(zip(reversed(lpes), reversed(live), strict=True)), dict(zip(rpes, config,
                                                                                   strict=True))
    shared = deque(pe for pe in rpes if pe in lmap)  # popped from the left: O(1), not O(n)
    out: list[Any] = []
    done: set[str] = set()
    li = ri = 0

    def take(pe: str) -> None:
        done.add(pe)
        out.append(_merge(lmap.get(pe, _MISSING), rmap[pe], item_schema))
        if shared and shared[0] == pe:
            shared.popleft()

    while li < len(lpes) or ri < len(rpes):
        if li < len(lpes) and ri < len(rpes) and lpes[li] == rpes[ri]:
            take(rpes[ri])
            li, ri = li + 1, ri + 1
        elif li < len(lpes) and lpes[li] not in rmap:
            out.append(live[li])
            li += 1
        elif li < len(lpes) and (lpes[li] in done or (shared and shared[0] != lpes[li])):
            li += 1
        else:
            take(rpes[ri])
            ri += 1
    return out


def _ancestors(paths: Iterable[Path]) -> PathSet:
    return {path[:i] for path in paths for i in range(1, len(path) + 1)}


def _prune(merged: dict[str, Any], last: PathSet, owned: Iterable[PathSet],
           schema: Schema) -> None:
    """Remove what the applier applied last time, no longer applies and nobody else owns."""
    kept = _ancestors(set().union(*owned))
    removed: list[Path] = []
    for path in sorted(_ancestors(last) - kept, key=len):
        if any(path[:len(r)] == r for r in removed):
            continue
        _remove_path(merged, path, schema)
        removed.append(path)


def _child(value: Any, pe: str, schema: Schema | None) -> tuple[Any, Schema | None]:
    if pe.startswith("f:"):
        if isinstance(value, dict):
            return value.get(pe[2:], _MISSING), field_schema(schema, pe[2:])
        return _MISSING, None
    for index, item in enumerate(value if isinstance(value, list) else []):
        if _item_pe(schema, item, index) == pe:
            return item, items_schema(schema)
    return _MISSING, None


def _remove_path(obj: Any, path: Path, schema: Schema | None) -> None:
    parent, parent_schema = obj, schema
    for pe in path[:-1]:
        parent, parent_schema = _child(parent, pe, parent_schema)
        if parent is _MISSING:
            return
    last = path[-1]
    if last.startswith("f:"):
        if isinstance(parent, dict):
            parent.pop(last[2:], None)
    elif isinstance(parent, list):
        parent[:] = [item for i, item in enumerate(parent)
                     if _item_pe(parent_schema, item, i) != last]


# --------------------------------------------------------------------------- managers


@dataclass
class _Entry:
    """One ``managedFields`` entry, identified by manager, operation, subresource (and the
    apiVersion for updates), exactly like kube-apiserver's manager identifier."""

    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str | None
    fields: PathSet

    @property
    def ident(self) -> tuple[str, str, str, str]:
        version = self.api_version if self.operation == UPDATE else ""
        return (self.manager, self.operation, version, self.subresource)

    def label(self) -> str:
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                               "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = fields_to_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


Managers = dict[tuple[str, str, str, str], _Entry]


def _epoch(time: str | None) -> int:
    try:
        return int(datetime.fromisoformat(str(time).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _decode_entry(raw: Any) -> _Entry | None:
    if not isinstance(raw, dict) or raw.get("operation") not in (APPLY, UPDATE):
        return None
    if raw.get("fieldsType", "FieldsV1") != "FieldsV1":
        return None
    try:
        fields = fields_from_v1(raw.get("fieldsV1") or {})
    except (ValueError, TypeError):
        return None
    time = raw.get("time")
    return _Entry(str(raw.get("manager") or ""), raw["operation"], str(raw.get("apiVersion") or ""),
                  str(raw.get("subresource") or ""), time if isinstance(time, str) else None,
                  fields)


def _decode(raw: Any) -> Managers:
    """Entries of a ``managedFields`` list; malformed entries are dropped, duplicates merged."""
    out: Managers = {}
    for item in raw if isinstance(raw, list) else []:
        entry = _decode_entry(item)
        if entry is None:
            continue
        previous = out.get(entry.ident)
        if previous is None:
            out[entry.ident] = entry
        else:
            previous.fields |= entry.fields
            if _epoch(entry.time) > _epoch(previous.time):
                previous.time = entry.time
    return out


def _raw_managed(obj: dict[str, Any] | None) -> Any:
    meta = (obj or {}).get("metadata")
    return meta.get("managedFields") if isinstance(meta, dict) else None


def _without_managed_fields(obj: dict[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(obj) if obj else {}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return out


def _strip(paths: PathSet) -> PathSet:
    managed = ("f:metadata", "f:managedFields")
    return {p for p in paths if p and p not in _STRIPPED and p[:2] != managed}


def _drop_empty(managers: Managers) -> None:
    for ident in [i for i, e in managers.items() if not e.fields]:
        del managers[ident]


def _cap_updaters(managers: Managers) -> None:
    """Fold the oldest ``Update`` entries into ``ancient-changes`` beyond ten of them."""
    updaters = sorted((e for e in managers.values() if e.operation == UPDATE),
                      key=lambda e: (_epoch(e.time), e.ident))
    excess = len(updaters) - MAX_UPDATE_MANAGERS
    first_by_version: dict[str, _Entry] = {}
    for entry in updaters:
        if excess <= 0:
            break
        first = first_by_version.setdefault(entry.api_version, entry)
        if first is entry:
            continue
        bucket_ident = (ANCIENT_CHANGES, UPDATE, entry.api_version, "")
        bucket = managers.get(bucket_ident)
        if bucket is None:
            del managers[first.ident]
            bucket = _Entry(ANCIENT_CHANGES, UPDATE, entry.api_version, "", first.time,
                            set(first.fields))
            managers[bucket_ident] = bucket
        bucket.fields |= entry.fields
        bucket.time = entry.time
        managers.pop(entry.ident, None)
        excess -= 1


def _encode(obj: dict[str, Any], managers: Managers) -> None:
    """Write the entries sorted like kube-apiserver: Apply first, then by time and name."""
    entries = sorted(managers.values(), key=lambda e: (e.operation, _epoch(e.time), e.manager,
                                                       e.api_version, e.subresource))
    meta = obj.get("metadata")
    if entries:
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        meta["managedFields"] = [e.to_json() for e in entries]
    elif isinstance(meta, dict):
        meta.pop("managedFields", None)


# --------------------------------------------------------------------------- updates


def _managers_for_update(old: dict[str, Any] | None, new: dict[str, Any],
                         subresource: str) -> Managers:
    """kube-apiserver's ``decodeLiveOrNew``: the request may reset (``[]``/``[{}]``) or replace
    managedFields, except on subresources; if it sends none the live ones are kept."""
    if not subresource:
        raw = _raw_managed(new)
        if raw == [] or raw == [{}]:
            return {}
        decoded = _decode(raw)
        if decoded:
            return decoded
    return _decode(_raw_managed(old))


def _record_update(managers: Managers, diff: _Diff, entry: _Entry) -> None:
    changed = _strip(diff.added | diff.modified)
    for other in managers.values():
        other.fields -= changed | diff.removed
    if changed:
        previous = managers.get(entry.ident)
        entry.fields = changed | (previous.fields if previous else set())
        managers[entry.ident] = entry
    _drop_empty(managers)


def update_managed_fields(old: dict[str, Any] | None, new: dict[str, Any], manager: str,
                          now: str, subresource: str = "",
                          schema: Schema | None = None) -> dict[str, Any]:
    """``new`` with managedFields after a create/update/patch by ``manager`` (an ``Update``).

    The manager gains the fields it added or changed (on create: all it set), other managers
    lose them and everything removed. ``schema`` tells list-maps and sets apart; without it
    lists are atomic except ObjectMeta's.
    """
    root = resource_schema(schema)
    managers = _managers_for_update(old, new, subresource)
    result = _without_managed_fields(new)
    diff = _compare(_without_managed_fields(old), result, root)
    api_version = str(result.get("apiVersion") or "")
    _record_update(managers, diff, _Entry(manager, UPDATE, api_version, subresource, now, set()))
    _cap_updaters(managers)
    _encode(result, managers)
    return result


# --------------------------------------------------------------------------- apply


class _Conflicts(Exception):
    def __init__(self, items: list[tuple[_Entry, Path]]) -> None:
        super().__init__("apply conflicts")
        self.items = items


def _conflict_error(items: list[tuple[_Entry, Path]]) -> ApiError:
    items = sorted(items, key=lambda c: (c[0].label(), [_pe_order(pe) for pe in c[1]]))
    causes = [Cause(field=path_string(p), message=f"conflict with {e.label()}",
                    reason="FieldManagerConflict") for e, p in items]
    if len(items) == 1:
        entry, path = items[0]
        message = (f"Apply failed with 1 conflict: conflict with {entry.label()}: "
                   f"{path_string(path)}")
    else:
        lines: list[str] = []
        for label in sorted({e.label() for e, _ in items}):
            lines.append(f"conflicts with {label}:")
            lines.extend(f"- {path_string(p)}" for e, p in items if e.label() == label)
        message = f"Apply failed with {len(items)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, causes=causes)


def _apply_config(applied: dict[str, Any], subresource: str) -> dict[str, Any]:
    """The part of the applied object that is applied: no server metadata, status only via
    the status subresource and nothing else there."""
    config = copy.deepcopy(applied)
    meta = config.get("metadata")
    if isinstance(meta, dict):
        for key in _SERVER_META:
            meta.pop(key, None)
    if subresource == "status":
        kept: dict[str, Any] = {k: config[k] for k in ("apiVersion", "kind", "status")
                                if k in config}
        if isinstance(meta, dict):
            kept["metadata"] = {k: meta[k] for k in ("name", "namespace") if k in meta}
        return kept
    if not subresource:
        config.pop("status", None)
    return config


def _managers_for_apply(live: dict[str, Any] | None, base: dict[str, Any],
                        schema: Schema, now: str) -> Managers:
    """Live entries; an object nobody manages yet is first owned by ``before-first-apply``."""
    if live is None:
        return {}
    managers = _decode(_raw_managed(live))
    if not managers:
        diff = _compare({}, base, schema)
        entry = _Entry(BEFORE_FIRST_APPLY, UPDATE, str(base.get("apiVersion") or ""), "", now,
                       set())
        _record_update(managers, diff, entry)
    return managers


def _apply(base: dict[str, Any], config: dict[str, Any], entry: _Entry, managers: Managers,
           force: bool, schema: Schema) -> dict[str, Any]:
    """structured-merge-diff's ``Updater.Apply``: merge, prune, detect conflicts, re-own."""
    merged = _merge(copy.deepcopy(base), config, schema)
    entry.fields = field_set(config, schema)
    previous = managers.pop(entry.ident, None)
    others = list(managers.values())
    if previous is not None:
        _prune(merged, previous.fields, [entry.fields, *(o.fields for o in others)], schema)
    diff = _compare(base, merged, schema)
    changed = diff.added | diff.modified
    conflicts = [(o, p) for o in others for p in o.fields & changed]
    if conflicts and not force:
        raise _Conflicts(conflicts)
    for other in others:
        other.fields -= changed | diff.removed
    entry.fields = _strip(entry.fields)
    if previous is not None and previous.time and json_equal(base, merged):
        entry.time = previous.time  # a no-op apply leaves the timestamp alone
    managers[entry.ident] = entry
    _drop_empty(managers)
    _encode(merged, managers)
    return merged


def _allowed_by_last_applied(base: dict[str, Any], schema: Schema) -> PathSet:
    """Fields client-side apply set and nobody changed since: kubectl may take them over."""
    annotations = (base.get("metadata") or {}).get("annotations") or {}
    try:
        last = json.loads(annotations.get(LAST_APPLIED) or "null")
    except ValueError:
        return set()
    if not isinstance(last, dict):
        return set()
    diff = _compare(last, base, schema)
    return field_set(last, schema) - diff.modified - diff.removed


def _sync_last_applied(result: dict[str, Any], applied: dict[str, Any], manager: str) -> None:
    """kubectl's server-side apply keeps an existing last-applied annotation current."""
    annotations = (result.get("metadata") or {}).get("annotations")
    if manager != "kubectl" or not isinstance(annotations, dict) or LAST_APPLIED not in annotations:
        return
    doc = copy.deepcopy(applied)
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        if isinstance(meta.get("annotations"), dict):
            meta["annotations"].pop(LAST_APPLIED, None)
    annotations[LAST_APPLIED] = _go_json(doc) + "\n"


def server_side_apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str,
                      force: bool, schema: Schema, now: str,
                      subresource: str = "") -> dict[str, Any]:
    """Apply ``applied`` as ``manager`` to ``live`` (``None`` = create); the new object.

    Raises a 409 ``Conflict`` listing every field another manager owns with a different value,
    unless ``force``. kubectl (manager ``kubectl``) may take over fields its client-side apply
    set, as kube-apiserver allows for the upgrade from client-side apply.
    """
    if not isinstance(applied, dict):
        raise bad_request("the applied configuration must be a JSON object")
    check_types(applied, schema)
    root = resource_schema(schema)
    config = _apply_config(applied, subresource)
    base = _without_managed_fields(live)
    api_version = str(config.get("apiVersion") or base.get("apiVersion") or "")

    def attempt(forced: bool) -> dict[str, Any]:
        entry = _Entry(manager, APPLY, api_version, subresource, now, set())
        return _apply(base, config, entry, _managers_for_apply(live, base, root, now), forced,
                      root)

    try:
        result = attempt(force)
    except _Conflicts as exc:
        allowed = _allowed_by_last_applied(base, root) if manager == "kubectl" else set()
        remaining = [(e, p) for e, p in exc.items if p not in allowed]
        if remaining:
            raise _conflict_error(remaining) from None
        result = attempt(True)
    _sync_last_applied(result, applied, manager)
    return result
