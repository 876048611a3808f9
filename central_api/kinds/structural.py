"""OpenAPI v3 structural schemas: pruning, defaulting and validation for every kind.

Custom resources are only as trustworthy as apiextensions-apiserver makes them: unknown fields
are pruned, ``default``s applied, the schema (plus ``x-kubernetes-list-type`` invariants and CEL
``x-kubernetes-validations``) enforced, and failures reported as ``field.Error``s that kubectl
prints verbatim. Built-in kinds are described with the same schemas so that one code path
serves all writes. Because this runs on every write, a schema is compiled once into a tree of
``_Node``s plus a ``jsonschema`` validator and CEL programs are cached per rule text.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

import celpy
import jsonschema
import jsonschema_rs
from celpy import celtypes
from jsonschema.exceptions import ValidationError

from central_api.machinery.errors import Cause

from .objectmeta import OBJECT_META_SCHEMA

__all__ = [
    "CompiledSchema",
    "apply_defaults",
    "check_structural",
    "compile_cel_rules",
    "json_key",
    "prune",
    "unknown_field_message",
    "validate",
]

Schema = Mapping[str, Any]
_ROOT_META = ("apiVersion", "kind", "metadata")
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_EMBEDDED = "x-kubernetes-embedded-resource"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_RULES = "x-kubernetes-validations"

# ---------------------------------------------------------------------------------------------
# Paths and value rendering (k8s.io/apimachinery/pkg/util/validation/field)
# ---------------------------------------------------------------------------------------------


def _child(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _path_of(parts: Iterable[str | int]) -> str:
    path = ""
    for part in parts:
        path = _child(path, part)
    return path


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _go_number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _go_value(value: Any) -> str:
    """How ``field.Error`` prints a bad value (JSON for lists/maps instead of Go's ``%#v``)."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_number(value)
    if isinstance(value, str):
        return _quote(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _invalid(path: str, value: Any, detail: str, reason: str = "FieldValueInvalid") -> Cause:
    return Cause(path, f"Invalid value: {_go_value(value)}: {detail}", reason)


def _required(path: str, detail: str = "") -> Cause:
    return Cause(path, "Required value" + (f": {detail}" if detail else ""), "FieldValueRequired")


def _forbidden(path: str, detail: str) -> Cause:
    return Cause(path, f"Forbidden: {detail}", "FieldValueForbidden")


def unknown_field_message(path: str) -> str:
    """``unknown field "spec.foo"`` for a path returned by :func:`prune` (``.spec.foo``)."""
    return f'unknown field "{path.lstrip(".")}"'


# ---------------------------------------------------------------------------------------------
# Formats (the k8s strfmt registry subset that matters) and the jsonschema validator class
# ---------------------------------------------------------------------------------------------

_FORMATS = jsonschema.FormatChecker(formats=())
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ](?P<h>\d{2}):(?P<m>\d{2})(:(?P<s>\d{2})(\.\d+)?)?"
    r"([Zz]|[+-](?P<oh>\d{2}):?(?P<om>\d{2}))?")
_DURATION_RE = re.compile(r"[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+|0")
_HOSTNAME_RE = re.compile(
    r"(?=.{1,255}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}"
    r"[A-Za-z0-9])?)*\.?")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+")
_MAC_RE = re.compile(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}")


def _string_format(*names: str) -> Callable[[Callable[[str], bool]], Callable[[Any], bool]]:
    """Register a string-only format check; non-strings pass (``type`` reports those)."""
    def register(check: Callable[[str], bool]) -> Callable[[Any], bool]:
        def checker(value: Any) -> bool:
            if not isinstance(value, str):
                return True
            try:
                return check(value)
            except ValueError:
                return False
        for name in names:
            _FORMATS.checks(name)(checker)
        return checker
    return register


@_string_format("date-time", "datetime")
def _is_datetime(value: str) -> bool:
    match = _DATETIME_RE.fullmatch(value)
    if not match:
        return False
    datetime.fromisoformat(value[:10])  # range-checks the date part
    limits = {"h": 23, "m": 59, "s": 60, "oh": 23, "om": 59}  # 60: a leap second
    return all(int(match[part] or 0) <= top for part, top in limits.items())


