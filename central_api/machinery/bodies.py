"""Request bodies, parsed so that no caller can stall or crash the server with one.

Every body an authenticated caller sends passes through here (even a SelfSubjectReview, which
needs no role), so parsing may neither hold the event loop nor fail with anything but a 4xx
``Status`` that names the problem:

- **Off the event loop.** Bodies are parsed in worker threads: 3 MiB of YAML costs seconds of
  CPU, during which the loop would answer nobody. YAML has a pool of its own with a bounded
  queue, so a flood of YAML bodies waits there (or gets 429) instead of delaying JSON ones.
- **Fast where possible.** JSON goes through orjson, YAML through libyaml when PyYAML has it,
  and a YAML body that is JSON (kubectl's server-side apply sends JSON) takes the JSON path.
- **Limits.** Size (:data:`MAX_BODY_BYTES`), nesting depth (:data:`MAX_DEPTH`) and no YAML
  aliases (a few hundred bytes of aliases expand to gigabytes).
- **Only what an object can hold.** One walk over every parsed document (:func:`check_document`)
  refuses what the rest of the server cannot validate, store or serve — integers too large
  even for a float, NaN and infinities, lone surrogates, non-string map keys and YAML's
  non-JSON types — naming the field path.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
import yaml

from . import protobuf
from .errors import ApiError, Cause, bad_request

T = TypeVar("T")

MAX_BODY_BYTES = 3 * 1024 * 1024
"""Same limit as kube-apiserver: larger objects belong elsewhere."""
MAX_HEADER_BYTES = 32 * 1024
"""Request line plus headers. Bearer tokens with many groups need a few KiB; nothing
legitimate needs more, and every header is kept in memory for the whole request."""
MAX_DEPTH = 100
"""Levels of nesting a body may have (the object itself is level 1).

kube-apiserver allows 10,000 for JSON, because its Go decoder keeps its own stack. Here
every level costs Python frames in several recursive passes over an object (pruning,
defaulting, validation, patching, deepcopy: about three frames per level against CPython's
limit of 1,000), and orjson writes at most 255 levels while responses wrap an object in a
list, a table or a watch event. 100 leaves room for all of that; the deepest real objects,
CRDs whose schemas nest two levels per field, stay under 50."""
MAX_STORED_DEPTH = MAX_DEPTH + 8
"""Depth a patch may leave an object at: a body at :data:`MAX_DEPTH` is stored a few levels
deeper, because ``metadata.managedFields[i].fieldsV1`` mirrors the object's fields."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
JSON_THREADS = 2
"""Threads parsing JSON and protobuf: orjson needs about 5 ms per MiB, so two keep up with
any request rate the loop itself can serve."""
YAML_THREADS = 2
YAML_QUEUE = 8
"""YAML bodies being parsed or waiting at most; more are refused with 429. Each waiting body
holds up to 3 MiB and each parse seconds of CPU, so an unbounded queue would let one caller
pin memory and delay every other YAML body without limit."""

