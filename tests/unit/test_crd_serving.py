"""The catalog follows CRDs through the informer on the real SQLite store and watch hub, and
changes (with its generation, which every cached discovery and OpenAPI document is keyed on)
only when what a CRD serves changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.registry.crds import CRDS, serve_crds
from central_api.registry.informers import Informers
from central_api.registry.resources import Resources, WriteOptions
from central_api.registry.watch import WatchHub
from central_api.store.sqlite import SqliteStore

GROUP = "serving.example.com"


def crd(field: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}", "annotations": annotations or {}},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                         "type": "object", "properties": {field: {"type": "string"}}}}}}}]},
    }


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def test_only_a_changed_spec_changes_what_the_catalog_serves(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    catalog = Catalog(builtin_kinds())
    resources = Resources(store, catalog)
    definitions = catalog.require("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    informers = Informers(catalog)
    informer = serve_crds(informers, catalog)
    assert informer is informers.informer(CRDS)

    def write(body: dict[str, Any]) -> int:
        current = resources.get(definitions, "", body["metadata"]["name"])
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        updated = resources.update(definitions, "", body["metadata"]["name"], body,
                                   WriteOptions())
        return int(updated["metadata"]["resourceVersion"])

    def widget_fields() -> set[str]:
        rt = catalog.lookup(GROUP, "v1", "widgets")
        return set(rt.schema["properties"]["spec"]["properties"]) if rt else set()

    async def scenario() -> None:
        hub = WatchHub(store, poll_seconds=0.05)
        hub.start()
        informers.start(hub)
        try:
            await informers.wait_synced(5)
            resources.create(definitions, "", crd("size"), WriteOptions())
            await eventually(lambda: widget_fields() == {"size"})
            generation, served = catalog.generation, catalog.lookup(GROUP, "v1", "widgets")

            annotated = write(crd("size", {"gitops/tracking": "app"}))
            assert await informer.wait_for(annotated, 5)
            assert catalog.generation == generation
            assert catalog.lookup(GROUP, "v1", "widgets") is served

            assert await informer.wait_for(write(crd("colour")), 5)
            assert catalog.generation > generation
            assert widget_fields() == {"colour"}
        finally:
            await informers.stop()
            await hub.stop()
            store.close()

    asyncio.run(scenario())
