"""Translate OpenStack's statuses and exceptions into the provider contract's vocabulary.

Controllers decide from ``State`` and the typed ``ProviderError`` whether to wait, retry or
report a terminal failure, so this mapping decides user-visible behaviour: a quota error must
not look like an outage (it needs a human), and an outage must not look like a bad request
(it heals by itself). The functions are pure so they are unit-tested without a cloud.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions

from ..base import (
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
    State,
)

_PENDING = {
    "build", "building", "creating", "downloading", "uploading", "pending_create",
    "pending_update", "reserved", "attaching", "detaching", "extending", "retyping",
    "reboot", "hard_reboot", "rebuild", "resize", "verify_resize", "revert_resize",
    "migrating", "password", "backing-up", "restoring-backup", "awaiting-transfer",
    "maintenance", "unshelving", "shelving",
}
# "down" is ACTIVE on purpose: Neutron reports DOWN for admin-disabled networks and for
# floating IPs without an L3 agent; the resource exists as asked, and status says no more.
_ACTIVE = {
    "active", "available", "in-use", "online", "down", "shutoff", "stopped", "paused",
    "suspended", "shelved", "shelved_offloaded", "rescue", "degraded", "no_monitor",
}
_DELETING = {"deleting", "pending_delete", "deleted", "soft_deleted"}

_QUOTA = re.compile(r"quota exceeded|overquota|over quota|exceeds available quota|"
                    r"quota.*(exceed|reached)|exceeded.*quota|maximum number of .* exceeded",
                    re.IGNORECASE)


def map_state(status: str | None) -> State:
    """OpenStack's per-service status words → the provider-neutral lifecycle.

    Unknown words count as PENDING: the controller keeps polling instead of declaring a
    resource broken because a newer release invented a transitional state.
    """
    word = (status or "").strip().lower()
    if word.startswith("error"):
        return "ERROR"
    if word in _DELETING:
        return "DELETING"
    if word in _ACTIVE:
        return "ACTIVE"
    return "PENDING"


def fault_message(fault: Any) -> str:
    """Nova's ``fault`` ({message, code, details}) or any error text, as one short line."""
    if isinstance(fault, dict):
        message = str(fault.get("message") or "")
        code = fault.get("code")
        return f"{message} (code {code})" if code and message else message
    return str(fault or "")


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    if code is None:
        response = getattr(exc, "response", None)
        code = getattr(response, "status_code", None)
    return int(code) if isinstance(code, int) else None


def _describe(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    text = str(exc) or exc.__class__.__name__
    return f"{text}: {details}" if details and str(details) not in text else text


def translate(exc: BaseException) -> ProviderError:
    """One openstacksdk/keystoneauth/requests exception → one typed provider error.

    Order matters: quota wording is checked before the status code because services disagree
    on it (Nova answers 403, Neutron 409 OverQuota, Cinder 413).
    """
    if isinstance(exc, ProviderError):
        return exc
    message = _describe(exc)
    code = _status_code(exc)
    if _QUOTA.search(message) or code == 413:
        return QuotaExceeded(message)
    if isinstance(exc, os_exceptions.NotFoundException | ks_exceptions.NotFound) or code == 404:
        return NotFound(message)
    if isinstance(exc, os_exceptions.ConflictException) or code == 409:
        return Conflict(message)
    if isinstance(exc, os_exceptions.ResourceTimeout | ks_exceptions.ConnectionError
                  | requests.exceptions.ConnectionError | requests.exceptions.Timeout
                  | TimeoutError | ConnectionError):
        return BackendUnavailable(message)
    if code == 501:
        # "Not Implemented": the backend will never do this (Octavia's answer to an option its
        # provider lacks, e.g. SOURCE_IP_PORT on amphora); retrying cannot help, a spec
        # change can.
        return InvalidRequest(f"the OpenStack cloud does not support this: {message}")
    if code is not None and code >= 500:
        return BackendUnavailable(message)
    if code in (401, 403) or isinstance(exc, ks_exceptions.Unauthorized):
        # Retrying does not fix wrong or insufficient credentials; a human must.
        return InvalidRequest(f"not permitted by the OpenStack cloud: {message}")
    if isinstance(exc, os_exceptions.EndpointNotFound | ks_exceptions.EndpointNotFound):
        return InvalidRequest(f"the OpenStack cloud does not offer this service: {message}")
    if code is not None and 400 <= code < 500:
        return InvalidRequest(message)
    if isinstance(exc, os_exceptions.InvalidRequest | os_exceptions.BadRequestException
                  | ValueError):
        return InvalidRequest(message)
    # Anything else (SDK hiccups, discovery failures) is treated as transient: retried with
    # backoff rather than reported as the user's fault.
    return BackendUnavailable(message)
