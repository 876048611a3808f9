"""Generic KRM semantics for every kind: the "registry" between HTTP and the store.

One flow serves built-in kinds and custom resources alike (Kubernetes' generic registry):
admission (prune, default, validate) → metadata rules → optimistic concurrency → one store
transaction. Nothing here knows about HTTP; the handlers translate requests into these calls,
and in-process controllers (garbage collector, namespace finalizer) use them directly.
"""

from __future__ import annotations

import builtins
import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..kinds.catalog import Catalog
from ..kinds.kind import ResourceType
from ..kinds.structural import CompiledSchema, unknown_field_message
from ..machinery import errors
from ..machinery.errors import ApiError, Cause
from ..machinery.metadata import carry_server_fields, now, spec_changed, validate_metadata
from ..machinery.selectors import FieldSelector, LabelSelector
from ..machinery.user import User
from ..store.base import (
    Compacted,
    Key,
    KeyExists,
    KeyNotFound,
    Requirement,
    RevisionConflict,
    Store,
    decode_continue,
    encode_continue,
    encoded_size,
)
from .apply import server_side_apply, update_managed_fields
from .patch import apply_patch

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
RACE_RETRIES = 5
"""Attempts of a patch, apply or delete without a resourceVersion precondition when a
concurrent write wins the race (kube retries such writes as well)."""
MAX_COMPILED_SCHEMAS = 4096
FILTER_BATCH = 500
MAX_OBJECT_BYTES = 1536 * 1024
"""Largest stored object (JSON), etcd's default: larger ones belong elsewhere, and every
list, watch and cache pays for each byte (``limits.maxObjectBytes``)."""


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    warnings: builtins.list[str] = field(default_factory=list)
    user: User | None = None
    """Who writes; admission plugins (e.g. RBAC escalation checks) decide with it."""


Admission = Callable[[ResourceType, dict[str, Any], dict[str, Any] | None, WriteOptions], None]
"""A check on the final object of a write; raises ApiError to refuse it (nothing is stored)."""
StorageCheck = Callable[[ResourceType, dict[str, Any], dict[str, Any] | None, int,
                         WriteOptions], None]
"""A check on what a write stores: the object as it will be stored and its encoded size in
bytes (storage quotas); raises ApiError to refuse it."""


@dataclass
class ListOptions:
    label_selector: LabelSelector | None = None
    field_selector: FieldSelector | None = None
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


@dataclass
class DeleteOptions:
    propagation: str = ""  # Background | Foreground | Orphan
    precondition_uid: str = ""
    precondition_rv: str = ""
    dry_run: bool = False


@dataclass
class PreparedCreate:
    """An admitted create, ready for the store (see :meth:`Resources.prepare_create`)."""

    rt: ResourceType
    key: Key
    obj: dict[str, Any]
    require: Requirement | None = None
    done: dict[str, Any] | None = None
    """The answer without a write (a dry run)."""

    def exists(self) -> ApiError:
        return errors.already_exists(self.rt.plural, self.key.name, self.rt.group)


