"""The store contract: a revisioned key-value store of JSON objects.

The API server needs etcd's model, not a CRUD table: every write gets the next global
revision (which becomes the object's ``resourceVersion``), old revisions stay readable until
compaction (so paginated lists see one consistent snapshot), and watchers replay every change
after a given revision in order. Both SQL back ends implement this one class contract, and the
same contract tests run against both.

Rows form an MVCC log (the design k3s' kine uses): each write appends a version row; the row it
replaces gets ``superseded = <new revision>``; a delete appends a tombstone. The watch event type
is stored with the row, so the log *is* the event history. Every revision also carries a
``stamp`` (when it was written; :attr:`Event.stamp`), which never decreases with the revision.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import builtins
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
EVENT_CODES: dict[EventType, int] = {"ADDED": 0, "MODIFIED": 1, "DELETED": 2}
EVENT_NAMES: dict[int, EventType] = {v: k for k, v in EVENT_CODES.items()}


class StoreError(Exception):
    """Base class: the API layer maps these onto Status errors."""


class KeyNotFound(StoreError):
    pass


class KeyExists(StoreError):
    pass


class RevisionConflict(StoreError):
    """The object changed since the revision the caller based its write on."""


class StoreUnavailable(StoreError):
    """The database cannot be reached; the request may succeed when retried."""


class Compacted(StoreError):
    """The requested revision is older than the oldest one still kept."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (oldest kept: {compacted})")
        self.requested = requested
        self.compacted = compacted


@dataclass(frozen=True, order=True)
class Key:
    """Identifies one object: ``resource`` is ``group/plural`` (``core/namespaces``)."""

    resource: str
    namespace: str
    name: str


@dataclass(frozen=True)
class Event:
    type: EventType
    revision: int
    key: Key
    object: dict[str, Any]
    stamp: float = 0.0
    """When the revision was written: seconds since the epoch, microsecond precision, from
    :func:`central_api.machinery.clock.now` inside the write transaction and never smaller
    than the stamp of an earlier revision (metering bills from these). 0.0 when unknown:
    revisions written before stamps existed, or events not read from the store's log."""


@dataclass(frozen=True)
class Page:
    items: builtins.list[dict[str, Any]]
    revision: int
    """The snapshot revision the page was read at (the list's resourceVersion)."""
    continue_after: tuple[str, str] | None
    """``(namespace, name)`` of the last item when more items remain, else None."""


Requirement = tuple[Key, Callable[[dict[str, Any] | None], None]]
"""(key of another object, check of its current value or None that raises to refuse)."""

Transformer = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]
"""(encode, decode) applied to stored values of one resource, e.g. encryption at rest."""


MICROS = 1_000_000


def to_micros(seconds: float) -> int:
    """Stamps are stored as whole microseconds since the epoch (exact sums and comparisons);
    a float of seconds converts back and forth without drift (``to_micros(m / MICROS) == m``
    for every stamp of this era: doubles carry 15-16 significant digits)."""
    return round(seconds * MICROS)


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def encoded_size(obj: dict[str, Any]) -> int:
    """About the bytes ``obj`` takes in the store, for size limits and quotas: ``orjson``
    (fast) where it can encode the object, else :func:`dumps` (integers beyond 64 bits)."""
    try:
        return len(orjson.dumps(obj))
    except TypeError:
        return len(dumps(obj))


def loads(raw: bytes) -> dict[str, Any]:
    """Decode a stored value. ``orjson`` decodes these objects ~3x faster than ``json`` (it was
    most of the CPU of every list in the profiles) and yields the same values; the few
    documents it refuses — ``NaN``/``Infinity`` tokens or integers beyond 64 bits, which
    :func:`dumps` can write — go through ``json`` as before."""
    try:
        value: dict[str, Any] = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = json.loads(raw)
    return value


