"""How a backend resource names and marks the Central API object it realises.

Every resource carries the owner's UID twice: in its *name* (``scs-<uid>``, unique per owner,
so a keypair — whose name is its identity — is unique per project too) and in a *tag* or
metadata entry ``scs-owner-uid=<uid>``. ``find`` searches by the tag (Neutron, Nova, Octavia)
or metadata (Cinder) and falls back to the exact name, so a create interrupted between
"resource exists" and "tag set" is still found on retry instead of duplicated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

OWNER_KEY = "scs-owner-uid"
NAME_PREFIX = "scs-"


def owner_tag(owner_uid: str) -> str:
    """The tag (Neutron/Nova/Octavia) that marks a resource as realising ``owner_uid``."""
    return f"{OWNER_KEY}={owner_uid}"


def resource_name(owner_uid: str, suffix: str = "") -> str:
    """The backend name: ``scs-<uid>`` or ``scs-<uid>-<suffix>`` for child resources."""
    return f"{NAME_PREFIX}{owner_uid}-{suffix}" if suffix else f"{NAME_PREFIX}{owner_uid}"


def owner_metadata(owner_uid: str) -> dict[str, str]:
    """The metadata entry for services without tags (Cinder volumes) or as Nova backup."""
    return {OWNER_KEY: owner_uid}


def is_owned_by(resource: Any, owner_uid: str) -> bool:
    """Whether a backend object carries ``owner_uid`` in its tags, metadata or name."""
    tags: Iterable[str] = getattr(resource, "tags", None) or []
    if owner_tag(owner_uid) in tags:
        return True
    metadata: Mapping[str, Any] = getattr(resource, "metadata", None) or {}
    if metadata.get(OWNER_KEY) == owner_uid:
        return True
    return bool(getattr(resource, "name", None) == resource_name(owner_uid))
