"""Install the Debian packages the harness runs (release Zed, as Debian 12 ships it).

Only what is missing is installed, with ``--no-install-recommends`` and a ``policy-rc.d``
that forbids starting services (the packages would otherwise try to start their daemons).
``nova-compute`` and ``cinder-volume`` are deliberately not installed: their packages pull a
hypervisor and iSCSI/LVM tooling; the harness runs both services from ``python3-nova`` and
``python3-cinder`` (Nova with its fake driver). Cinder's storage is Ceph: ``ceph-mon``,
``ceph-osd`` and ``ceph-mgr`` (with ``ceph-common``: the ``ceph``/``rbd`` tools and
``python3-rados``/``python3-rbd`` that Cinder's RBD driver imports), and ``qemu-utils``, whose
``qemu-img`` the driver runs to turn a Glance image into a volume. Networking is ML2/OVN:
``ovn-central`` (``ovsdb-server`` schemas, ``ovn-northd``, ``ovn-nbctl``/``ovn-sbctl``; the
harness starts them itself, never the packaged services), ``openvswitch-common``
(``ovsdb-tool``, ``ovsdb-client``) and ``python3-ovn-octavia-provider`` (Octavia's ``ovn``
provider and its driver-agent plug-in). No ``ovn-host``/``openvswitch-switch``: there is no
datapath, the chassis is only a row in the southbound database.

``python -m tests.openstack install`` (the step ``scripts/test`` runs) also upgrades the
installed ones to the newest versions apt offers after ``apt-get update`` (``--only-upgrade``:
nothing new is installed), because Debian's security updates change behaviour the tests see:
glance 25.1.0-2+deb12u5 (SSRF fixes) refuses web-download sources on loopback unless
``allowed_hosts`` lists them, and a machine set up before it kept the older package, so two
machines ran different Glances. Starting a cloud never upgrades (no network, no apt lock
while other sessions' clouds run from these packages). An upgrade that fails (no network, the
lock held too long) is reported and the installed versions stay: the harness's configuration
works with both.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from .processes import OpenStackError

PACKAGES = ("mariadb-server", "python3-pymysql", "rabbitmq-server", "keystone", "uwsgi-core",
            "uwsgi-plugin-python3", "placement-api", "glance", "nova-api", "nova-conductor",
            "nova-scheduler", "python3-nova", "neutron-server", "cinder-api",
            "cinder-scheduler", "python3-cinder", "ceph-mon", "ceph-osd", "ceph-mgr",
            "qemu-utils", "octavia-api", "ovn-central", "openvswitch-common",
            "python3-ovn-octavia-provider", "ceilometer-agent-central",
            "ceilometer-agent-notification")
"""The Ceilometer agents are not part of the cloud: the metering tests run them against it
(tests/metering_ingest/agents.py)."""


def installed_versions() -> dict[str, str]:
    """Package → installed version, for the harness's packages that are installed."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${Package}\\t${Status}\\t${Version}\\n",
                           *PACKAGES], capture_output=True, text=True, check=False)
    rows = (line.split("\t") for line in done.stdout.splitlines())
    return {row[0]: row[2] for row in rows
            if len(row) == 3 and row[1].endswith("install ok installed")}


def missing_packages() -> list[str]:
    installed = installed_versions()
    return [p for p in PACKAGES if p not in installed]


def _apt(args: list[str]) -> subprocess.CompletedProcess[str]:
    # Wait for another apt/dpkg (a concurrent CI run installing) instead of failing at once.
    return subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", *args],
                          capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                          check=False)


def _forbid_service_starts() -> None:
    """Packages must not start (or restart, on upgrade) their system services."""
    policy = Path("/usr/sbin/policy-rc.d")
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)


def ensure_installed() -> float:
    """Install what is missing (needs root); returns the seconds spent."""
    missing = missing_packages()
    if not missing:
        return 0.0
    if os.geteuid() != 0:
        raise OpenStackError("install: packages missing and not root: apt-get install "
                             + " ".join(missing))
    started = time.monotonic()
    _forbid_service_starts()
    install = ["install", "-y", "-q", "--no-install-recommends", *missing]
    done = _apt(install)
    if done.returncode != 0:  # stale package lists: update once and retry
        _apt(["update", "-q"])
        done = _apt(install)
    if done.returncode != 0:
        raise OpenStackError(f"install: apt-get {' '.join(install)} exited with "
                             f"{done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return time.monotonic() - started


def upgrade_installed() -> list[str]:
    """Upgrade the installed harness packages (and what they pin, e.g. ``python3-glance``)
    to the newest versions apt offers after ``apt-get update``; needs root. Returns the named
    packages that changed, as ``name old -> new``; raises OpenStackError when apt fails."""
    if os.geteuid() != 0:
        raise OpenStackError("upgrade: not root, the installed versions stay")
    before = installed_versions()
    if not before:
        return []
    _forbid_service_starts()
    for args in (["update", "-q"],
                 ["install", "-y", "-q", "--only-upgrade", "--no-install-recommends",
                  *before]):
        done = _apt(args)
        if done.returncode != 0:
            raise OpenStackError(f"upgrade: apt-get {' '.join(args[:3])} ... exited with "
                                 f"{done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    after = installed_versions()
    return [f"{name} {old} -> {after.get(name, '?')}" for name, old in before.items()
            if after.get(name) != old]