@_string_format("date")
def _is_date(value: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and bool(date.fromisoformat(value))


@_string_format("byte")
def _is_byte(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        return False
    return True


@_string_format("uuid", "uuid3", "uuid4", "uuid5")
def _is_uuid(value: str) -> bool:
    return len(value) == 36 and bool(uuid.UUID(value))


@_string_format("ipv4")
def _is_ipv4(value: str) -> bool:
    return bool(ipaddress.IPv4Address(value))


@_string_format("ipv6")
def _is_ipv6(value: str) -> bool:
    return bool(ipaddress.IPv6Address(value))


@_string_format("cidr")
def _is_cidr(value: str) -> bool:
    return "/" in value and bool(ipaddress.ip_network(value, strict=False))


_string_format("duration")(lambda v: bool(_DURATION_RE.fullmatch(v)))
_string_format("hostname")(lambda v: bool(_HOSTNAME_RE.fullmatch(v)))
_string_format("email")(lambda v: bool(_EMAIL_RE.fullmatch(v)))
_string_format("mac")(lambda v: bool(_MAC_RE.fullmatch(v)))


def _int_range(bits: int) -> Callable[[Any], bool]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def checker(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return True
        # math.isfinite cannot convert an int beyond a float's range; an int is finite anyway
        return (isinstance(value, int) or math.isfinite(value)) and low <= value <= high
    return checker


_FORMATS.checks("int32")(_int_range(32))
_FORMATS.checks("int64")(_int_range(64))


def _is_integer(_checker: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(_checker: Any, value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _nullable_guard(check: Callable[..., Any]) -> Callable[..., Iterator[ValidationError]]:
    """OpenAPI ``nullable``: a null value satisfies every keyword of a nullable schema."""
    def guarded(validator: Any, value: Any, instance: Any, schema: Schema
                ) -> Iterator[ValidationError]:
        if instance is None and schema.get("nullable") is True:
            return
        yield from check(validator, value, instance, schema) or ()
    return guarded


def _required_keyword(_v: Any, required: Any, instance: Any, _s: Schema
                      ) -> Iterator[ValidationError]:
    """Like draft 4 ``required`` but each error points at the missing property itself."""
    if isinstance(instance, dict):
        for name in required:
            if name not in instance:
                yield ValidationError(f"{name!r} is a required property", path=[name])


def _int_or_string_keyword(_v: Any, enabled: Any, instance: Any, _s: Schema
                           ) -> Iterator[ValidationError]:
    if enabled is True and not (isinstance(instance, str) or _is_integer(None, instance)):
        yield ValidationError("must be integer or string")


_KEYWORDS = {k: _nullable_guard(v) for k, v in jsonschema.Draft4Validator.VALIDATORS.items()}
_KEYWORDS["required"] = _nullable_guard(_required_keyword)
_KEYWORDS[_INT_OR_STRING] = _nullable_guard(_int_or_string_keyword)
_OpenAPIValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    validators=_KEYWORDS,
    type_checker=jsonschema.Draft4Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_number}),
)

# ---------------------------------------------------------------------------------------------
# jsonschema errors -> kube-apiserver field errors
# ---------------------------------------------------------------------------------------------


def _in_body(path: str) -> str:
    return f"{path} in body"


def _type_cause(path: str, expected: str, actual: str) -> Cause:
    detail = f"{_in_body(path)} must be of type {expected}: {_quote(actual)}"
    return _invalid(path, actual, detail, "FieldValueTypeInvalid")


def _enum_cause(path: str, err: ValidationError) -> Cause:
    allowed = ", ".join(
        _quote(v if isinstance(v, str) else json.dumps(v)) for v in err.validator_value)
    return Cause(path, f"Unsupported value: {_go_value(err.instance)}: supported values: "
                       f"{allowed}", "FieldValueNotSupported")


def _bound_detail(err: ValidationError) -> str:
    limit = _go_number(err.validator_value)
    exclusive = err.schema.get("exclusive" + err.validator.capitalize()) is True
    if err.validator == "maximum":
        return f"should be less than {limit}" if exclusive else \
            f"should be less than or equal to {limit}"
    return f"should be greater than {limit}" if exclusive else \
        f"should be greater than or equal to {limit}"


def _size_detail(keyword: str, limit: Any) -> str:
    return {
        "minLength": f"should be at least {limit} chars long",
        "minItems": f"should have at least {limit} items",
        "minProperties": f"should have at least {limit} properties",
        "pattern": f"should match '{limit}'",
        "multipleOf": f"should be a multiple of {_go_number(limit)}",
        "uniqueItems": "shouldn't contain duplicates",
        "anyOf": "must validate at least one schema (anyOf)",
        "oneOf": "must validate one and only one schema (oneOf)",
        "not": "must not validate the schema (not)",
    }.get(keyword, "")


def _too_many(path: str, actual: int, limit: int, noun: str) -> Cause:
    unit = noun if limit == 1 else noun + "s"
    return Cause(path, f"Too many: {actual}: must have at most {limit} {unit}",
                 "FieldValueTooMany")


def _error_cause(err: ValidationError) -> Cause:
    path, keyword, value = _path_of(err.absolute_path), str(err.validator), err.instance
    if keyword == "required":
        return _required(path)
    if keyword == "type":
        expected = err.validator_value
        shown = ",".join(expected) if isinstance(expected, list) else str(expected)
        return _type_cause(path, shown, _json_type(value))
    if keyword == _INT_OR_STRING:
        return _type_cause(path, "integer,string", _json_type(value))
    if keyword == "format":
        detail = f"{_in_body(path)} must be of type {err.validator_value}: {_quote(str(value))}"
        return _invalid(path, value, detail, "FieldValueTypeInvalid")
    if keyword == "enum":
        return _enum_cause(path, err)
    if keyword == "maxLength":
        limit = err.validator_value
        return Cause(path, f"Too long: may not be more than {limit} byte"
                           f"{'' if limit == 1 else 's'}", "FieldValueTooLong")
    if keyword == "maxItems":
        return _too_many(path, len(value), err.validator_value, "item")
    if keyword == "maxProperties":
        return _too_many(path, len(value), err.validator_value, "item")
    if keyword in ("maximum", "minimum"):
        return _invalid(path, value, f"{_in_body(path)} {_bound_detail(err)}")
    if keyword in ("minItems", "minProperties"):
        return _invalid(path, len(value), f"{_in_body(path)} "
                                          f"{_size_detail(keyword, err.validator_value)}")
    detail = _size_detail(keyword, err.validator_value) or err.message
    return _invalid(path, value, f"{_in_body(path)} {detail}")


# ---------------------------------------------------------------------------------------------
# CEL (x-kubernetes-validations)
# ---------------------------------------------------------------------------------------------

_CEL_ENV = celpy.Environment()
_CEL_LOCK = threading.Lock()


def _cel_str(value: Any) -> celtypes.StringType:
    return celtypes.StringType(value)


def _cel_split(text: Any, sep: Any, limit: Any = -1) -> celtypes.ListType:
    parts = str(text).split(str(sep)) if int(limit) < 0 else \
        str(text).split(str(sep), max(int(limit) - 1, 0))
    return celtypes.ListType([_cel_str(p) for p in parts] if int(limit) != 0 else [])


def _cel_substring(text: Any, start: Any, end: Any = None) -> celtypes.StringType:
    return _cel_str(str(text)[int(start):None if end is None else int(end)])


def _cel_replace(text: Any, old: Any, new: Any, limit: Any = -1) -> celtypes.StringType:
    return _cel_str(str(text).replace(str(old), str(new), int(limit)))


def _cel_is_sorted(items: Any) -> celtypes.BoolType:
    values = list(items)
    return celtypes.BoolType(all(a <= b for a, b in zip(values, values[1:], strict=False)))


# A subset of the Kubernetes CEL libraries (strings, lists) on top of cel-python's built-ins.
_CEL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lowerAscii": lambda s: _cel_str(str(s).lower()),
    "upperAscii": lambda s: _cel_str(str(s).upper()),
    "trim": lambda s: _cel_str(str(s).strip()),
    "charAt": lambda s, i: _cel_str(str(s)[int(i):int(i) + 1]),
    "indexOf": lambda s, sub: celtypes.IntType(
        list(s).index(sub) if sub in list(s) else -1) if isinstance(s, list)
    else celtypes.IntType(str(s).find(str(sub))),
    "lastIndexOf": lambda s, sub: celtypes.IntType(str(s).rfind(str(sub))),
    "split": _cel_split,
    "substring": _cel_substring,
    "replace": _cel_replace,
    "join": lambda items, sep="": _cel_str(str(sep).join(str(i) for i in items)),
    "isSorted": _cel_is_sorted,
    "sum": lambda items: functools.reduce(lambda a, b: a + b, list(items), celtypes.IntType(0)),
}


def _syntax_error(text: str, line: int | None, column: int | None) -> str:
    """cel-go's wording: ``ERROR: <input>:1:8: Syntax error`` plus the caret display."""
    if not line or not column:
        return "ERROR: <input>: Syntax error"
    source = text.splitlines()[line - 1] if text.splitlines() else ""
    return (f"ERROR: <input>:{line}:{column}: Syntax error\n | {source}\n | "
            f"{'.' * (column - 1)}^")


class _Program:
    """A compiled CEL expression (or the reason it does not compile)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.error = ""
        self.uses_old_self = False
        self.runner: Any = None
        try:
            with _CEL_LOCK:
                ast = _CEL_ENV.compile(text)
                self.runner = _CEL_ENV.program(ast, functions=_CEL_FUNCTIONS)
        except celpy.CELParseError as exc:
            self.error = _syntax_error(text, exc.line, exc.column)
            return
        except Exception as exc:  # noqa: BLE001 - cel-python raises assorted parse errors
            self.error = str(exc).strip() or type(exc).__name__
            return
        self.uses_old_self = any(
            tree.data == "ident" and any(getattr(t, "value", None) == "oldSelf"
                                         for t in tree.children)
            for tree in ast.iter_subtrees())

    def run(self, activation: dict[str, Any]) -> Any:
        """Evaluate; returns the CEL value or raises ``celpy.CELEvalError``."""
        result = self.runner.evaluate(activation)
        if isinstance(result, celpy.CELEvalError):
            raise result
        return result


@functools.lru_cache(maxsize=4096)
def _program(text: str) -> _Program:
    return _Program(text)


class _Rule:
    """One ``x-kubernetes-validations`` entry."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.rule = str(spec.get("rule", ""))
        self.message = str(spec.get("message") or "").strip()
        self.reason = spec.get("reason")
        self.field_path = _normalize_field_path(str(spec.get("fieldPath") or ""))
        self.program = _program(self.rule)
        expression = spec.get("messageExpression")
        self.message_program = _program(str(expression)) if expression else None

    @property
    def default_message(self) -> str:
        return self.message or f"failed rule: {self.rule.strip()}"


def _normalize_field_path(field_path: str) -> str:
    return re.sub(r"\[['\"]([^'\"]*)['\"]\]", r".\1", field_path).lstrip(".")


def _eval_error_message(exc: Exception, rule: _Rule) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    label = rule.message or rule.rule.strip()
    if "no matching overload" in text or "no such overload" in text:
        return (f"'{text}': call arguments did not match a supported operator, function or "
                f"macro signature for rule: {label}")
    return f"{text} evaluating rule: {label}"


# ---------------------------------------------------------------------------------------------
# Compiled schema tree
# ---------------------------------------------------------------------------------------------

_NO_DEFAULT = object()


class _Node:
    """The structural part of one schema node, pre-digested for fast walking."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.type: str = str(schema.get("type") or "")
        self.properties = {k: _Node(v) for k, v in (schema.get("properties") or {}).items()
                           if isinstance(v, Mapping)}
        extra = schema.get("additionalProperties")
        self.additional: _Node | None = _Node(extra) if isinstance(extra, Mapping) else None
        self.additional_any = extra is True
        items = schema.get("items")
        self.items: _Node | None = _Node(items) if isinstance(items, Mapping) else None
        self.preserve = schema.get(_PRESERVE) is True
        self.embedded = schema.get(_EMBEDDED) is True
        self.nullable = schema.get("nullable") is True
        self.int_or_string = schema.get(_INT_OR_STRING) is True
        self.default = schema.get("default", _NO_DEFAULT)
        self.list_type = str(schema.get("x-kubernetes-list-type") or "")
        self.map_keys = [str(k) for k in schema.get("x-kubernetes-list-map-keys") or ()]
        required = schema.get("required")
        self.required = frozenset(required if isinstance(required, list) else ())
        self.rules = [_Rule(r) for r in schema.get(_RULES) or () if isinstance(r, Mapping)]
        children: list[_Node | None] = [*self.properties.values(), self.additional, self.items]
        self.needs_walk: bool = bool(self.rules or self.list_type in ("set", "map") or self.embedded
                               or any(c is not None and c.needs_walk for c in children))

    def child(self, key: str) -> _Node | None:
        """The schema of property ``key`` (declared or via additionalProperties)."""
        return self.properties.get(key) or self.additional


# -- pruning ------------------------------------------------------------------------------------


def _prune(value: Any, node: _Node | None, path: str, root: bool, out: list[str]) -> None:
    if node is not None and node.preserve:
        _skip_prune(value, node, path, out)
    elif isinstance(value, dict):
        _prune_map(value, node, path, root, out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _prune(item, node.items if node else None, _child(path, i), False, out)


def _prune_map(value: dict[str, Any], node: _Node | None, path: str, root: bool,
               out: list[str]) -> None:
    for key in list(value):
        if (root or (node is not None and node.embedded)) and key in _ROOT_META:
            continue
        child = node.properties.get(key) if node else None
        if child is None and node is not None and node.additional is not None:
            child = node.additional
        if child is not None or (node is not None and node.additional_any):
            _prune(value[key], child, _child(path, key), False, out)
        else:
            out.append("." + _child(path, key))
            del value[key]


def _skip_prune(value: Any, node: _Node, path: str, out: list[str]) -> None:
    """Inside preserve-unknown-fields, unknown keys stay but declared ones are still pruned."""
    if isinstance(value, dict):
        for key, item in value.items():
            if node.embedded and key in _ROOT_META:
                continue
            child = node.properties.get(key) or node.additional
            if child is not None:
                _prune(item, child, _child(path, key), False, out)
    elif isinstance(value, list) and node.items is not None:
        for i, item in enumerate(value):
            _skip_prune(item, node.items, _child(path, i), out)


# -- defaulting -----------------------------------------------------------------------------------


def _default(value: Any, node: _Node | None) -> None:
    if node is None:
        return
    if isinstance(value, dict):
        for key, prop in node.properties.items():
            if prop.default is _NO_DEFAULT:
                continue
            if key not in value or (value[key] is None and not prop.nullable):
                value[key] = json.loads(json.dumps(prop.default))
        for key, item in value.items():
            _default(item, node.properties.get(key) or node.additional)
    elif isinstance(value, list):
        for item in value:
            _default(item, node.items)


# -- list types, embedded resources and CEL -------------------------------------------------------


def json_key(value: Any) -> Any:
    """A hashable stand-in for a JSON value: equal exactly for JSON-equal values (``1`` and
    ``1.0`` are, ``1`` and ``true`` are not), so that duplicates in a list of n items are
    found in n steps rather than n²."""
    if isinstance(value, bool):
        return ("bool", value)  # Python's True == 1
    if isinstance(value, dict):
        return ("map", frozenset((k, json_key(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(json_key(v) for v in value))
    return value  # strings, numbers and null compare as JSON compares them


def _set_causes(items: list[Any], path: str) -> list[Cause]:
    seen: set[Any] = set()
    causes: list[Cause] = []
    for i, item in enumerate(items):
        key = json_key(item)
        if key in seen:
            causes.append(Cause(_child(path, i), f"Duplicate value: {_go_value(item)}",
                                "FieldValueDuplicate"))
        seen.add(key)
    return causes


def _map_key(item: Any, keys: list[str]) -> tuple[Any, ...] | None:
    if not isinstance(item, dict) or any(k not in item for k in keys):
        return None
    return tuple(json.dumps(item[k], sort_keys=True) for k in keys)


def _map_causes(items: list[Any], keys: list[str], path: str) -> list[Cause]:
    seen: set[tuple[Any, ...]] = set()
    causes: list[Cause] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        causes.extend(_required(_child(_child(path, i), k)) for k in keys if k not in item)
        key = _map_key(item, keys)
        if key is None:
            continue
        if key in seen:
            shown = _go_value({k: item[k] for k in keys})
            causes.append(Cause(_child(path, i), f"Duplicate value: {shown}",
                                "FieldValueDuplicate"))
        seen.add(key)
    return causes


def _embedded_causes(value: dict[str, Any], path: str) -> list[Cause]:
    return [_required(_child(path, k), "must not be empty")
            for k in ("apiVersion", "kind") if not value.get(k)]


def _old_items(node: _Node, old: Any) -> Callable[[int, Any], Any]:
    """Correlate list items with the old object: only map lists are correlatable."""
    if node.list_type != "map" or not isinstance(old, list) or not node.map_keys:
        return lambda _i, _item: None
    by_key = {_map_key(o, node.map_keys): o for o in old}
    by_key.pop(None, None)
    return lambda _i, item: by_key.get(_map_key(item, node.map_keys))


class _Walker:
    """Walks object, old object and schema together for list-type and CEL checks."""

    def __init__(self, has_old: bool, run_rules: bool = True) -> None:
        self.has_old = has_old
        self.run_rules_enabled = run_rules
        self.causes: list[Cause] = []

    def walk(self, value: Any, old: Any, node: _Node, path: str, root: bool = False) -> None:
        if not node.needs_walk or value is None:
            return
        if node.embedded and isinstance(value, dict):
            self.causes.extend(_embedded_causes(value, path))
        if isinstance(value, dict):
            self.walk_map(value, old, node, path)
        elif isinstance(value, list):
            self.walk_list(value, old, node, path)
        if node.rules and self.run_rules_enabled:
            self.run_rules(value, old, node, path, root)

    def walk_map(self, value: dict[str, Any], old: Any, node: _Node, path: str) -> None:
        old_map = old if isinstance(old, dict) else {}
        for key, item in value.items():
            child = node.properties.get(key) or node.additional
            if child is not None:
                self.walk(item, old_map.get(key), child, _child(path, key))

    def walk_list(self, value: list[Any], old: Any, node: _Node, path: str) -> None:
        if node.list_type == "set":
            self.causes.extend(_set_causes(value, path))
        elif node.list_type == "map":
            self.causes.extend(_map_causes(value, node.map_keys, path))
        if node.items is None:
            return
        correlate = _old_items(node, old)
        for i, item in enumerate(value):
            self.walk(item, correlate(i, item), node.items, _child(path, i))

    def run_rules(self, value: Any, old: Any, node: _Node, path: str, root: bool) -> None:
        activation = {"self": _to_cel(_root_view(value) if root else value, node)}
        correlated = self.has_old and old is not None
        if correlated:
            activation["oldSelf"] = _to_cel(_root_view(old) if root else old, node)
        for rule in node.rules:
            if rule.program.uses_old_self and not correlated:
                continue
            cause = _rule_cause(rule, activation, node, path)
            if cause is not None:
                self.causes.append(cause)


def _root_view(value: Any) -> Any:
    """At the resource root CEL sees only metadata.name and metadata.generateName."""
    if not isinstance(value, dict) or not isinstance(value.get("metadata"), dict):
        return value
    meta = {k: v for k, v in value["metadata"].items() if k in ("name", "generateName")}
    return {**value, "metadata": meta}


def _rule_cause(rule: _Rule, activation: dict[str, Any], node: _Node, path: str
                ) -> Cause | None:
    if rule.program.error:
        return _invalid(path, node.type, f"compilation failed: {rule.program.error}")
    try:
        result = rule.program.run(activation)
    except Exception as exc:  # noqa: BLE001 - CEL runtime errors surface as field errors
        return _invalid(path, node.type, _eval_error_message(exc, rule))
    if isinstance(result, celtypes.BoolType) and bool(result):
        return None
    target = _child(path, rule.field_path) if rule.field_path else path
    return _reason_cause(rule.reason, target, node.type, _failure_message(rule, activation))


def _failure_message(rule: _Rule, activation: dict[str, Any]) -> str:
    if rule.message_program is None or rule.message_program.error:
        return rule.default_message
    try:
        text = rule.message_program.run(activation)
    except Exception:  # noqa: BLE001 - kube falls back to the static message
        return rule.default_message
    if not isinstance(text, str) or not text.strip() or "\n" in text:
        return rule.default_message
    return str(text)


def _reason_cause(reason: Any, path: str, type_name: str, detail: str) -> Cause:
    if reason == "FieldValueForbidden":
        return _forbidden(path, detail)
    if reason == "FieldValueRequired":
        return _required(path, detail)
    if reason == "FieldValueDuplicate":
        return Cause(path, f"Duplicate value: {_go_value(type_name)}", "FieldValueDuplicate")
    return _invalid(path, type_name, detail)


def _cel_scalar(value: Any, node: _Node | None) -> Any:
    fmt = str(node.schema.get("format") or "") if node else ""
    kind = node.type if node else ""
    try:
        if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return celtypes.DoubleType(float(value))
        if kind == "string" and isinstance(value, str) and fmt in ("date-time", "datetime"):
            return celtypes.TimestampType(value)
        if kind == "string" and isinstance(value, str) and fmt == "duration":
            return celtypes.DurationType(value)
        if kind == "string" and isinstance(value, str) and fmt == "byte":
            return celtypes.BytesType(base64.b64decode(value))
    except (ValueError, TypeError, binascii.Error):
        pass
    return celpy.json_to_cel(value)


def _to_cel(value: Any, node: _Node | None) -> Any:
    """Convert JSON to CEL values, typed by the schema like Kubernetes does."""
    if isinstance(value, dict):
        return celtypes.MapType({
            celtypes.StringType(k): _to_cel(v, node.child(k) if node else None)
            for k, v in value.items()})
    if isinstance(value, list):
        return celtypes.ListType([_to_cel(v, node.items if node else None) for v in value])
    return _cel_scalar(value, node)


_BLOCKING = frozenset({"FieldValueTypeInvalid", "FieldValueNotSupported"})


class CompiledSchema:
    """A structural schema prepared once and applied to many objects."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.root = _Node(schema)
        self._validator = _OpenAPIValidator(schema, format_checker=_FORMATS)
        self._fast = _FastCheck.build(schema)
        self.has_rules = _has_rules(self.root)

    def prune(self, obj: dict[str, Any]) -> list[str]:
        """Drop unknown fields in place; returns their paths (``.spec.foo``)."""
        pruned: list[str] = []
        _prune(obj, self.root, "", True, pruned)
        return pruned

    def apply_defaults(self, obj: dict[str, Any]) -> None:
        _default(obj, self.root)

    def validate(self, obj: Any, old: Any = None) -> list[Cause]:
        """Schema, list-type and CEL validation; ``old`` enables transition rules."""
        causes = [] if self._fast is not None and self._fast.passes(obj) else \
            [_error_cause(e) for e in self._validator.iter_errors(obj)]
        if not self.root.needs_walk:
            return causes
        blocked = any(c.reason in _BLOCKING for c in causes)
        walker = _Walker(has_old=old is not None, run_rules=not blocked)
        walker.walk(obj, old, self.root, "", root=True)
        if blocked and self.has_rules:
            walker.causes.append(_invalid(
                "", None, "some validation rules were not checked because the object was "
                          "invalid; correct the existing errors to complete validation"))
        return causes + walker.causes

    def type_causes(self, obj: Any) -> list[Cause]:
        """Fields whose JSON type contradicts the schema, found before anything reads them.

        kube-apiserver decodes a body into typed structs first, so a Secret whose ``data``
        is a list fails there, with a 400. Here the registry, the kinds' strategies and the
        metadata rules read bodies as they come and assume the declared types: a wrong one
        made them fail with a 500. The causes have the wording of :meth:`validate`'s (which
        reports the same problems, but only after those have run).
        """
        causes: list[Cause] = []
        _type_walk(obj, self.root, "", causes, resource=True)
        return causes


# -- the compiled (Rust) validator for the common, valid case -------------------------------------

_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "dependencies")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items")
_SCHEMA_ONE = ("additionalProperties", "additionalItems", "items", "not")
_INT_FORMATS = {"int32": 32, "int64": 64}
_NUMERIC = ("minimum", "maximum", "multipleOf", "format")
_STRING_FORMATS = {name: check for name, (check, _) in _FORMATS.checkers.items()
                   if name not in _INT_FORMATS}


