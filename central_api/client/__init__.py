"""The Python SDK of the SCS Central API (docs/sdk.md).

``Client`` (synchronous) and ``AsyncClient`` speak to the API with a kubeconfig's or an
explicit identity; the kinds' pydantic models (``central_api.kinds.iaas.Server``, ...) are
the typed models, custom resources travel as dicts, and every refusal is an exception
carrying the server's ``Status``.
"""

from __future__ import annotations

from .api import ALL_NAMESPACES, AsyncClient, Client, ObjectList
from .config import BearerToken, Config, ExecAuth, default_kubeconfig, load_kubeconfig
from .errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    ClientError,
    ConfigError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    TLSVerifyError,
    TooManyRequests,
    TransportError,
    Unauthorized,
    WaitTimeout,
)
from .resources import ApiResource, is_ready
from .resources import FullObjectMeta as ObjectMeta
from .transport import WatchEvent

__all__ = [
    "ALL_NAMESPACES", "AlreadyExists", "ApiError", "ApiResource", "AsyncClient", "BadRequest",
    "BearerToken", "Client", "ClientError", "Config", "ConfigError", "Conflict", "ExecAuth",
    "Forbidden", "Gone", "Invalid", "NotFound", "ObjectList", "ObjectMeta", "ServerError",
    "TLSVerifyError", "TooManyRequests", "TransportError", "Unauthorized", "WaitTimeout",
    "WatchEvent", "default_kubeconfig", "is_ready", "load_kubeconfig",
]
