"""Label and field selectors with kube-apiserver's syntax and semantics.

``kubectl get -l ...``, ``--field-selector``, watch caches and controllers all send selectors in
the exact grammar of ``k8s.io/apimachinery/pkg/labels`` and ``.../fields``. Clients rely on the
details (``notin`` matching objects without the label, ``a in ()``, numeric ``>``/``<``), so the
parser below follows apimachinery's lexer/parser token for token rather than using a regex, and
error messages mirror its wording (``unable to parse requirement: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from central_api.machinery.errors import ApiError, Cause, bad_request

__all__ = [
    "FieldSelector",
    "FieldTerm",
    "LabelSelector",
    "Operator",
    "Requirement",
    "everything",
    "from_label_selector_object",
    "nothing",
    "parse_field_selector",
    "parse_label_selector",
    "validate_label_key",
    "validate_label_value",
]

# ---------------------------------------------------------------------------------------------
# Label key / value validation (k8s.io/apimachinery/pkg/util/validation)
# ---------------------------------------------------------------------------------------------

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_DNS_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN_FMT = _DNS_LABEL_FMT + "(\\." + _DNS_LABEL_FMT + ")*"
_DNS_SUBDOMAIN_RE = re.compile(f"^{_DNS_SUBDOMAIN_FMT}$")
_DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _dns_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS_SUBDOMAIN_MSG, _DNS_SUBDOMAIN_FMT, "example.com"))
    return errs


def _qualified_name_errors(value: str) -> list[str]:
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns_subdomain_errors(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _QNAME_RE.fullmatch(name):
        errs.append(
            "name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def validate_label_key(key: str) -> str | None:
    """Return why ``key`` is not a valid label key (qualified name), or None if it is."""
    errs = _qualified_name_errors(key)
    return "; ".join(errs) if errs else None


def validate_label_value(value: str) -> str | None:
    """Return why ``value`` is not a valid label value, or None if it is."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return "; ".join(errs) if errs else None


def _parameter_error(parameter: str, message: str) -> ApiError:
    """400 in apimachinery's words, with a cause that names the query parameter."""
    return ApiError(400, "BadRequest", message, causes=[Cause(parameter, message)])


def _quote(value: str) -> str:
    """Go's ``%q`` for the ASCII-ish strings that appear in selector errors."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------------------------
# Requirements and label selectors
# ---------------------------------------------------------------------------------------------


class Operator(StrEnum):
    """Selection operators, valued as in ``k8s.io/apimachinery/pkg/selection``."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(s, 10, 64)``: no spaces, no underscores, range-checked."""
    if not _INT64_RE.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


