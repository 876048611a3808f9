"""One test cloud per pytest session, shared by every suite that asks for it.

Session fixtures defined in different test modules are separate fixtures to pytest, so each
suite's fixture calls :func:`shared_cloud`, which starts the cloud for the first user and
stops it when the last one is done (all session fixtures end together, at session end).

``SCS_TEST_OPENSTACK_DIR=DIR`` uses the cloud ``scripts/openstack-up --dir DIR`` keeps running
(started if needed, never stopped by the tests): saves the two minutes of start-up while
working on a suite.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cloud import OpenStackCloud
from .processes import OpenStackError

_cloud: OpenStackCloud | None = None
_users = 0
_failure = ""  # why the cloud did not start: later suites fail at once with the same reason


def shared_cloud() -> Iterator[OpenStackCloud]:
    """Body of a session fixture: yields the running cloud; fails (never skips) when it
    cannot start, naming the service and its log."""
    global _cloud, _users, _failure
    keep = os.environ.get("SCS_TEST_OPENSTACK_DIR", "")
    if _failure:
        pytest.fail(_failure, pytrace=False)
    if _cloud is None:
        cloud = OpenStackCloud(Path(keep) if keep else None)
        started = time.monotonic()
        try:
            cloud.up()
        except OpenStackError as exc:
            _failure = f"could not start the test OpenStack: {exc}"
            pytest.fail(_failure, pytrace=False)
        print(f"\ntest OpenStack up in {time.monotonic() - started:.0f}s {cloud.timings}, "
              f"{cloud.memory_mib():.0f} MiB (PSS) ({cloud.dir})")
        _cloud = cloud
    _users += 1
    try:
        yield _cloud
    finally:
        _users -= 1
        if _users == 0:
            if not keep:
                _cloud.down(remove=True)
            _cloud = None
