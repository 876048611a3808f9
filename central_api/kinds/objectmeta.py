"""ObjectMeta: the part every object shares, with Kubernetes' merge semantics spelled out.

The patch strategies matter to clients: kubectl computes strategic merge patches for built-in
kinds and server-side apply merges ``ownerReferences`` by ``uid`` and ``finalizers`` as a set.
"""

from __future__ import annotations

from typing import Any

_STRING = {"type": "string"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"},
               "x-kubernetes-map-type": "granular"}

OWNER_REFERENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "name", "uid"],
    "properties": {
        "apiVersion": _STRING, "kind": _STRING, "name": _STRING, "uid": _STRING,
        "controller": {"type": "boolean"},
        "blockOwnerDeletion": {"type": "boolean"},
    },
}

MANAGED_FIELDS_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "manager": _STRING, "operation": _STRING, "apiVersion": _STRING,
        "time": {"type": "string", "format": "date-time"},
        "fieldsType": _STRING,
        "fieldsV1": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "subresource": _STRING,
    },
}

OBJECT_META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Standard object metadata.",
    "properties": {
        "name": {"type": "string", "description": "Unique name within the namespace."},
        "generateName": {"type": "string",
                         "description": "Prefix for a server-generated unique name."},
        "namespace": {"type": "string", "description": "Namespace of a namespaced object."},
        "uid": {"type": "string", "description": "Unique ID set by the server."},
        "resourceVersion": {"type": "string",
                            "description": "Opaque revision for concurrency control."},
        "generation": {"type": "integer", "format": "int64",
                       "description": "Sequence number of desired-state changes."},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "deletionTimestamp": {"type": "string", "format": "date-time"},
        "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
        "labels": {**_STRING_MAP, "description": "Key/value pairs for selection."},
        "annotations": {**_STRING_MAP, "description": "Non-identifying key/value metadata."},
        "finalizers": {"type": "array", "items": _STRING,
                       "x-kubernetes-list-type": "set",
                       "x-kubernetes-patch-strategy": "merge",
                       "description": "Must be empty before the object is removed."},
        "ownerReferences": {"type": "array", "items": OWNER_REFERENCE_SCHEMA,
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["uid"],
                            "x-kubernetes-patch-strategy": "merge",
                            "x-kubernetes-patch-merge-key": "uid",
                            "description": "Objects this one depends on (garbage collection)."},
        "managedFields": {"type": "array", "items": MANAGED_FIELDS_ENTRY_SCHEMA,
                          "description": "Field ownership for server-side apply."},
    },
}
