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
            "python3-ovn-octavia-provider")


def missing_packages() -> list[str]:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\\n", *PACKAGES],
                          capture_output=True, text=True, check=False)
    installed = {line.split()[0] for line in done.stdout.splitlines()
                 if line.endswith("install ok installed")}
    return [p for p in PACKAGES if p not in installed]


def _apt(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                          check=False)


def ensure_installed() -> float:
    """Install what is missing (needs root); returns the seconds spent."""
    missing = missing_packages()
    if not missing:
        return 0.0
    if os.geteuid() != 0:
        raise OpenStackError("install: packages missing and not root: apt-get install "
                             + " ".join(missing))
    started = time.monotonic()
    policy = Path("/usr/sbin/policy-rc.d")
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    install = ["install", "-y", "-q", "--no-install-recommends", *missing]
    done = _apt(install)
    if done.returncode != 0:  # stale package lists: update once and retry
        _apt(["update", "-q"])
        done = _apt(install)
    if done.returncode != 0:
        raise OpenStackError(f"install: apt-get {' '.join(install)} exited with "
                             f"{done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return time.monotonic() - started
