"""RBAC decisions are reused until the RBAC objects change, and never after (real SQLite
store, watch hub and informers; no HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from central_api.auth.authz import Attributes
from central_api.auth.rbac import InformerRuleSource, RbacAuthorizer
from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.kinds.rbac import ROLE, ROLE_BINDING
from central_api.machinery.user import AUTHENTICATED, User
from central_api.registry.informers import Informers
from central_api.registry.resources import DeleteOptions, Resources, WriteOptions
from central_api.registry.watch import WatchHub
from central_api.store.sqlite import SqliteStore

RBAC = "rbac.authorization.k8s.io"
ALICE = User("alice", ("team", AUTHENTICATED))
READ_SECRET = Attributes(ALICE, "get", "", "secrets", namespace="team-a", name="db")


class CountingSource(InformerRuleSource):
    """Counts the binding reads, which every uncached decision makes."""

    reads = 0

    def cluster_role_bindings(self) -> list[dict[str, Any]]:
        self.reads += 1
        return super().cluster_role_bindings()


def scenario(tmp_path: Path, body: Callable[[Resources, RbacAuthorizer, CountingSource,
                                               Callable[[dict[str, Any]], Awaitable[None]]],
                                              Awaitable[None]]) -> None:
    store = SqliteStore(tmp_path / "state.db")
    resources = Resources(store, Catalog(builtin_kinds()))
    namespaces = resources.catalog.require("", "v1", "namespaces")
    resources.create(namespaces, "", {"metadata": {"name": "team-a"}}, WriteOptions())

    async def main() -> None:
        hub = WatchHub(store, poll_seconds=0.05)
        hub.start()
        informers = Informers(resources.catalog)
        source = CountingSource(informers)
        informers.start(hub)

        async def seen(written: dict[str, Any]) -> None:
            """Wait until the informer of its kind has applied ``written``: from then on
            the decision must be the new one, at once."""
            kind = ROLE if written["kind"] == "Role" else ROLE_BINDING
            revision = int(written["metadata"]["resourceVersion"])
            assert await informers.informer(kind.storage_resource).wait_for(revision, 5)
        try:
            await informers.wait_synced(5)
            await body(resources, RbacAuthorizer(source), source, seen)
        finally:
            await informers.stop()
            await hub.stop()

    try:
        asyncio.run(main())
    finally:
        store.close()


def role(verbs: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": "reader"},
            "rules": [{"verbs": verbs, "apiGroups": [""], "resources": ["secrets"]}]}


BINDING = {"metadata": {"name": "r"}, "roleRef": {"apiGroup": RBAC, "kind": "Role",
                                                  "name": "reader"},
           "subjects": [{"kind": "User", "name": "alice"}]}


def test_a_repeated_request_is_decided_once(tmp_path: Path) -> None:
    async def body(resources: Resources, authz: RbacAuthorizer, source: CountingSource,
                   seen: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        await seen(resources.create(ROLE, "team-a", role(["get"]), WriteOptions()))
        await seen(resources.create(ROLE_BINDING, "team-a", BINDING, WriteOptions()))
        reads = source.reads
        assert all(authz.authorize(READ_SECRET).allowed for _ in range(5))
        assert source.reads == reads + 1
        other = Attributes(ALICE, "delete", "", "secrets", namespace="team-a", name="db")
        assert not authz.authorize(other).allowed
        assert source.reads == reads + 2

    scenario(tmp_path, body)


def test_a_role_change_holds_from_the_next_request(tmp_path: Path) -> None:
    async def body(resources: Resources, authz: RbacAuthorizer, source: CountingSource,
                   seen: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        await seen(resources.create(ROLE, "team-a", role(["get"]), WriteOptions()))
        await seen(resources.create(ROLE_BINDING, "team-a", BINDING, WriteOptions()))
        assert authz.authorize(READ_SECRET).allowed  # now remembered

        current = resources.get(ROLE, "team-a", "reader")
        await seen(resources.update(ROLE, "team-a", "reader",
                                    {**current, **role(["list"])}, WriteOptions()))
        assert not authz.authorize(READ_SECRET).allowed

        current = resources.get(ROLE, "team-a", "reader")
        await seen(resources.update(ROLE, "team-a", "reader",
                                    {**current, **role(["get"])}, WriteOptions()))
        assert authz.authorize(READ_SECRET).allowed

    scenario(tmp_path, body)


def test_deleting_a_binding_holds_from_the_next_request(tmp_path: Path) -> None:
    async def body(resources: Resources, authz: RbacAuthorizer, source: CountingSource,
                   seen: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        await seen(resources.create(ROLE, "team-a", role(["get"]), WriteOptions()))
        await seen(resources.create(ROLE_BINDING, "team-a", BINDING, WriteOptions()))
        assert authz.authorize(READ_SECRET).allowed
        await seen(resources.delete(ROLE_BINDING, "team-a", "r", DeleteOptions()))
        assert not authz.authorize(READ_SECRET).allowed

    scenario(tmp_path, body)