INLINE_BYTES = 16 * 1024
"""JSON and protobuf bodies up to this size are parsed (and a create's admitted) on the event
loop: that costs tens of microseconds, bounded by the size, while each hop to a worker
thread and back cost about 400 µs of CPU under load (creates on SQLite went from 1,055 to
2,405 µs of CPU each with three hops). Larger bodies and all YAML take the threads."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_JSON_TYPES = ("", "application/json", "*/*")
PROTOBUF = "application/vnd.kubernetes.protobuf"
APPLY_PATCH = "application/apply-patch+yaml"


class CheckedBody(bytes):
    """Compact JSON of a document that passed :func:`check_document` off the event loop.

    The registry takes patch bodies as bytes and parses them again (on every retry): for
    these, orjson alone is enough, without a second walk.
    """


# --------------------------------------------------------------------------- errors


def too_large() -> ApiError:
    return ApiError(413, "RequestEntityTooLarge",
                    f"the request body is too large (limit {MAX_BODY_BYTES} bytes)")


def header_too_large() -> ApiError:
    return ApiError(431, "RequestHeaderFieldsTooLarge",
                    f"the request headers are too large (limit {MAX_HEADER_BYTES} bytes)")


def check_header_size(scope: Mapping[str, Any]) -> None:
    """Refuse a header block over :data:`MAX_HEADER_BYTES` with 431 before anything reads
    it. ``scs serve``'s protocol (:mod:`central_api.server.connections`) refuses such a
    request before the application sees it; this holds the limit under any other ASGI
    server."""
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + sum(
        len(name) + len(value) + 4 for name, value in scope.get("headers") or [])
    if size > MAX_HEADER_BYTES:
        raise header_too_large()


def _field_error(path: str, detail: str) -> ApiError:
    where = path or "<root>"
    return ApiError(400, "BadRequest", f"the body of the request is invalid: {where}: "
                    f"Invalid value: {detail}", causes=[Cause(path, f"Invalid value: {detail}")])


def _short(text: str, limit: int = 200) -> str:
    """Input echoed in an error stays short: a key or a path may be megabytes long."""
    return text if len(text) <= limit else text[:limit] + "..."


def _too_deep(path: str, limit: int) -> ApiError:
    where = f" at {path}" if path else ""
    return ApiError(400, "BadRequest", f"the body of the request is nested too deeply: more "
                    f"than {limit} levels{where}",
                    causes=[Cause(path, f"Too deep: must have at most {limit} levels of "
                                  "nesting", "FieldValueTooLong")])


# --------------------------------------------------------------------------- the walk

_Path = tuple[Any, str | int] | None
"""A field path as a linked list (parent, key): a walk builds one per container, cheaply."""


def _render(path: _Path) -> str:
    parts: list[str | int] = []
    while path is not None:
        path, key = path
        parts.append(key)
    text = ""
    for key in reversed(parts):
        text = f"{text}[{key}]" if isinstance(key, int) else f"{text}.{key}" if text else key
    return _short(text)


def check_document(document: Any, max_depth: int = MAX_DEPTH) -> Any:
    """Refuse, naming its field, the first value an object cannot hold; returns ``document``.

    Integers beyond 64 bits become floats, as kube-apiserver's decoder makes them (a float
    is what JSON numbers are); one too large for a float is refused. Iterative, so that any
    depth is reported rather than overflowing the stack.
    """
    if not isinstance(document, dict | list):
        holder = [document]
        _check_scalar(holder, 0, None)
        return holder[0]
    stack: list[tuple[Any, int, _Path]] = [(document, 1, None)]
    while stack:
        container, depth, path = stack.pop()
        if depth > max_depth:
            raise _too_deep(_render(path), max_depth)
        is_map = isinstance(container, dict)
        for key, item in container.items() if is_map else enumerate(container):
            if is_map:
                _check_key(key, path)
            if isinstance(item, dict | list):
                stack.append((item, depth + 1, (path, key)))
            else:
                _check_scalar(container, key, (path, key))
    return document


def _check_key(key: Any, path: _Path) -> None:
    if not isinstance(key, str):
        raise _field_error(_render(path), f"map key {_short(repr(key))}: map keys must be "
                                          "strings")
    if not key.isascii() and _SURROGATE.search(key):
        raise _field_error(_render(path), f"map key {_short(repr(key))}: not valid Unicode "
                                          "(a lone surrogate)")


def _check_scalar(container: Any, key: Any, path: _Path) -> None:
    """Check ``container[key]`` in place (an integer beyond 64 bits becomes a float)."""
    value = container[key]
    kind = type(value)
    if kind is str:
        if not value.isascii() and _SURROGATE.search(value):
            raise _field_error(_render(path), "not valid Unicode (a lone surrogate)")
    elif kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            container[key] = _as_float(value, path)
    elif kind is float:
        if not math.isfinite(value):
            raise _field_error(_render(path), f"{value}: numbers must be finite")
    elif value is not None and kind is not bool:
        raise _field_error(_render(path), f"a value of type {kind.__name__}: only JSON "
                                          "types are allowed")


def _as_float(value: int, path: _Path) -> float:
    try:
        return float(value)
    except OverflowError:
        raise _field_error(_render(path), f"an integer of {value.bit_length()} bits: "
                                          "out of range") from None


# --------------------------------------------------------------------------- parsers


def decode_json(raw: bytes) -> Any:
    """Any JSON document, checked."""
    if isinstance(raw, CheckedBody):
        return orjson.loads(memoryview(raw))  # orjson takes no subclass of bytes
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = _decode_json_slowly(raw)
    return check_document(value)


def _decode_json_slowly(raw: bytes) -> Any:
    """orjson refuses some documents the standard library parses — integers beyond 64 bits,
    NaN, lone surrogates, more than 1,024 levels — so that :func:`check_document` can name
    the field; on real syntax errors the standard library's message is the clearer one."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise _too_deep(_deep_path(raw, MAX_DEPTH), MAX_DEPTH) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over 4,300 digits
        raise bad_request(f"the body of the request is not valid JSON: {exc}") from None


