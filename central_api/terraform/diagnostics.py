"""The server's refusals as Terraform diagnostics that name the field and the reason.

A 422 becomes one diagnostic per cause, pointing at the attribute (Terraform then underlines
the configuration line) and naming the API field and the Terraform attribute; a 403 says who
may not do what; a 409 on create says the object exists and how to import it. Messages are
the server's: they never hold a credential (the SDK redacts nothing because the server sends
none), and the token the provider uses is never put into one.
"""

from __future__ import annotations

from tf.utils import Diagnostics

from ..client import (
    AlreadyExists,
    ApiError,
    ClientError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Unauthorized,
    WaitTimeout,
)
from .schema import Node
from .values import api_path


def report(diags: Diagnostics, exc: Exception, what: str, root: Node | None = None,
           import_id: str = "") -> None:
    """Add ``exc`` (raised while doing ``what``, e.g. "create Tenant acme") to ``diags``."""
    if isinstance(exc, Invalid) and exc.causes:
        for cause in exc.causes:
            path = api_path(root, cause.field) if root is not None and cause.field else []
            attribute = ".".join(str(s[0]) if isinstance(s, tuple) else s for s in path)
            where = f"{cause.field} (attribute {attribute})" if attribute else cause.field
            diags.add_error(f"Invalid {where or 'object'}: {cause.message}",
                            detail=f"The server refused to {what}: {exc.message}",
                            path=path or None)
        return
    if isinstance(exc, AlreadyExists):
        hint = f' Import it with: terraform import ADDRESS "{import_id}"' if import_id else ""
        diags.add_error(f"Cannot {what}: it already exists (409 AlreadyExists)",
                        detail=f"{exc.message}.{hint}")
        return
    diags.add_error(*_summary(exc, what))


def _summary(exc: Exception, what: str) -> tuple[str, str]:
    if isinstance(exc, Forbidden):
        return (f"Forbidden: not allowed to {what} (403)",
                f"{exc.message}. The provider's credential lacks the RBAC rights for this.")
    if isinstance(exc, Unauthorized):
        return (f"Unauthorized to {what} (401)",
                f"{exc.message}. Check the provider's token or kubeconfig.")
    if isinstance(exc, Conflict):
        return (f"Conflict: cannot {what} (409)", exc.message)
    if isinstance(exc, NotFound):
        return (f"Cannot {what}: not found (404)", exc.message)
    if isinstance(exc, ApiError):
        return (f"Cannot {what}: {exc.code} {exc.reason}", exc.message)
    if isinstance(exc, WaitTimeout):
        return (f"Timed out: {what}", str(exc))
    if isinstance(exc, ClientError):
        return (f"Cannot {what}: the SCS API is not reachable or not usable", str(exc))
    return (f"Cannot {what}: {type(exc).__name__}", str(exc))
