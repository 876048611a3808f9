"""The SCS status-page REST API (spec 1.1.2) as a view of the status.scs.community kinds.

See :mod:`.routes` for the operations, :mod:`.views` for the translation between KRM objects
and the API's JSON, and docs/status.md for the operator's side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...config import StatusConfig
from .routes import StatusPage

if TYPE_CHECKING:
    from ..app import Mount, ServerContext


def status_page_api(ctx: ServerContext, config: StatusConfig) -> Mount:
    """The mount serving the API under ``config.path_prefix`` (register it in
    ``ctx.mounts``); it asks for the status kinds' informers, so build it before the
    server starts to have them synced with the others."""
    return StatusPage(ctx, config)


__all__ = ["StatusPage", "status_page_api"]
