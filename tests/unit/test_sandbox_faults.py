"""Fault injection in the sandbox: every error type, ``times``, scope and kind matching,
resources that end in ERROR, and faults set by another process through the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from central_api.providers.base import (
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    Provider,
    ProviderError,
    QuotaExceeded,
    Scope,
)
from central_api.providers.sandbox import (
    SandboxSettings,
    clear_faults,
    inject_fault,
    list_faults,
    sandbox_provider,
)
from central_api.store.base import Key
from central_api.store.sqlite import SqliteStore

T = TypeVar("T")
NS = Scope("team-a")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "faults.db")
    yield s
    clear_faults(s)
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cloud(store: SqliteStore, clock: Clock) -> Provider:
    return sandbox_provider(store, SandboxSettings(speed=0, clock=clock))


def create_network(p: Provider, owner: str = "n", scope: Scope = NS) -> Any:
    return run(p.service("Network").create(scope, owner, {"mtu": None}))


@pytest.mark.parametrize("error,exc_type", [
    ("BackendUnavailable", BackendUnavailable), ("QuotaExceeded", QuotaExceeded),
    ("Conflict", Conflict), ("InvalidRequest", InvalidRequest)])
def test_each_error_type_is_raised_as_its_provider_error(
        cloud: Provider, store: SqliteStore, error: str, exc_type: type[ProviderError]) -> None:
    inject_fault(store, "boom", kind="Network", operation="create", error=error)
    with pytest.raises(exc_type, match=r"sandbox \(simulated\): injected fault 'boom'"):
        create_network(cloud)
    assert run(cloud.service("Network").find(NS, "n")) is None  # nothing was created


def test_timeout_waits_then_reports_the_backend_unavailable(cloud: Provider,
                                                           store: SqliteStore) -> None:
    inject_fault(store, "slow", operation="find", error="Timeout", timeout_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="timed out after 0.05 s"):
        run(cloud.service("Server").find(NS, "x"))
    assert time.monotonic() - started >= 0.05


def test_times_is_used_up_then_the_fault_disappears(cloud: Provider,
                                                    store: SqliteStore) -> None:
    inject_fault(store, "twice", kind="Network", error="BackendUnavailable", times=2)
    with pytest.raises(BackendUnavailable):
        create_network(cloud)
    assert [f["times"] for f in list_faults(store)] == [1]
    with pytest.raises(BackendUnavailable):
        create_network(cloud)
    assert list_faults(store) == []
    assert create_network(cloud).state == "ACTIVE"


def test_concurrent_callers_never_use_a_fault_more_often_than_allowed(
        store: SqliteStore, clock: Clock) -> None:
    inject_fault(store, "three", operation="find", error="Conflict", times=3)
    providers = [sandbox_provider(store, SandboxSettings(speed=0, clock=clock))
                 for _ in range(4)]

    async def calls() -> list[Any]:
        return await asyncio.gather(*(p.service("Network").find(NS, f"o{i}")
                                      for i in range(5) for p in providers),
                                    return_exceptions=True)

    results = run(calls())
    assert sum(isinstance(r, Conflict) for r in results) == 3


def test_faults_match_only_their_scope_kind_and_operation(cloud: Provider,
                                                          store: SqliteStore) -> None:
    inject_fault(store, "a-only", scope="team-a", kind="Volume", operation="delete",
                 error="Conflict")
    vol = run(cloud.service("Volume").create(NS, "v", {"sizeGiB": 1}))
    other = Scope("team-b")
    vol_b = run(cloud.service("Volume").create(other, "v", {"sizeGiB": 1}))
    run(cloud.service("Volume").delete(other, vol_b))   # other namespace: no fault
    create_network(cloud)                                 # other kind: no fault
    with pytest.raises(Conflict):
        run(cloud.service("Volume").delete(NS, vol))


def test_go_to_error_creates_a_resource_that_ends_in_error(store: SqliteStore,
                                                           clock: Clock) -> None:
    p = sandbox_provider(store, SandboxSettings(clock=clock))
    inject_fault(store, "broken-host", kind="Volume", goToError=True, times=1,
                 message="no valid host was found")
    vol = run(p.service("Volume").create(NS, "v", {"sizeGiB": 1}))
    assert vol.state == "PENDING"
    clock.now += 1
    failed = run(p.service("Volume").find(NS, "v"))
    assert failed is not None and failed.state == "ERROR"
    assert failed.message == ("sandbox (simulated): no valid host was found: the resource went "
                              "to ERROR (Volume create in namespace team-a)")
    ok = run(p.service("Volume").create(NS, "w", {"sizeGiB": 1}))  # times used up
    clock.now += 1
    assert run(p.service("Volume").find(NS, "w")).state == "ACTIVE"  # type: ignore[union-attr]
    run(p.service("Volume").delete(NS, failed))  # an ERROR resource can still be deleted
    assert ok.id


def test_go_to_error_does_not_apply_to_find_or_delete(cloud: Provider,
                                                      store: SqliteStore) -> None:
    net = create_network(cloud)
    inject_fault(store, "err", goToError=True)
    assert run(cloud.service("Network").find(NS, "n")) is not None
    run(cloud.service("Network").delete(NS, net))
    assert [f["name"] for f in list_faults(store)] == ["err"]


def test_a_fault_written_by_another_process_shows_up_within_the_cache_time(
        store: SqliteStore, clock: Clock) -> None:
    p = sandbox_provider(store, SandboxSettings(speed=0, clock=clock))
    assert run(p.service("Network").find(NS, "x")) is None  # caches "no faults"
    store.create(Key("sandbox/faults", "", "remote"),  # as another process would
                 {"name": "remote", "kind": "*", "operation": "find", "scope": "*",
                  "error": "BackendUnavailable"})
    assert run(p.service("Network").find(NS, "x")) is None  # still cached
    clock.now += 0.5
    with pytest.raises(BackendUnavailable):
        run(p.service("Network").find(NS, "x"))


def test_clear_faults_removes_them_at_once(cloud: Provider, store: SqliteStore) -> None:
    inject_fault(store, "a", error="BackendUnavailable")
    inject_fault(store, "b", error="Conflict")
    with pytest.raises(BackendUnavailable):
        run(cloud.service("Network").find(NS, "x"))  # "a" comes first by name
    assert clear_faults(store, "a") == 1
    with pytest.raises(Conflict):
        run(cloud.service("Network").find(NS, "x"))
    assert clear_faults(store) == 1
    assert run(cloud.service("Network").find(NS, "x")) is None


@pytest.mark.parametrize("fault", [
    {}, {"error": "Oops"}, {"error": "Conflict", "goToError": True},
    {"error": "Conflict", "times": 0}, {"error": "Conflict", "kind": "Pod"},
    {"error": "Conflict", "operation": "list"}, {"error": "Conflict", "color": "red"}])
def test_malformed_faults_are_refused(store: SqliteStore, fault: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        inject_fault(store, "bad", **fault)