class _FastCheck:
    """``jsonschema_rs`` on a translation of the schema that accepts no more than the Python
    validator does: valid objects (nearly every write) are confirmed in a few microseconds,
    and anything it refuses goes through the Python validator, which words the errors.

    The translation spells out what the Python validator adds to draft 4: ``nullable``
    (``anyOf`` null or the rest), ``x-kubernetes-int-or-string`` and the integer formats
    (ranges), the string formats (the same checks, called back), and drops the formats
    Python does not check. It can only be stricter where the two differ (``1.0`` is no
    integer to it, ``$`` matches no trailing newline, non-JSON values raise): those objects
    take the Python path. Non-finite numbers, which bodies refuse but a caller could pass,
    fail every type check in Rust but pass untyped numeric keywords and invert ``not`` and
    ``oneOf``; schemas with those are given only finite objects.
    """

    def __init__(self, validator: Any, finite_only: bool) -> None:
        self._validator = validator
        self._finite_only = finite_only

    @classmethod
    def build(cls, schema: Schema) -> _FastCheck | None:
        """None for a schema it cannot take (``$ref``, or one Rust refuses to compile)."""
        if "$ref" in json.dumps(schema):
            return None
        try:
            validator = jsonschema_rs.Draft4Validator(
                _translate(schema), formats=_STRING_FORMATS, validate_formats=True)
        except (ValueError, TypeError):
            return None
        return cls(validator, _needs_finite(schema))

    def passes(self, obj: Any) -> bool:
        if self._finite_only and not _finite(obj):
            return False
        try:
            return bool(self._validator.is_valid(obj))
        except Exception:  # noqa: BLE001 - a value it cannot convert: the Python path decides
            return False