_JSON_TOKENS = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*(:?)|[\[\]{},]')


def _deep_path(raw: bytes, limit: int) -> str:
    """Where JSON too deep for any parser to return first nests deeper than ``limit``: a
    scan of its tokens (strings are skipped by the regular expression, at C speed)."""
    frames: list[list[Any]] = []  # per open container: [its key in the parent, last key]
    for token in _JSON_TOKENS.finditer(raw):
        char = token.group(0)[:1]
        if char in b"[{":
            if len(frames) == limit:
                break
            parent = frames[-1][1] if frames else None
            frames.append([parent, 0 if char == b"[" else None])
        elif char in b"]}" and frames:
            frames.pop()
        elif char == b"," and frames and isinstance(frames[-1][1], int):
            frames[-1][1] += 1
        elif token.group(2) and frames:  # a key, shown as written (no surrogates to echo)
            frames[-1][1] = token.group(1).decode(errors="replace")
    path: _Path = None
    for parent, _ in frames[1:]:
        path = (path, parent)
    return _render((path, frames[-1][1])) if frames else ""


_NOT_JSON = object()


def _decode_json_candidate(raw: bytes) -> Any:
    """A YAML body that happens to be JSON (checked), else :data:`_NOT_JSON`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _NOT_JSON
    return check_document(value)


class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, on libyaml's parser when PyYAML has it (several times faster).

    Timestamps stay strings, as sigs.k8s.io/yaml (kube's YAML decoder) keeps them.
    """


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _YamlLoader.construct_yaml_str)
_STR_TAG = "tag:yaml.org,2002:str"
_COLLECTION_TAGS = (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_NO_KEY = object()


def _decode_yaml_text(raw: bytes) -> Any:
    """Build the document from the parser's events, without PyYAML's node graph.

    The graph (two objects and two marks per node, all tracked by the garbage collector)
    made 3 MiB of YAML cost 20 s of CPU; from events it is a few seconds. Building from
    events also refuses aliases and excess depth where they occur, before anything grows.
    """
    loader = _YamlLoader(raw)
    try:
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # DocumentStart
        value = _YamlBuilder(loader).build()
        loader.get_event()  # DocumentEnd
        if not loader.check_event(yaml.StreamEndEvent):
            raise _yaml_error("expected a single document in the stream",
                              loader.peek_event())
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: invalid UTF-8, over 4,300 digits
        raise bad_request(f"the body of the request is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return check_document(value)


def _yaml_error(problem: str, event: Any) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(problem=problem, problem_mark=event.start_mark)


class _YamlBuilder:
    """One node's events to JSON values: dicts and lists built directly, scalars resolved
    and constructed as PyYAML's safe loader does."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.stack: list[list[Any]] = []  # [container, pending mapping key, key in parent]

    def build(self) -> Any:
        for count in itertools.count():
            if not count % 256:
                time.sleep(0)  # lets the event loop's thread take the GIL now, not in 5 ms
            event = self.loader.get_event()
            if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                done = self.stack.pop()[0]
                if not self.stack:
                    return done
                continue
            if isinstance(event, yaml.ScalarEvent):
                value, nested = self._scalar(event), False
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                value, nested = self._collection(event), True
            else:  # an alias: a few hundred bytes of them expand to gigabytes
                raise _yaml_error("YAML aliases are not allowed", event)
            if not self.stack and not nested:
                return value
            key = self._place(value, nested, event) if self.stack else None
            if nested:
                if len(self.stack) >= MAX_DEPTH:
                    raise _too_deep(self._path(key), MAX_DEPTH)
                self.stack.append([value, _NO_KEY, key])

    def _place(self, value: Any, nested: bool, event: Any) -> Any:
        """Put ``value`` into the innermost container; its key there (None: it is a key)."""
        parent = self.stack[-1]
        container = parent[0]
        if isinstance(container, list):
            container.append(value)
            return len(container) - 1
        if parent[1] is _NO_KEY:
            if nested:
                raise _yaml_error("only scalars may be mapping keys", event)
            parent[1] = value
            return None
        key, parent[1] = parent[1], _NO_KEY
        container[key] = value
        return key

    @staticmethod
    def _collection(event: Any) -> Any:
        if event.tag not in _COLLECTION_TAGS:
            raise _yaml_error(f"the YAML tag {_short(event.tag)} is not supported", event)
        return {} if isinstance(event, yaml.MappingStartEvent) else []

    def _scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR_TAG:
            return event.value
        construct = self.loader.yaml_constructors.get(tag)
        if construct is None:
            raise _yaml_error(f"the YAML tag {_short(str(tag))} is not supported", event)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        return construct(self.loader, node)

    def _path(self, key: Any) -> str:
        path: _Path = None
        for frame in [*self.stack[1:], [None, None, key]]:
            path = (path, frame[2])
        return _render(path)


def decode_yaml(raw: bytes) -> Any:
    """Any YAML document, checked (JSON on the fast path)."""
    value = decode_json(raw) if isinstance(raw, CheckedBody) else _decode_json_candidate(raw)
    return _decode_yaml_text(raw) if value is _NOT_JSON else value


def _decode_protobuf(raw: bytes) -> Any:
    return check_document(protobuf.decode(raw))


def parse_yaml_object(raw: bytes) -> dict[str, Any]:
    """A YAML (or JSON) object, on the calling thread: for the registry's apply path."""
    return _require_object(decode_yaml(raw))


def _require_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request("the body of the request must be a JSON or YAML object")
    return value


def syntax_of(content_type: str) -> str:
    """``json``, ``yaml`` or ``protobuf`` for a body's media type; 415 for anything else."""
    if content_type in _YAML_TYPES:
        return "yaml"
    if content_type == PROTOBUF:
        return "protobuf"
    if content_type not in _JSON_TYPES:
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format ({content_type}) - "
                       "accepted media types include: application/json, application/yaml")
    return "json"


# --------------------------------------------------------------------------- off the loop


class _Pool:
    """Worker threads, created on first use; ``limit`` bounds the calls queued or running."""

    def __init__(self, name: str, threads: int, limit: int | None = None) -> None:
        self.name = name
        self.threads = threads
        self.limit = limit
        self.pending = 0  # only touched on the event loop
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        if self.limit is not None and self.pending >= self.limit:
            raise ApiError(429, "TooManyRequests", f"too many {self.name} request bodies are "
                           "being parsed; please try again later (or send JSON)", retry_after=1)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, functools.partial(func, *args))
        finally:
            self.pending -= 1


