"""The Kubernetes JSONPath subset used by printer columns and ``kubectl -o jsonpath``.

CustomResourceDefinitions declare ``additionalPrinterColumns[].jsonPath`` such as
``.status.conditions[?(@.type=="Ready")].status``; the server evaluates them to fill the
``Table`` rows that ``kubectl get`` prints. This module compiles such expressions once into a
chain of steps (each maps a list of current nodes to the next list), mirroring the semantics of
``k8s.io/client-go/util/jsonpath`` with missing keys allowed, and renders cells like
apiextensions-apiserver's table convertor.

Supported: ``$``, ``.name``, ``\\.``-escaped dots in names, ``..name`` (recursive descent),
``.*``/``[*]``, ``[n]`` (negative too), ``[start:end:step]``, ``['key']``/``["key"]``, unions
``[0,2]``/``['a','b']``, and filters ``[?(@.path)]`` / ``[?(@.path OP literal)]`` with
``== != < <= > >=``. Not supported: templates with text or several ``{}`` actions, ``range``/
``end``, functions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from central_api.machinery.errors import bad_request

__all__ = ["column_value", "compile_jsonpath", "render_text"]

Step = Callable[[list[Any]], list[Any]]
_MISSING = object()


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in _children(node):
        yield from _walk(child)


def _field_step(name: str) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        return [n[name] for n in nodes if isinstance(n, dict) and name in n]
    return step


def _recursive_step(inner: Step) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        return inner([d for n in nodes for d in _walk(n)])
    return step


def _wildcard_step(nodes: list[Any]) -> list[Any]:
    return [c for n in nodes for c in _children(n)]


def _index_step(indices: list[int]) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        out: list[Any] = []
        for node in nodes:
            if isinstance(node, list):
                out.extend(node[i] for i in indices if -len(node) <= i < len(node))
        return out
    return step


def _slice_step(bounds: slice) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        return [x for n in nodes if isinstance(n, list) for x in n[bounds]]
    return step


def _keys_step(keys: list[str]) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        return [n[k] for n in nodes if isinstance(n, dict) for k in keys if k in n]
    return step


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _comparable(a: Any, b: Any) -> bool:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numeric) and isinstance(b, numeric)) or type(a) is type(b)


def _filter_step(path: list[Step], op: str | None, literal: Any) -> Step:
    def keep(item: Any) -> bool:
        found = _run(path, item)
        if op is None:
            return bool(found)
        if not found or not _comparable(found[0], literal):
            return op == "!=" and bool(found)
        try:
            return _COMPARE[op](found[0], literal)
        except TypeError:
            return False

    def step(nodes: list[Any]) -> list[Any]:
        return [x for n in nodes for x in _children(n) if keep(x)]
    return step


def _run(steps: list[Step], root: Any) -> list[Any]:
    nodes = [root]
    for step in steps:
        nodes = step(nodes)
        if not nodes:
            return []
    return nodes


class _Parser:
    """Hand-written scanner; ``pos`` walks ``text`` and each method consumes one construct."""

    _NAME_END = frozenset(".[]()=!<> \t,'\"@")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> Exception:
        return bad_request(f"invalid jsonpath {self.text!r}: {what} at position {self.pos}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def eat(self, token: str) -> bool:
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.eat(token):
            raise self.fail(f"expected {token!r}")

    def skip_space(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def path(self, stop: str = "") -> list[Step]:
        steps: list[Step] = []
        while self.pos < len(self.text) and self.peek() not in stop:
            if self.eat(".."):
                inner = self.bracket() if self.eat("[") else self.name_step()
                steps.append(_recursive_step(inner))
            elif self.eat("."):
                steps.append(self.name_step())
            elif self.eat("["):
                steps.append(self.bracket())
            elif not steps and self.peek() not in self._NAME_END:
                steps.append(self.name_step())
            else:
                raise self.fail(f"unexpected {self.peek()!r}")
        return steps

    def name_step(self) -> Step:
        if self.eat("*"):
            return _wildcard_step
        name = self.name()
        if not name:
            raise self.fail("expected a field name")
        return _field_step(name)

    def name(self) -> str:
        chars: list[str] = []
        while self.pos < len(self.text):
            ch = self.peek()
            if ch == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch in self._NAME_END:
                break
            chars.append(ch)
            self.pos += 1
        return "".join(chars)

    def bracket(self) -> Step:
        self.skip_space()
        if self.eat("?("):
            step = self.filter()
        elif self.eat("*"):
            step = _wildcard_step
        elif self.peek() in ("'", '"'):
            step = _keys_step(self.list_of(self.quoted))
        else:
            step = self.index_or_slice()
        self.skip_space()
        self.expect("]")
        return step

    def list_of(self, item: Callable[[], Any]) -> list[Any]:
        values = [item()]
        self.skip_space()
        while self.eat(","):
            self.skip_space()
            values.append(item())
            self.skip_space()
        return values

    def quoted(self) -> str:
        quote = self.peek()
        if quote not in ("'", '"'):
            raise self.fail("expected a quoted string")
        end = self.pos + 1
        chars: list[str] = []
        while end < len(self.text) and self.text[end] != quote:
            if self.text[end] == "\\" and end + 1 < len(self.text):
                end += 1
            chars.append(self.text[end])
            end += 1
        if end >= len(self.text):
            raise self.fail("unterminated string")
        self.pos = end + 1
        return "".join(chars)

    _INT = re.compile(r"\s*(-?\d+)?\s*")

    def integer(self) -> int | None:
        match = self._INT.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos
        return int(match.group(1)) if match and match.group(1) else None

    def index_or_slice(self) -> Step:
        parts = [self.integer()]
        while self.eat(":") and len(parts) < 3:
            parts.append(self.integer())
        if len(parts) == 1:
            if parts[0] is None:
                raise self.fail("expected an index")
            indices = [parts[0]]
            while self.eat(","):
                nxt = self.integer()
                if nxt is None:
                    raise self.fail("expected an index")
                indices.append(nxt)
            return _index_step(indices)
        if len(parts) == 3 and parts[2] == 0:
            raise self.fail("step must not be 0")
        return _slice_step(slice(*parts))

    _LITERAL = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null")

    def literal(self) -> Any:
        if self.peek() in ("'", '"'):
            return self.quoted()
        match = self._LITERAL.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a literal")
        self.pos = match.end()
        return json.loads(match.group(0))

    def filter(self) -> Step:
        self.skip_space()
        self.expect("@")
        path = self.path(stop=" \t)=!<>")
        self.skip_space()
        op = next((o for o in ("==", "!=", "<=", ">=", "<", ">") if self.eat(o)), None)
        literal: Any = None
        if op is not None:
            self.skip_space()
            literal = self.literal()
            self.skip_space()
        self.expect(")")
        return _filter_step(path, op, literal)


def _strip_template(expr: str) -> str:
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    return text


def compile_jsonpath(expr: str) -> Callable[[Any], list[Any]]:
    """Compile ``expr`` (optionally wrapped in ``{}``) to a function returning all matches.

    Missing keys and out-of-range indices yield no match instead of an error, as for printer
    columns. Syntax errors raise a 400 BadRequest ``ApiError``.
    """
    parser = _Parser(_strip_template(expr))
    steps = parser.path()

    def evaluate(obj: Any) -> list[Any]:
        return _run(steps, obj)
    return evaluate


_COMPILED: dict[str, Callable[[Any], list[Any]]] = {}


def _compiled(expr: str) -> Callable[[Any], list[Any]]:
    fn = _COMPILED.get(expr)
    if fn is None:
        fn = compile_jsonpath(expr)
        if len(_COMPILED) > 4096:
            _COMPILED.clear()
        _COMPILED[expr] = fn
    return fn


def _go_float(value: float) -> str:
    """Go's ``%v`` for float64: shortest repr, exponent form only for very large/small."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        exponent = int(exp)
        if -4 <= exponent < 21:
            return format(value, "f").rstrip("0").rstrip(".")
        return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return text


def render_text(value: Any) -> str:
    """Render one match as ``kubectl -o jsonpath`` prints it (compact JSON for non-scalars)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if value is None:
        return "<nil>"
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _date_cell(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return value


def _typed_cell(type_: str, value: Any) -> Any:
    """apiextensions-apiserver's ``cellForJSONValue``: wrong JSON type -> None."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if type_ == "integer" and is_number:
        return int(value)
    if type_ == "number" and is_number:
        return float(value)
    if type_ == "boolean" and isinstance(value, bool):
        return value
    if type_ == "date":
        return _date_cell(value)
    return None


def column_value(expr: str, obj: Any, type_: str) -> Any:
    """The Table cell for printer column ``expr`` of ``type_`` on ``obj`` (first match).

    ``string`` columns hold the text rendering (compact JSON for lists/maps); ``integer``,
    ``number`` and ``boolean`` hold JSON values of that type; ``date`` holds the timestamp string
    (``"<invalid>"`` if unparsable). Missing values and type mismatches give None.
    """
    matches = _compiled(expr)(obj)
    if not matches or matches[0] is None:
        return None
    value = matches[0]
    if type_ == "string":
        return render_text(value)
    return _typed_cell(type_, value)
