"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.keystone import KeystoneServer, keystone_fixture
from tests.pg import PostgresServer, find_pg_bin

# Property tests assert behaviour, not speed: on a loaded 2-core CI machine generation alone
# trips Hypothesis' too_slow check and its per-example deadline, failing correct code.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL 15 for the whole session; tests create their own databases.

    Fails (never skips) without ``initdb``: CI installs PostgreSQL, and a silently skipped
    back end would let PostgreSQL regressions through.
    """
    if find_pg_bin("initdb") is None or find_pg_bin("pg_ctl") is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed or not on "
                    "PATH; install PostgreSQL 15 to run the PostgreSQL tests")
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def keystone() -> Iterator[KeystoneServer]:
    """One real Keystone (Debian's, installed if missing) for the session; fails if it cannot
    be installed or started. See tests/keystone.py."""
    yield from keystone_fixture()