@dataclass(frozen=True)
class Requirement:
    """One ``key <op> values`` term of a label selector; values are sorted and unique."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return self.key not in labels or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        return self._matches_numeric(labels)

    def _matches_numeric(self, labels: Mapping[str, str]) -> bool:
        if self.key not in labels:
            return False
        have = _parse_int64(labels[self.key])
        want = _parse_int64(self.values[0]) if len(self.values) == 1 else None
        if have is None or want is None:
            return False
        return have > want if self.operator is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({','.join(self.values)})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{self.values[0] if self.values else ''}"


def _requirement_errors(key: str, op: Operator, values: tuple[str, ...]) -> list[str]:
    """Mirror ``labels.NewRequirement`` validation; returns field.Error style strings."""
    errs = []
    key_err = validate_label_key(key)
    if key_err:
        errs.append(f"key: Invalid value: {_quote(key)}: {key_err}")
    shown = "[]string{" + ", ".join(_quote(v) for v in values) + "}"
    if op in (Operator.IN, Operator.NOT_IN) and not values:
        errs.append(f"values: Invalid value: {shown}: for 'in', 'notin' operators, values set "
                    "can't be empty")
    elif op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS) and len(values) != 1:
        errs.append(f"values: Invalid value: {shown}: exact-match compatibility requires one "
                    "single value")
    elif op in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        errs.append(f"values: Invalid value: {shown}: values set must be empty for exists and "
                    "does not exist")
    elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(values) != 1:
            errs.append(f"values: Invalid value: {shown}: for 'Gt', 'Lt' operators, exactly one "
                        "value is required")
        errs.extend(
            f"values[{i}]: Invalid value: {_quote(v)}: for 'Gt', 'Lt' operators, the value must "
            "be an integer"
            for i, v in enumerate(values) if _parse_int64(v) is None
        )
    for i, value in enumerate(values):
        value_err = validate_label_value(value)
        if value_err:
            errs.append(f"values[{i}][{key}]: Invalid value: {_quote(value)}: {value_err}")
    return errs


def new_requirement(key: str, op: Operator, values: Iterable[str] = ()) -> Requirement:
    """Build a validated requirement, raising ``ValueError`` with apimachinery's wording."""
    vals = tuple(sorted(set(values)))
    errs = _requirement_errors(key, op, vals)
    if errs:
        raise ValueError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    return Requirement(key, op, vals)


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; the empty selector matches everything.

    ``match_nothing`` represents ``labels.Nothing()`` (a nil ``metav1.LabelSelector``).
    """

    requirements: tuple[Requirement, ...] = ()
    match_nothing: bool = False

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.match_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.match_nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def everything() -> LabelSelector:
    return LabelSelector()


def nothing() -> LabelSelector:
    return LabelSelector(match_nothing=True)


# ---------------------------------------------------------------------------------------------
# Label selector lexer/parser (k8s.io/apimachinery/pkg/labels/selector.go)
# ---------------------------------------------------------------------------------------------


class _Tok(Enum):
    END = "end"
    CLOSE = ")"
    COMMA = ","
    NOT = "!"
    NOT_EQUALS = "!="
    DOUBLE_EQUALS = "=="
    EQUALS = "="
    GT = ">"
    LT = "<"
    IDENT = "ident"
    IN = "in"
    NOT_IN = "notin"
    OPEN = "("


_SYMBOLS = {t.value: t for t in (_Tok.CLOSE, _Tok.COMMA, _Tok.NOT, _Tok.NOT_EQUALS,
                                 _Tok.DOUBLE_EQUALS, _Tok.EQUALS, _Tok.GT, _Tok.LT, _Tok.OPEN)}
_KEYWORDS = {"in": _Tok.IN, "notin": _Tok.NOT_IN}
_SPECIAL = frozenset("=!(),><")
_SPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[_Tok, str]]:
    tokens: list[tuple[_Tok, str]] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch in _SPACE:
            pos += 1
        elif ch in _SPECIAL:
            end = pos
            while end < len(text) and text[end] in _SPECIAL and text[pos:end + 1] in _SYMBOLS:
                end += 1
            tokens.append((_SYMBOLS[text[pos:end]], text[pos:end]))
            pos = end
        else:
            end = pos
            while end < len(text) and text[end] not in _SPACE and text[end] not in _SPECIAL:
                end += 1
            word = text[pos:end]
            tokens.append((_KEYWORDS.get(word, _Tok.IDENT), word))
            pos = end
    tokens.append((_Tok.END, ""))
    return tokens


class _SelectorSyntaxError(ValueError):
    pass


class _Parser:
    """Recursive-descent parser; ``values`` context turns ``in``/``notin`` into identifiers."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[_Tok, str]:
        tok, lit = self.tokens[min(self.pos, len(self.tokens) - 1)]
        if values and tok in (_Tok.IN, _Tok.NOT_IN):
            tok = _Tok.IDENT
        return tok, lit

    def take(self, values: bool = True) -> tuple[_Tok, str]:
        item = self.peek(values)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok is _Tok.END:
                return reqs
            if tok not in (_Tok.IDENT, _Tok.NOT):
                raise _SelectorSyntaxError(
                    f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except ValueError as exc:
                raise _SelectorSyntaxError(f"unable to parse requirement: {exc}") from None
            tok, lit = self.take()
            if tok is _Tok.END:
                return reqs
            if tok is not _Tok.COMMA:
                raise _SelectorSyntaxError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.peek()
            if tok not in (_Tok.IDENT, _Tok.NOT):
                raise _SelectorSyntaxError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        key, op = self.key_and_implied_operator()
        if op is not None:
            return new_requirement(key, op)
        op = self.operator()
        if op in (Operator.IN, Operator.NOT_IN):
            return new_requirement(key, op, self.value_set())
        return new_requirement(key, op, self.exact_value())

    def key_and_implied_operator(self) -> tuple[str, Operator | None]:
        op: Operator | None = None
        tok, lit = self.take()
        if tok is _Tok.NOT:
            op = Operator.DOES_NOT_EXIST
            tok, lit = self.take()
        if tok is not _Tok.IDENT:
            raise ValueError(f"found '{lit}', expected: identifier")
        key_err = validate_label_key(lit)
        if key_err:
            raise ValueError(f"key: Invalid value: {_quote(lit)}: {key_err}")
        if self.peek()[0] in (_Tok.END, _Tok.COMMA) and op is None:
            op = Operator.EXISTS
        return lit, op

    _OPERATORS = {
        _Tok.IN: Operator.IN, _Tok.NOT_IN: Operator.NOT_IN, _Tok.EQUALS: Operator.EQUALS,
        _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS, _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
        _Tok.GT: Operator.GREATER_THAN, _Tok.LT: Operator.LESS_THAN,
    }

    def operator(self) -> Operator:
        tok, lit = self.take(values=False)
        if tok not in self._OPERATORS:
            raise ValueError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")
        return self._OPERATORS[tok]

    def value_set(self) -> set[str]:
        tok, lit = self.take()
        if tok is not _Tok.OPEN:
            raise ValueError(f"found '{lit}', expected: '('")
        tok, lit = self.peek()
        if tok is _Tok.CLOSE:
            self.take()
            return {""}
        if tok not in (_Tok.IDENT, _Tok.COMMA):
            raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifier_list()
        tok, lit = self.take()
        if tok is not _Tok.CLOSE:
            raise ValueError(f"found '{lit}', expected: ')'")
        return values

    def identifier_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok is _Tok.IDENT:
                values.add(lit)
                nxt, nlit = self.peek()
                if nxt is _Tok.CLOSE:
                    return values
                if nxt is not _Tok.COMMA:
                    raise ValueError(f"found '{nlit}', expected: ',' or ')'")
            elif tok is _Tok.COMMA:
                if not values:
                    values.add("")  # "(,"
                nxt, _ = self.peek()
                if nxt is _Tok.CLOSE:
                    values.add("")  # ",)"
                    return values
                if nxt is _Tok.COMMA:
                    self.take()
                    values.add("")  # ",,"
            else:
                raise ValueError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.peek()
        if tok in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, lit = self.take()
        if tok is _Tok.IDENT:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a ``labelSelector`` query parameter; raise 400 BadRequest when it is invalid."""
    if not text or not text.strip():
        return LabelSelector()
    try:
        reqs = _Parser(text).parse()
    except _SelectorSyntaxError as exc:
        raise _parameter_error("labelSelector", str(exc)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


_OBJECT_OPERATORS = {
    "In": Operator.IN, "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS, "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def _expression_requirement(expr: Mapping[str, Any]) -> Requirement:
    op_name = expr.get("operator", "")
    if op_name not in _OBJECT_OPERATORS:
        raise ValueError(f"{_quote(str(op_name))} is not a valid label selector operator")
    return new_requirement(str(expr.get("key", "")), _OBJECT_OPERATORS[op_name],
                           [str(v) for v in expr.get("values") or ()])


def from_label_selector_object(sel: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a ``metav1.LabelSelector`` (``matchLabels``/``matchExpressions``).

    Like ``metav1.LabelSelectorAsSelector``: None selects nothing, ``{}`` selects everything.
    Invalid content raises a 400 BadRequest ``ApiError``.
    """
    if sel is None:
        return nothing()
    reqs: list[Requirement] = []
    try:
        for key, value in (sel.get("matchLabels") or {}).items():
            reqs.append(new_requirement(str(key), Operator.EQUALS, [str(value)]))
        for expr in sel.get("matchExpressions") or ():
            reqs.append(_expression_requirement(expr))
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


# ---------------------------------------------------------------------------------------------
# Field selectors (k8s.io/apimachinery/pkg/fields/selector.go)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negated: bool = False

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{'!=' if self.negated else '='}{escaped}"


def _field_string(obj: Mapping[str, Any], path: str) -> str:
    """The value at a dotted path as a field set holds it (missing -> "")."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return ""
        cur = cur[part]
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of ``field=value`` / ``field!=value`` terms."""

    terms: tuple[FieldTerm, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all((_field_string(obj, t.field) == t.value) != t.negated for t in self.terms)

    def exact(self, field: str) -> str | None:
        """The value ``field`` must equal for a match, if the selector pins it."""
        for term in self.terms:
            if term.field == field and not term.negated:
                return term.value
        return None

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


def _split_terms(text: str) -> list[str]:
    terms, start, in_slash = [], 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape_value(value: str) -> str:
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise _parameter_error("fieldSelector", "invalid field selector: invalid "
                                       f"escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            raise _parameter_error("fieldSelector", "invalid field selector: unescaped "
                                   f"character in value: {ch}")
        else:
            out.append(ch)
    if in_slash:
        raise _parameter_error("fieldSelector", "invalid field selector: invalid escape "
                               "sequence: \\")
    return "".join(out)


def parse_field_selector(text: str | None, supported: Iterable[str]) -> FieldSelector:
    """Parse a ``fieldSelector`` query parameter restricted to the ``supported`` field paths.

    Field names are stripped of surrounding whitespace (kube would reject them instead).
    """
    if not text:
        return FieldSelector()
    allowed = set(supported)
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise _parameter_error("fieldSelector", f"invalid selector: '{text}'; can't "
                                   f"understand '{part}'")
        lhs, op, rhs = split
        field = lhs.strip()
        if field not in allowed:
            raise _parameter_error("fieldSelector", f"field label not supported: {field}")
        terms.append(FieldTerm(field, _unescape_value(rhs), negated=op == "!="))
    return FieldSelector(tuple(terms))