_JSON_POOL = _Pool("JSON", JSON_THREADS)
_YAML_POOL = _Pool("YAML", YAML_THREADS, YAML_QUEUE)


async def off_loop(func: Callable[..., T], *args: Any) -> T:
    """Other CPU work on a body (a walk over up to 3 MiB of values), in the same threads."""
    return await _JSON_POOL.run(func, *args)


async def parse_document(raw: bytes, syntax: str) -> Any:
    """Any document of ``syntax`` (see :func:`syntax_of`), parsed and checked off the loop
    (a small JSON or protobuf body on it: see :data:`INLINE_BYTES`)."""
    if len(raw) <= INLINE_BYTES and syntax != "yaml":
        return _decode_protobuf(raw) if syntax == "protobuf" else decode_json(raw)
    if syntax == "protobuf":
        return await _JSON_POOL.run(_decode_protobuf, raw)
    if syntax == "json":
        return await _JSON_POOL.run(decode_json, raw)
    value = await _JSON_POOL.run(_decode_json_candidate, raw)
    if value is _NOT_JSON:
        value = await _YAML_POOL.run(_decode_yaml_text, raw)
    return value


async def parse_object(raw: bytes, content_type: str) -> dict[str, Any]:
    """A create, update or review body: JSON, YAML or protobuf by its media type."""
    return _require_object(await parse_document(raw, syntax_of(content_type)))


async def parse_patch(raw: bytes, media: str) -> CheckedBody:
    """A patch body, checked off the loop, as JSON the registry parses again cheaply."""
    document = await parse_document(raw, "yaml" if media == APPLY_PATCH else "json")
    return CheckedBody(await _JSON_POOL.run(orjson.dumps, document))
