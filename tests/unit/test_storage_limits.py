"""Object size limit, the tenant storage quota and the watch hub's shared history, on a real
SQLite store (no HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from central_api.auth.storage_quota import StorageQuotaAdmission, StorageUsage
from central_api.auth.tenants import TENANT_LABEL, TenantDirectory
from central_api.kinds import builtin_kinds
from central_api.kinds.catalog import Catalog
from central_api.kinds.kind import ResourceType
from central_api.machinery.errors import ApiError
from central_api.machinery.user import BOOTSTRAP_ADMIN, User
from central_api.registry.informers import Informers
from central_api.registry.resources import DeleteOptions, Resources, WriteOptions
from central_api.registry.watch import WatchHub
from central_api.store.base import Key, encoded_size
from central_api.store.sqlite import SqliteStore

MEMBER = User("bob", ("system:authenticated",))


class Setup:
    def __init__(self, res: Resources, usage: StorageUsage) -> None:
        self.res, self.usage = res, usage
        self.revision = res.store.current_revision()

    def rt(self, plural: str) -> ResourceType:
        for group, version in (("", "v1"), ("tenancy.scs.community", "v1alpha1")):
            if rt := self.res.catalog.lookup(group, version, plural):
                return rt
        raise LookupError(plural)

    def follow(self) -> None:
        """Feed the usage index what the store committed, as the server's event loop does."""
        while events := self.res.store.events_since(self.revision):
            for event in events:
                self.usage.observe(event)
            self.revision = events[-1].revision

    def secret(self, name: str, size: int = 10, user: User | None = MEMBER,
               namespace: str = "acme-a") -> dict[str, Any]:
        body = {"metadata": {"name": name}, "stringData": {"blob": "x" * size}}
        created = self.res.create(self.rt("secrets"), namespace, body, WriteOptions(user=user))
        self.follow()
        return created

    def recount(self, tenant: str) -> tuple[int, int]:
        """The tenant's usage counted from scratch."""
        fresh = StorageUsage()
        for resource in {rt.storage_resource for rt in self.res.catalog.all()}:
            for obj in self.res.store.iter_list(resource, None, 0, None, 100):
                meta = obj["metadata"]
                fresh.index(Key(resource, meta.get("namespace", ""), meta["name"]), obj)
        usage = fresh.of_tenant(tenant)
        return usage.objects, usage.bytes


def synced_directory(res: Resources) -> TenantDirectory:
    """A TenantDirectory whose Tenant informer has listed the store once (these tests do
    not change tenants; the informer's following of changes is tested on its own)."""
    informers = Informers(res.catalog)
    directory = TenantDirectory(informers)

    async def sync() -> None:
        informers.start(WatchHub(res.store))  # the list needs no running hub
        await informers.wait_synced(5)
        await informers.stop()

    asyncio.run(sync())
    return directory


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    store = SqliteStore(tmp_path / "state.db")
    res = Resources(store, Catalog(builtin_kinds()))
    usage = StorageUsage()
    found = Setup(res, usage)
    res.create(found.rt("tenants"), "", {"metadata": {"name": "acme"}, "spec": {
        "displayName": "ACME", "quotas": {"apiObjects": 3, "apiBytes": 4000}}}, WriteOptions())
    for ns, labels in (("acme-a", {TENANT_LABEL: "acme"}), ("ops", {})):
        res.create(found.rt("namespaces"), "", {"metadata": {"name": ns, "labels": labels}},
                   WriteOptions())
    res.storage_checks.append(StorageQuotaAdmission(usage, synced_directory(res)))
    found.follow()
    yield found
    store.close()


def refused(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_usage_follows_creates_updates_and_deletes_exactly(setup: Setup) -> None:
    setup.secret("a", 100)
    b = setup.secret("b", 200)
    b["stringData"] = {"blob": "y" * 900}
    setup.res.update(setup.rt("secrets"), "acme-a", "b", b, WriteOptions(user=MEMBER))
    setup.follow()
    setup.res.delete(setup.rt("secrets"), "acme-a", "a", DeleteOptions())
    setup.follow()
    usage = setup.usage.of_tenant("acme")
    assert (usage.objects, usage.bytes) == setup.recount("acme")
    assert usage.objects == 1
    assert setup.usage.take_changed() == {"acme"}


def test_objects_beyond_the_tenants_quota_are_refused(setup: Setup) -> None:
    for name in ("a", "b", "c"):
        setup.secret(name)
    error = refused(lambda: setup.secret("d"))
    assert error.code == 403
    assert 'exceeded quota of tenant "acme", requested: apiObjects=1, used: apiObjects=3, ' \
           "limited: apiObjects=3" in error.message
    setup.res.delete(setup.rt("secrets"), "acme-a", "a", DeleteOptions())
    setup.follow()
    setup.secret("d")  # room again


def test_bytes_beyond_the_quota_are_refused_but_shrinking_passes(setup: Setup) -> None:
    big = setup.secret("big", 2000)
    error = refused(lambda: setup.secret("more", 2000))
    assert error.code == 403 and "apiBytes" in error.message
    assert setup.res.store.events_since(setup.revision) == []  # nothing stored
    big["stringData"] = {"blob": "x" * 10}
    setup.res.update(setup.rt("secrets"), "acme-a", "big", big, WriteOptions(user=MEMBER))


def test_the_operator_the_controllers_and_other_namespaces_are_not_limited(
        setup: Setup) -> None:
    for name in ("a", "b", "c"):
        setup.secret(name)
    setup.secret("by-admin", user=BOOTSTRAP_ADMIN)
    setup.secret("by-controller", user=None)
    setup.secret("elsewhere", 3000, namespace="ops")


def test_an_object_over_the_size_limit_is_refused_with_413(setup: Setup) -> None:
    setup.res.max_object_bytes = 5000
    error = refused(lambda: setup.secret("huge", 6000, user=BOOTSTRAP_ADMIN))
    assert error.code == 413 and "limit for one object is 5000 bytes" in error.message
    kept = setup.secret("kept", 3000, user=BOOTSTRAP_ADMIN)
    setup.res.max_object_bytes = 1000  # lowered later: the object may shrink, not grow
    kept["stringData"] = {"blob": "x" * 3500}
    assert refused(lambda: setup.res.update(setup.rt("secrets"), "acme-a", "kept", kept,
                                            WriteOptions())).code == 413
    kept["stringData"] = {"blob": "x" * 2000}
    setup.res.update(setup.rt("secrets"), "acme-a", "kept", kept, WriteOptions())


def test_watches_from_a_past_revision_replay_the_hubs_shared_events(setup: Setup) -> None:
    hub = WatchHub(setup.res.store)
    start = hub.revision
    for name in ("a", "b"):
        setup.secret(name, user=BOOTSTRAP_ADMIN)
    hub.pump()
    first = hub.subscribe("core/secrets", "acme-a", start)
    second = hub.subscribe("core/secrets", "acme-a", start)
    replayed = [first.take(), first.take()]
    assert [e.key.name for e in replayed if e] == ["a", "b"]
    assert all(a is b for a, b in zip(replayed, [second.take(), second.take()], strict=True))


def test_encoded_size_counts_integers_beyond_64_bits() -> None:
    assert encoded_size({"n": 1 << 70}) == len('{"n":1180591620717411303424}')