def encode_continue(revision: int, after: tuple[str, str]) -> str:
    """An opaque continue token: the snapshot revision and the last key returned."""
    raw = json.dumps({"rv": revision, "ns": after[0], "name": after[1]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """Inverse of :func:`encode_continue`; raises ValueError on anything malformed."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        rv, ns, name = data["rv"], data["ns"], data["name"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("invalid continue token") from exc
    if not (isinstance(rv, int) and isinstance(ns, str) and isinstance(name, str)) or rv < 1:
        raise ValueError("invalid continue token")
    return rv, (ns, name)


class Store(abc.ABC):
    """A revisioned object store. All methods are thread-safe; each write is one transaction."""

    blocking = False
    """Calls wait on a network round trip (PostgreSQL): the HTTP handlers run them off the
    event loop. False for SQLite, which answers from a local file in microseconds."""

    commits_wait = False
    """A commit waits for a disk sync or the network (SQLite with ``synchronous=FULL``,
    PostgreSQL): a coroutine should not write on the event loop (:func:`.offload.off_loop_write`)
    even where reads are fast enough to run there."""

    def __init__(self) -> None:
        self._transformers: dict[str, Transformer] = {}
        self._listeners: builtins.list[Callable[[], None]] = []

    # -- configuration ---------------------------------------------------------------------
    def set_transformer(self, resource: str, transformer: Transformer) -> None:
        """Encode values of ``resource`` before they reach disk (e.g. encrypt Secrets)."""
        self._transformers[resource] = transformer

    def add_write_listener(self, callback: Callable[[], None]) -> None:
        """Called after every committed transaction of writes in this process (once per
        group-committed batch), from the thread that committed it (wakes the watch hub)."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    def _encode(self, resource: str, obj: dict[str, Any]) -> bytes:
        raw = dumps(obj)
        transformer = self._transformers.get(resource)
        return transformer[0](raw) if transformer else raw

    def _decode(self, resource: str, raw: bytes) -> dict[str, Any]:
        transformer = self._transformers.get(resource)
        return loads(transformer[1](raw) if transformer else raw)

    # -- writes ----------------------------------------------------------------------------
    @abc.abstractmethod
    def create(self, key: Key, obj: dict[str, Any],
               require: Requirement | None = None) -> dict[str, Any]:
        """Store a new object; sets ``metadata.resourceVersion``. Raises KeyExists.

        ``require`` checks another object inside the same write transaction (e.g. that the
        namespace exists and is not terminating): its callback gets that object's current
        value, or None, and raises to refuse the create."""

    async def create_async(self, key: Key, obj: dict[str, Any],
                           require: Requirement | None = None) -> dict[str, Any]:
        """:meth:`create` for a coroutine: the event loop goes on while the write waits for
        its commit (the SQL stores hand it to their group committer)."""
        if not self.blocking:
            return self.create(key, obj, require)
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.create, key, obj, require))

    @abc.abstractmethod
    def update(self, key: Key, obj: dict[str, Any],
               expected_revision: int | None) -> dict[str, Any]:
        """Replace an object. With ``expected_revision`` the write only succeeds if the current
        version has exactly that revision (RevisionConflict otherwise). Raises KeyNotFound."""

    @abc.abstractmethod
    def delete(self, key: Key, expected_revision: int | None = None) -> dict[str, Any]:
        """Remove an object; returns its last state stamped with the deletion revision."""

    # -- reads -----------------------------------------------------------------------------
    @abc.abstractmethod
    def get(self, key: Key) -> dict[str, Any]:
        """The current version. Raises KeyNotFound."""

    @abc.abstractmethod
    def list(self, resource: str, namespace: str | None = None, *, limit: int = 0,
             after: tuple[str, str] | None = None, revision: int = 0,
             name: str | None = None) -> Page:
        """Objects ordered by (namespace, name). ``revision`` 0 reads the latest state;
        otherwise the state at that revision (Compacted if it is gone). ``after`` continues
        a previous page; ``limit`` 0 means all."""

    @abc.abstractmethod
    def iter_list(self, resource: str, namespace: str | None, revision: int,
                  after: tuple[str, str] | None, batch: int) -> Iterator[dict[str, Any]]:
        """All objects at ``revision`` after ``after``, fetched in batches (for filtered lists)."""

    @abc.abstractmethod
    def events_since(self, revision: int, limit: int = 1000) -> builtins.list[Event]:
        """Every change with a revision greater than ``revision``, oldest first.
        Raises Compacted if changes after ``revision`` may already be gone."""

    def changes_since(self, resource: str, namespace: str, revision: int
                      ) -> tuple[builtins.list[Event], int]:
        """The changes to ``resource`` in ``namespace`` after ``revision``, oldest first, and
        the revision they are complete up to. Raises Compacted like :meth:`events_since`.

        Why: an in-memory view of one resource (the sandbox's quota sums and IP reservations)
        stays exact by applying only what changed since it last looked, instead of listing
        and decoding every object again. Back ends override this with a query that skips
        other resources without decoding them."""
        out: builtins.list[Event] = []
        while True:
            events = self.events_since(revision)
            if not events:
                return out, revision
            out += [e for e in events
                    if e.key.resource == resource and e.key.namespace == namespace]
            revision = events[-1].revision

    @abc.abstractmethod
    def current_revision(self) -> int: ...

    @abc.abstractmethod
    def compacted_revision(self) -> int: ...

    @abc.abstractmethod
    def compact(self, revision: int) -> int:
        """Forget versions superseded at or before ``revision``; returns rows removed."""

    @abc.abstractmethod
    def close(self) -> None: ...