class Resources:
    """CRUD with Kubernetes semantics over a :class:`Store`, for any ResourceType."""

    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog
        self._schemas: dict[int, tuple[dict[str, Any], CompiledSchema]] = {}
        self.admission: builtins.list[Admission] = []
        self.max_object_bytes = MAX_OBJECT_BYTES
        self.storage_checks: builtins.list[StorageCheck] = []

    # -- helpers ---------------------------------------------------------------------------
    def compiled(self, rt: ResourceType) -> CompiledSchema:
        """The kind's compiled schema, compiled once per schema object. The entry keeps the
        schema itself: an id() is reused once a replaced CRD's schema is freed, and must
        not then find the old one's compiled form."""
        found = self._schemas.get(id(rt.schema))
        if found is None or found[0] is not rt.schema:
            if len(self._schemas) > MAX_COMPILED_SCHEMAS:  # CRDs replaced many times
                self._schemas.clear()
            found = self._schemas[id(rt.schema)] = (rt.schema, CompiledSchema(rt.schema))
        return found[1]

    @staticmethod
    def key(rt: ResourceType, namespace: str, name: str) -> Key:
        return Key(rt.storage_resource, namespace if rt.namespaced else "", name)

    @staticmethod
    def present(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as served in ``rt``'s version (versions share storage)."""
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        return obj

    def _not_found(self, rt: ResourceType, name: str) -> ApiError:
        return errors.not_found(rt.plural, name, rt.group)

    # -- reads -----------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.present(rt, self.store.get(self.key(rt, namespace, name)))
        except KeyNotFound:
            raise self._not_found(rt, name) from None

    def list(self, rt: ResourceType, namespace: str | None,
             opts: ListOptions) -> dict[str, Any]:
        ns = namespace if rt.namespaced else None
        revision, after = self._list_start(opts)
        name = opts.field_selector.exact("metadata.name") if opts.field_selector else None
        if opts.field_selector and (only_ns := opts.field_selector.exact("metadata.namespace")):
            ns = only_ns if ns is None or ns == only_ns else "\0"
        try:
            if self._filtered(opts):
                items, snapshot, last = self._list_filtered(rt, ns, name, opts, revision, after)
            else:
                page = self.store.list(rt.storage_resource, ns, limit=opts.limit, after=after,
                                       revision=revision, name=name)
                items, snapshot, last = page.items, page.revision, page.continue_after
        except Compacted as exc:
            raise errors.gone("The provided continue parameter is too old to display a "
                              "consistent list result. You can start a new list without the "
                              "continue parameter.") from exc
        meta: dict[str, Any] = {"resourceVersion": str(snapshot)}
        if last is not None:
            meta["continue"] = encode_continue(snapshot, last)
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta,
                "items": [self.present(rt, item) for item in items]}

    @staticmethod
    def _filtered(opts: ListOptions) -> bool:
        return bool((opts.label_selector and not opts.label_selector.empty)
                    or opts.field_selector)

    def _list_start(self, opts: ListOptions) -> tuple[int, tuple[str, str] | None]:
        if opts.continue_token:
            try:
                return decode_continue(opts.continue_token)
            except ValueError:
                raise errors.bad_request("continue key is not valid: the continue token "
                                         "is malformed") from None
        exact = opts.resource_version_match == "Exact"
        if exact and not opts.resource_version.isdigit():
            raise errors.bad_request("resourceVersionMatch=Exact requires a resourceVersion")
        if opts.resource_version not in ("", "0"):
            if not opts.resource_version.isdigit():
                raise errors.bad_request(f'invalid resourceVersion "{opts.resource_version}"')
            if int(opts.resource_version) > self.store.current_revision():
                # kube's answer to a revision this store has not reached (yet), also for
                # Exact: the state at a future revision is not known
                raise ApiError(504, "Timeout", "Too large resource version: "
                               f"{opts.resource_version}", retry_after=1)
        return (int(opts.resource_version), None) if exact else (0, None)

    def _list_filtered(self, rt: ResourceType, ns: str | None, name: str | None,
                       opts: ListOptions, revision: int, after: tuple[str, str] | None
                       ) -> tuple[builtins.list[dict[str, Any]], int, tuple[str, str] | None]:
        """Scan in batches until ``limit`` matches; the continue key is the last scanned."""
        snapshot = revision or self.store.current_revision()
        items: builtins.list[dict[str, Any]] = []
        while True:
            page = self.store.list(rt.storage_resource, ns, limit=FILTER_BATCH, after=after,
                                   revision=snapshot, name=name)
            for obj in page.items:
                meta = obj["metadata"]
                after = (meta.get("namespace", ""), meta["name"])
                if self.matches(obj, opts):
                    items.append(obj)
                    if opts.limit and len(items) == opts.limit:
                        more = page.continue_after is not None or obj is not page.items[-1]
                        return items, snapshot, after if more else None
            if page.continue_after is None:
                return items, snapshot, None

    @staticmethod
    def matches(obj: dict[str, Any], opts: ListOptions) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        if opts.label_selector and not opts.label_selector.matches(labels):
            return False
        return not (opts.field_selector and not opts.field_selector.matches(obj))

    # -- create ----------------------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str, body: dict[str, Any],
               opts: WriteOptions) -> dict[str, Any]:
        prepared = self.prepare_create(rt, namespace, body, opts)
        if prepared.done is not None:
            return prepared.done
        try:
            stored = self.store.create(prepared.key, prepared.obj, prepared.require)
        except KeyExists:
            raise prepared.exists() from None
        return self.present(rt, stored)

    async def commit_create(self, prepared: PreparedCreate) -> dict[str, Any]:
        """Store a create :meth:`prepare_create` admitted, from a coroutine: the event loop
        serves other requests while the write waits for its (group) commit."""
        if prepared.done is not None:
            return prepared.done
        try:
            stored = await self.store.create_async(prepared.key, prepared.obj,
                                                   prepared.require)
        except KeyExists:
            raise prepared.exists() from None
        return self.present(prepared.rt, stored)

    def prepare_create(self, rt: ResourceType, namespace: str, body: dict[str, Any],
                       opts: WriteOptions) -> PreparedCreate:
        """Everything of a create but the store write: admission, metadata, managed fields,
        the storage checks (a dry run ends here, with its answer in ``done``)."""
        obj = copy.deepcopy(body)
        meta = self._check_identity(rt, namespace, obj)
        if meta.get("resourceVersion"):
            raise errors.invalid(rt.kind, meta.get("name", ""), [Cause(
                "metadata.resourceVersion", "Invalid value: must be empty on create",
                "FieldValueForbidden")], rt.group)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        for server_field in ("uid", "creationTimestamp", "deletionTimestamp", "generation",
                             "deletionGracePeriodSeconds"):
            meta.pop(server_field, None)
        if rt.status_subresource:
            obj.pop("status", None)
        rt.strategy.prepare_for_create(obj)
        self._admit(rt, obj, None, opts)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        if opts.field_manager:
            obj = update_managed_fields(None, obj, opts.field_manager, now(),
                                        schema=rt.schema)
        return self._prepare_store(rt, namespace, obj, opts)

    def _prepare_store(self, rt: ResourceType, namespace: str, obj: dict[str, Any],
                       opts: WriteOptions) -> PreparedCreate:
        meta = obj["metadata"]
        prepared = PreparedCreate(rt, self.key(rt, meta.get("namespace", ""), meta["name"]),
                                  obj)
        self._check_storage(rt, obj, None, opts)
        if opts.dry_run:
            self._check_namespace_open(rt, namespace)
            try:
                self.store.get(prepared.key)
            except KeyNotFound:
                prepared.done = self.present(rt, obj)
                return prepared
            raise prepared.exists()
        # The namespace check runs inside the create's transaction: a separate read
        # transaction per create cost more than the create itself on PostgreSQL.
        if rt.namespaced:
            prepared.require = (Key("core/namespaces", "", namespace),
                                lambda ns: self._namespace_open(rt, namespace, ns))
        return prepared

    def _check_identity(self, rt: ResourceType, namespace: str,
                        obj: dict[str, Any]) -> dict[str, Any]:
        """apiVersion/kind must name this resource; the URL decides the namespace."""
        if obj.get("kind") and obj["kind"] != rt.kind:
            raise errors.bad_request(f"the kind of the object ({obj['kind']}) does not match "
                                     f"the resource ({rt.kind})")
        if obj.get("apiVersion") and obj["apiVersion"] != rt.api_version:
            raise errors.bad_request(f"the API version in the data ({obj['apiVersion']}) does "
                                     f"not match the expected API version ({rt.api_version})")
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.invalid(rt.kind, "", [Cause("metadata", "Invalid value: must be an "
                                                     "object", "FieldValueTypeInvalid")], rt.group)
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return meta

    def _check_namespace_open(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        try:
            ns: dict[str, Any] | None = self.store.get(Key("core/namespaces", "", namespace))
        except KeyNotFound:
            ns = None
        self._namespace_open(rt, namespace, ns)

    @staticmethod
    def _namespace_open(rt: ResourceType, namespace: str, ns: dict[str, Any] | None) -> None:
        """404 without the namespace, 403 while it terminates (as kube-apiserver answers)."""
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"{rt.qualified} is forbidden: unable to create "
                           f"new content in namespace {namespace} because it is being "
                           "terminated", kind=rt.plural, group=rt.group)

    def _admit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
               opts: WriteOptions) -> None:
        """Prune unknown fields, default, validate: 422 with every cause, nothing stored."""
        schema = self.compiled(rt)
        unknown = schema.prune(obj)
        name = obj.get("metadata", {}).get("name", "")
        messages = [unknown_field_message(path) for path in unknown]
        if messages and opts.field_validation == "Strict":
            raise ApiError(400, "BadRequest", f"{rt.kind} in version \"{rt.version}\" cannot be "
                           f"handled as a {rt.kind}: strict decoding error: "
                           f"{', '.join(messages)}",
                           causes=[Cause(p.lstrip("."), m, "FieldValueInvalid")
                                   for p, m in zip(unknown, messages, strict=True)])
        if messages and opts.field_validation == "Warn":
            opts.warnings += messages
        schema.apply_defaults(obj)
        causes = validate_metadata(obj.get("metadata"), dns_label=rt.dns_label_names,
                                   path_segment=rt.path_segment_names)
        causes += schema.validate(obj, old)
        causes += rt.strategy.validate(obj, old, self.catalog)
        if causes:
            raise errors.invalid(rt.kind, name, causes, rt.group)
        for check in self.admission:
            check(rt, obj, old, opts)

    def _check_storage(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                       opts: WriteOptions) -> None:
        """The object size limit (413, as kube answers etcd's "request is too large"), then
        the storage checks. An object already over the limit (lowered since) may shrink."""
        size = encoded_size(obj)
        if size > self.max_object_bytes and (old is None or size > encoded_size(old)):
            name = obj["metadata"].get("name", "")
            raise ApiError(413, "RequestEntityTooLarge",
                           f'{rt.qualified} "{name}" is too large: {size} bytes stored, the '
                           f"limit for one object is {self.max_object_bytes} bytes",
                           group=rt.group, kind=rt.plural, name=name)
        for check in self.storage_checks:
            check(rt, obj, old, size, opts)

    # -- update ----------------------------------------------------------------------------
    def update(self, rt: ResourceType, namespace: str, name: str, body: dict[str, Any],
               opts: WriteOptions, subresource: str = "") -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = self._check_identity(rt, namespace, obj)
        if meta.get("name") != name:
            raise errors.bad_request("the name of the object "
                                     f"({meta.get('name')}) does not match the name on the URL "
                                     f"({name})")
        old = self._get_live(rt, namespace, name)
        wanted_rv = meta.get("resourceVersion")
        if not wanted_rv and not rt.builtin:
            raise errors.invalid(rt.kind, name, [Cause(
                "metadata.resourceVersion", "Invalid value: 0: must be specified for an update",
                "FieldValueRequired")], rt.group)
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise self._conflict(rt, name)
        return self._write_update(rt, old, obj, opts, subresource, managed=True)

    def _get_live(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.store.get(self.key(rt, namespace, name))
        except KeyNotFound:
            raise self._not_found(rt, name) from None

    def _conflict(self, rt: ResourceType, name: str) -> ApiError:
        return errors.conflict(rt.qualified, name, "the object has been modified; please "
                               "apply your changes to the latest version and try again")

    def _write_update(self, rt: ResourceType, old: dict[str, Any], obj: dict[str, Any],
                      opts: WriteOptions, subresource: str, managed: bool) -> dict[str, Any]:
        obj = self._scope_to_subresource(rt, old, obj, subresource)
        carry_server_fields(obj, old)
        rt.strategy.prepare_for_update(obj, old)
        self._admit(rt, obj, old, opts)
        if spec_changed(old, obj):
            obj["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if managed and opts.field_manager:
            obj = update_managed_fields(old, obj, opts.field_manager, now(), subresource,
                                        schema=rt.schema)
        if obj == old:
            return self.present(rt, old)  # no-op updates keep the resourceVersion, like k8s
        self._check_storage(rt, obj, old, opts)
        if opts.dry_run:
            return self.present(rt, obj)
        if old["metadata"].get("deletionTimestamp") and not (
                obj["metadata"].get("finalizers") or rt.strategy.pending_finalizers(obj)):
            return self._finish_deletion(rt, obj, old)
        try:
            stored = self.store.update(self._key_of(rt, old), obj,
                                       int(old["metadata"]["resourceVersion"]))
        except RevisionConflict:
            raise self._conflict(rt, obj["metadata"]["name"]) from None
        except KeyNotFound:
            raise self._not_found(rt, obj["metadata"]["name"]) from None
        return self.present(rt, stored)

    @staticmethod
    def _scope_to_subresource(rt: ResourceType, old: dict[str, Any], obj: dict[str, Any],
                              subresource: str) -> dict[str, Any]:
        """The main resource cannot change status, ``/status`` cannot change anything else."""
        if subresource == "status":
            scoped = copy.deepcopy(old)
            if "status" in obj:
                scoped["status"] = obj["status"]
            else:
                scoped.pop("status", None)
            scoped["metadata"]["resourceVersion"] = obj["metadata"].get("resourceVersion")
            return scoped
        if rt.status_subresource:
            if "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
            else:
                obj.pop("status", None)
        return obj

    def _key_of(self, rt: ResourceType, obj: dict[str, Any]) -> Key:
        meta = obj["metadata"]
        return self.key(rt, meta.get("namespace", ""), meta["name"])

    # -- patch and apply -------------------------------------------------------------------
    def patch(self, rt: ResourceType, namespace: str, name: str, content_type: str,
              body: bytes, opts: WriteOptions, subresource: str = "",
              force: bool = False) -> dict[str, Any]:
        """Apply a patch to the live object; retried on concurrent writes like kube."""
        if content_type == "application/strategic-merge-patch+json" and not rt.builtin:
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml")
        for _ in range(RACE_RETRIES):
            try:
                return self._patch_once(rt, namespace, name, content_type, body, opts,
                                        subresource, force)
            except ApiError as exc:
                if exc.reason != "Conflict" or exc.causes:
                    raise
                conflict = exc
        raise conflict

    def _patch_once(self, rt: ResourceType, namespace: str, name: str, content_type: str,
                    body: bytes, opts: WriteOptions, subresource: str,
                    force: bool) -> dict[str, Any]:
        if content_type == "application/apply-patch+yaml":
            return self._apply(rt, namespace, name, body, opts, subresource, force)
        old = self._get_live(rt, namespace, name)
        patched = apply_patch(content_type, self.present(rt, copy.deepcopy(old)), body,
                              rt.schema)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch must produce an object")
        meta = self._check_identity(rt, namespace, patched)
        if meta.get("name") != name:
            raise errors.bad_request("the name of the object cannot be changed by a patch")
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise self._precondition_conflict(rt, name)
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        return self._write_update(rt, old, patched, opts, subresource, managed=True)

    def _precondition_conflict(self, rt: ResourceType, name: str) -> ApiError:
        error = self._conflict(rt, name)
        error.causes = [Cause("metadata.resourceVersion", "precondition failed",
                              "FieldValueInvalid")]
        return error

    def _apply(self, rt: ResourceType, namespace: str, name: str, body: bytes,
               opts: WriteOptions, subresource: str, force: bool) -> dict[str, Any]:
        from ..machinery.bodies import parse_yaml_object  # local: bodies imports nothing from here

        applied = parse_yaml_object(body)
        if not opts.field_manager:
            raise errors.bad_request("PATCH /apply requires a fieldManager query parameter")
        meta = self._check_identity(rt, namespace, applied)
        if meta.get("name") not in (None, name):
            raise errors.bad_request("the name of the object does not match the name on the "
                                     "URL")
        meta["name"] = name
        try:
            old: dict[str, Any] | None = self.store.get(self.key(rt, namespace, name))
        except KeyNotFound:
            old = None
        merged = server_side_apply(old and self.present(rt, copy.deepcopy(old)), applied,
                                   opts.field_manager, force, rt.schema, now(), subresource)
        if old is None:
            if subresource:
                raise self._not_found(rt, name)
            merged["metadata"].pop("resourceVersion", None)
            return self._create_applied(rt, namespace, merged, opts)
        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return self._write_update(rt, old, merged, opts, subresource, managed=False)

    def _create_applied(self, rt: ResourceType, namespace: str, obj: dict[str, Any],
                        opts: WriteOptions) -> dict[str, Any]:
        manager, opts.field_manager = opts.field_manager, ""
        try:
            return self.create(rt, namespace, obj, opts)
        finally:
            opts.field_manager = manager

    # -- delete ----------------------------------------------------------------------------
    def delete(self, rt: ResourceType, namespace: str, name: str,
               opts: DeleteOptions) -> dict[str, Any]:
        """Delete now, or mark for deletion while finalizers remain (graceful deletion).

        Without a resourceVersion precondition, a write that lands between reading and
        deleting (a controller's status) is not the caller's conflict: like kube's
        GuaranteedUpdate, read again and retry, so a plain DELETE never answers 409."""
        for _ in range(RACE_RETRIES - 1):
            try:
                return self._delete_once(rt, namespace, name, opts)
            except RevisionConflict:
                if opts.precondition_rv:
                    raise self._precondition_conflict(rt, name) from None
        try:
            return self._delete_once(rt, namespace, name, opts)
        except RevisionConflict:
            raise self._conflict(rt, name) from None

    def _delete_once(self, rt: ResourceType, namespace: str, name: str,
                     opts: DeleteOptions) -> dict[str, Any]:
        old = self._get_live(rt, namespace, name)
        meta = old["metadata"]
        if opts.precondition_uid and opts.precondition_uid != meta.get("uid"):
            raise errors.conflict(rt.qualified, name, "Precondition failed: UID in precondition: "
                                  f"{opts.precondition_uid}, UID in object meta: {meta.get('uid')}")
        if opts.precondition_rv and opts.precondition_rv != meta.get("resourceVersion"):
            raise self._precondition_conflict(rt, name)
        finalizers = list(meta.get("finalizers") or [])
        if opts.propagation == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        if opts.propagation == "Orphan" and ORPHAN not in finalizers:
            finalizers.append(ORPHAN)
        pending = finalizers or rt.strategy.pending_finalizers(old)
        if opts.dry_run:
            return self.present(rt, old)
        if not pending:
            try:
                return self.present(rt, self.store.delete(self._key_of(rt, old),
                                                          int(meta["resourceVersion"])))
            except KeyNotFound:
                raise self._not_found(rt, name) from None
        if meta.get("deletionTimestamp") and finalizers == meta.get("finalizers", []):
            return self.present(rt, old)
        obj = copy.deepcopy(old)
        obj["metadata"].update(finalizers=finalizers,
                               deletionTimestamp=meta.get("deletionTimestamp") or now(),
                               deletionGracePeriodSeconds=0)
        if not finalizers:
            obj["metadata"].pop("finalizers")
        rt.strategy.prepare_for_update(obj, old)
        stored = self.store.update(self._key_of(rt, old), obj, int(meta["resourceVersion"]))
        return self.present(rt, stored)

    def _remove(self, rt: ResourceType, old: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.present(rt, self.store.delete(
                self._key_of(rt, old), int(old["metadata"]["resourceVersion"])))
        except RevisionConflict:
            raise self._conflict(rt, old["metadata"]["name"]) from None
        except KeyNotFound:
            raise self._not_found(rt, old["metadata"]["name"]) from None

    def _finish_deletion(self, rt: ResourceType, obj: dict[str, Any],
                         old: dict[str, Any]) -> dict[str, Any]:
        """The last finalizer went away: the object is removed, showing its final state."""
        deleted = self._remove(rt, old)
        obj["metadata"]["resourceVersion"] = deleted["metadata"]["resourceVersion"]
        return self.present(rt, obj)

    def delete_collection(self, rt: ResourceType, namespace: str | None, list_opts: ListOptions,
                          opts: DeleteOptions) -> dict[str, Any]:
        listed = self.list(rt, namespace, ListOptions(list_opts.label_selector,
                                                      list_opts.field_selector))
        deleted = []
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                deleted.append(self.delete(rt, meta.get("namespace", ""), meta["name"], opts))
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return {"kind": rt.list_kind, "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.current_revision())},
                "items": deleted}

    # -- used by in-process controllers ----------------------------------------------------
    def remove_finalizer(self, rt: ResourceType, obj: dict[str, Any], finalizer: str,
                         mutate: Callable[[dict[str, Any]], None] | None = None
                         ) -> dict[str, Any]:
        """Drop ``finalizer`` (and apply ``mutate``); removes the object if it was the last."""
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers", [])
                                         if f != finalizer]
        if mutate:
            mutate(new)
        if not new["metadata"]["finalizers"]:
            del new["metadata"]["finalizers"]
        meta = obj["metadata"]
        old = self._get_live(rt, meta.get("namespace", ""), meta["name"])
        if old["metadata"]["resourceVersion"] != meta["resourceVersion"]:
            raise self._conflict(rt, meta["name"])
        return self._write_update(rt, old, new, WriteOptions(field_validation="Ignore"), "",
                                  managed=False)