def _translate(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {k: _translate(v) for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_translate(v) for v in value]
        elif key in _SCHEMA_ONE:
            out[key] = _translate(value)
        elif key != "format" or value in _STRING_FORMATS:
            out[key] = value
    extra = _translated_extras(schema)
    if extra:
        out["allOf"] = [*out.get("allOf", []), *extra]
    return {"anyOf": [{"type": "null"}, out]} if schema.get("nullable") is True else out


def _translated_extras(schema: Schema) -> list[dict[str, Any]]:
    extra: list[dict[str, Any]] = []
    bits = _INT_FORMATS.get(str(schema.get("format")))
    if bits:
        extra.append({"minimum": -(2 ** (bits - 1)), "maximum": 2 ** (bits - 1) - 1})
    if schema.get(_INT_OR_STRING) is True:
        extra.append({"anyOf": [{"type": "integer"}, {"type": "string"}]})
    return extra


def _needs_finite(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(_needs_finite(v) for v in schema)
    if not isinstance(schema, Mapping):
        return False
    if "not" in schema or "oneOf" in schema:
        return True
    if "type" not in schema and any(k in schema for k in _NUMERIC):
        return True
    return any(_needs_finite(v) for v in schema.values() if isinstance(v, Mapping | list))


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


_META_NODE = _Node(OBJECT_META_SCHEMA)
_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: _is_integer(None, v),
    "number": lambda v: _is_number(None, v),
}


def _type_walk(value: Any, node: _Node, path: str, out: list[Cause], resource: bool = False
               ) -> None:
    """Check ``value`` (not null) against ``node``'s type, then its declared children."""
    if node.int_or_string:
        if not (isinstance(value, str) or _is_integer(None, value)):
            out.append(_type_cause(path, "integer,string", _json_type(value)))
        return
    check = _TYPE_CHECKS.get(node.type)
    if check is not None and not check(value):
        out.append(_type_cause(path, node.type, _json_type(value)))
        return
    if isinstance(value, dict):
        for key, item in value.items():
            child = _META_NODE if key == "metadata" and (resource or node.embedded) else \
                node.properties.get(key) or node.additional
            if child is not None and (item is not None or _null_refused(node, key, child)):
                _type_walk(item, child, _child(path, key), out)
    elif isinstance(value, list) and node.items is not None:
        for i, item in enumerate(value):
            if item is not None or not node.items.nullable:
                _type_walk(item, node.items, _child(path, i), out)


def _null_refused(parent: _Node, key: str, child: _Node) -> bool:
    """A null field reads as absent (Go decodes it to the zero value, defaults replace it),
    unless the field is required; a null map value or list item is an error."""
    if child.nullable:
        return False
    return key not in parent.properties or key in parent.required


def _has_rules(node: _Node | None) -> bool:
    if node is None:
        return False
    children = [*node.properties.values(), node.additional, node.items]
    return bool(node.rules) or any(_has_rules(c) for c in children)


@functools.lru_cache(maxsize=512)
def _compiled_by_json(text: str) -> CompiledSchema:
    return CompiledSchema(json.loads(text))


_BY_IDENTITY: dict[int, tuple[Schema, CompiledSchema]] = {}


def compiled(schema: Schema) -> CompiledSchema:
    """A cached :class:`CompiledSchema` for ``schema`` (keyed by its canonical JSON).

    The same schema object is usually passed again (a kind's schema, on every patch), so
    it is looked up by identity first: its canonical JSON costs milliseconds per call.
    """
    hit = _BY_IDENTITY.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    result = _compiled_by_json(json.dumps(schema, sort_keys=True))
    if len(_BY_IDENTITY) >= 512:
        _BY_IDENTITY.clear()  # CRDs come and go; a bounded cache is rebuilt as needed
    _BY_IDENTITY[id(schema)] = (schema, result)
    return result


def prune(obj: dict[str, Any], schema: Schema) -> list[str]:
    return compiled(schema).prune(obj)


def apply_defaults(obj: dict[str, Any], schema: Schema) -> None:
    compiled(schema).apply_defaults(obj)


def validate(obj: Any, schema: Schema, old: Any = None) -> list[Cause]:
    return compiled(schema).validate(obj, old)


# ---------------------------------------------------------------------------------------------
# Schema checks used when accepting a CustomResourceDefinition
# ---------------------------------------------------------------------------------------------


def _key(path: str, keyword: str, name: str) -> str:
    return f"{_child(path, keyword)}[{name}]"


def _subschemas(schema: Schema, path: str) -> Iterator[tuple[Schema, str, str]]:
    """Yield (child schema, child path, role) for the structural children of ``schema``."""
    for name, prop in (schema.get("properties") or {}).items():
        if isinstance(prop, Mapping):
            yield prop, _key(path, "properties", name), "object fields"
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield extra, _child(path, "additionalProperties"), "additionalProperties"
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield items, _child(path, "items"), "array items"


def _walk_schema(schema: Schema, path: str) -> Iterator[tuple[Schema, str]]:
    yield schema, path
    for child, child_path, _ in _subschemas(schema, path):
        yield from _walk_schema(child, child_path)


def compile_cel_rules(schema: Schema, path: str = "openAPIV3Schema") -> list[Cause]:
    """Report every ``x-kubernetes-validations`` rule or messageExpression that fails to compile.
    """
    causes = []
    for node, node_path in _walk_schema(schema, path):
        for i, rule in enumerate(node.get(_RULES) or ()):
            rule_path = _child(_child(node_path, _RULES), i)
            for field in ("rule", "messageExpression"):
                text = rule.get(field) if isinstance(rule, Mapping) else None
                if field == "rule" and not text:
                    causes.append(_required(_child(rule_path, field)))
                elif text and _program(str(text)).error:
                    causes.append(_invalid(_child(rule_path, field), str(text),
                                           f"compilation failed: {_program(str(text)).error}"))
    return causes


_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
_JUNCTOR_FORBIDDEN = ("type", "default", "nullable", "additionalProperties", _PRESERVE,
                      _EMBEDDED, _INT_OR_STRING, "x-kubernetes-list-type",
                      "x-kubernetes-list-map-keys", _RULES)
_LIST_TYPES = ("atomic", "set", "map")


def _node_causes(schema: Schema, path: str, role: str) -> list[Cause]:
    causes: list[Cause] = []
    kind = schema.get("type")
    if "$ref" in schema:
        causes.append(_forbidden(_child(path, "$ref"), "$ref is not supported"))
    if schema.get(_INT_OR_STRING) is True:
        if kind:
            causes.append(_forbidden(_child(path, "type"),
                                     "must be empty if x-kubernetes-int-or-string is true"))
    elif not kind and schema.get(_PRESERVE) is not True:
        causes.append(_required(_child(path, "type"), f"must not be empty for specified {role}"))
    if _PRESERVE in schema and schema[_PRESERVE] is not True:
        causes.append(_invalid(_child(path, _PRESERVE), schema[_PRESERVE],
                               "must be true or undefined"))
    if schema.get(_EMBEDDED) is True and kind != "object":
        causes.append(_invalid(_child(path, "type"), kind or "",
                               "must be object if x-kubernetes-embedded-resource is true"))
    if schema.get("uniqueItems") is True:
        causes.append(_forbidden(_child(path, "uniqueItems"), "uniqueItems cannot be set to "
                                 "true since the runtime complexity becomes quadratic"))
    causes.extend(_shape_causes(schema, path))
    causes.extend(_list_type_causes(schema, path))
    causes.extend(_junctor_causes(schema, path))
    return causes


def _shape_causes(schema: Schema, path: str) -> list[Cause]:
    causes = []
    extra = schema.get("additionalProperties")
    if extra is not None and schema.get("properties"):
        causes.append(_forbidden(_child(path, "additionalProperties"),
                                 "additionalProperties and properties are mutual exclusive"))
    if extra is False:
        causes.append(_forbidden(_child(path, "additionalProperties"),
                                 "must not be false"))
    items = schema.get("items")
    if schema.get("type") == "array" and not isinstance(items, Mapping):
        detail = "must be a single schema" if items is not None else "must be specified"
        causes.append(_required(_child(path, "items"), detail))
    return causes


def _list_type_causes(schema: Schema, path: str) -> list[Cause]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type is None:
        return []
    lt_path = _child(path, "x-kubernetes-list-type")
    if list_type not in _LIST_TYPES:
        return [Cause(lt_path, f"Unsupported value: {_go_value(list_type)}: supported values: "
                               + ", ".join(_quote(t) for t in _LIST_TYPES),
                      "FieldValueNotSupported")]
    if list_type != "map":
        return []
    keys = schema.get("x-kubernetes-list-map-keys") or []
    keys_path = _child(path, "x-kubernetes-list-map-keys")
    if not keys:
        return [_required(keys_path, "must not be empty if x-kubernetes-list-type is map")]
    items_schema = schema.get("items")
    items: Mapping[str, Any] = items_schema if isinstance(items_schema, Mapping) else {}
    props, required = items.get("properties") or {}, items.get("required") or []
    return [_invalid(keys_path, key, "entries must all be names of required properties or "
                                     "properties with a default")
            for key in keys
            if key not in props or (key not in required and "default" not in props[key])]


_INT_OR_STRING_BRANCHES = [{"type": "integer"}, {"type": "string"}]


def _int_or_string_pattern(schema: Schema, junctor: str) -> bool:
    """``anyOf: [{type: integer}, {type: string}]`` (or the same as the first ``allOf``
    entry) beside ``x-kubernetes-int-or-string: true``: the one typed junctor Kubernetes
    allows, as controller-gen writes it for every IntOrString field (Cluster API, Gardener)."""
    if schema.get(_INT_OR_STRING) is not True:
        return False
    if junctor == "anyOf":
        return schema.get("anyOf") == _INT_OR_STRING_BRANCHES
    first = (schema.get("allOf") or [None])[0] if junctor == "allOf" else None
    return isinstance(first, Mapping) and set(first) == {"anyOf"} \
        and first["anyOf"] == _INT_OR_STRING_BRANCHES


def _junctor_causes(schema: Schema, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for junctor in _JUNCTORS:
        value = schema.get(junctor)
        branches = [value] if isinstance(value, Mapping) else list(value or [])
        if _int_or_string_pattern(schema, junctor):
            branches = [] if junctor == "anyOf" else branches[1:]
        for i, branch in enumerate(branches):
            branch_path = _child(path, junctor) if junctor == "not" else \
                _child(_child(path, junctor), i)
            causes.extend(_forbidden(_child(branch_path, key), "must be empty to be structural")
                          for key in _JUNCTOR_FORBIDDEN if key in branch)
    return causes


def _metadata_causes(schema: Schema, path: str) -> list[Cause]:
    meta = (schema.get("properties") or {}).get("metadata")
    if not isinstance(meta, Mapping):
        return []
    meta_path = _key(path, "properties", "metadata")
    causes = []
    if set(meta) - {"type", "properties", "description"} or meta.get("type") != "object" or \
            set(meta.get("properties") or {}) - {"name", "generateName"}:
        causes.append(_forbidden(meta_path, "must not specify anything other than name and "
                                            "generateName, but metadata is implicitly specified"))
    for name, prop in (meta.get("properties") or {}).items():
        if isinstance(prop, Mapping) and prop.get("type") != "string":
            causes.append(_invalid(_child(_key(meta_path, "properties", name), "type"),
                                   prop.get("type") or "", "must be string"))
    return causes


def check_structural(schema: Schema, path: str = "openAPIV3Schema") -> list[Cause]:
    """The structural-schema rules a CRD's ``openAPIV3Schema`` must satisfy."""
    causes: list[Cause] = []
    if schema.get("type") != "object":
        causes.append(_invalid(_child(path, "type"), schema.get("type") or "",
                               "must be object at the root"))
    causes.extend(_metadata_causes(schema, path))
    causes.extend(c for c in _node_causes(schema, path, "root")
                  if c.field != _child(path, "type"))
    causes.extend(_children_causes(schema, path, skip_metadata=True))
    return causes


def _children_causes(schema: Schema, path: str, skip_metadata: bool = False) -> list[Cause]:
    causes: list[Cause] = []
    meta_path = _key(path, "properties", "metadata")
    for child, child_path, role in _subschemas(schema, path):
        if skip_metadata and child_path == meta_path:
            continue
        causes.extend(_node_causes(child, child_path, role))
        causes.extend(_children_causes(child, child_path))
    return causes
