"""The kinds CustomResourceDefinitions declare, served by every replica from the CRD informer.

Why an informer and not the write: a CRD written through one replica must be served by every
replica (issue 20: the others listed the CRD but answered 404 for its kind, because only the
writing process reloaded). Each replica now learns every CRD, its own writes included, from
the same watch; the writing request waits until its replica's informer has the write
(:func:`crds_include`), so its client can use the new kind at once, as before.
"""

from __future__ import annotations

from typing import Any

from ..kinds.apiextensions import resource_types
from ..kinds.catalog import Catalog
from .informers import Handlers, Informer, Informers

CRDS = "apiextensions.k8s.io/customresourcedefinitions"
WAIT_SECONDS = 5.0


def serve_crds(informers: Informers, catalog: Catalog) -> Informer:
    """Make ``catalog`` follow the CRD informer: what a CRD declares is served from its
    add or update on, and nothing of it after its delete."""
    def serve(crd: dict[str, Any]) -> None:
        catalog.set_crd(crd["metadata"]["name"], resource_types(crd))

    def withdraw(crd: dict[str, Any]) -> None:
        catalog.set_crd(crd["metadata"]["name"], [])

    def update(old: dict[str, Any], new: dict[str, Any]) -> None:
        """Only a changed spec changes what is served: a label, annotation or status
        written to a CRD (GitOps tools annotate what they apply) keeps the catalog's
        generation, so discovery and OpenAPI stay cached."""
        if old.get("spec") != new.get("spec"):
            serve(new)

    informer = informers.informer(CRDS)
    informer.add_handlers(Handlers(on_add=serve, on_update=update, on_delete=withdraw))
    return informer


async def crds_include(informers: Informers, revision: int) -> bool:
    """Wait until this replica serves the CRDs as of ``revision`` (a CRD write's); False
    if its watch did not deliver that within :data:`WAIT_SECONDS`."""
    return await informers.informer(CRDS).wait_for(revision, WAIT_SECONDS)
