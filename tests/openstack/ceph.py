"""A single-node Ceph cluster (Debian 12's Pacific packages) in user space, for Cinder's RBD
driver.

Why Ceph: the harness wants Cinder's real volume path (a driver that creates, grows, copies
images into and deletes real block devices), and this machine's kernel rules out LVM (no
device-mapper), an LIO iSCSI target (no configfs) and loadable modules. RBD needs none of
them: Cinder's ``cinder.volume.drivers.rbd.RBDDriver`` talks to Ceph with librados over TCP,
so the same driver production SCS clouds use runs here on 127.0.0.1.

What runs, each in its own process group, in the foreground, logging to stderr (into the
harness's ``logs/ceph-<daemon>.log``): one monitor (``mon.a``, msgr2 only, on a private port),
one OSD (``osd.0``) with ``memstore`` — objects live in the OSD's memory, so no block device
and no disk file are needed, and a stopped OSD loses its data, which a cluster built afresh
for every run never misses — and one manager (``mgr.x``). The manager is needed because
``ceph df``, from which the RBD driver reports the pool's capacity to Cinder's scheduler, is
served from the manager's statistics: without one the pool list is empty and the driver's
stats fail. Only the manager modules Pacific marks always-on are loaded (the rest, e.g.
prometheus and the REST API, would add about 170 MB and nothing uses them). Pools have one
replica. Cinder uses the pool ``volumes`` as the cephx user ``client.cinder`` (``profile
rbd``), as in Ceph's guide for OpenStack.

The bootstrap is Ceph's "manual deployment": ``ceph-authtool`` keys, ``monmaptool``,
``ceph-mon --mkfs``, ``ceph osd new`` + ``ceph-osd --mkfs``, then the pool and the client key
through the running cluster. :meth:`CephCluster.start` reuses a healthy cluster in its
directory; anything else there (a half-dead or stopped cluster) is stopped and built afresh.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .processes import Daemon, OpenStackError, free_port, log_tail, stop_group, wait_until

__all__ = ["CLIENT", "POOL", "CephCluster"]

POOL = "volumes"
CLIENT = "cinder"
# The Pacific manager modules that cannot be disabled (``ceph mgr module ls``:
# always_on_modules); every other module directory is kept from loading.
ALWAYS_ON_MGR_MODULES = ("balancer", "crash", "devicehealth", "orchestrator", "pg_autoscaler",
                         "progress", "rbd_support", "status", "telemetry", "volumes")
MGR_MODULE_DIR = Path("/usr/share/ceph/mgr")
DAEMONS = ("mon", "osd", "mgr")  # start order; ids a, 0, x


class CephCluster:
    """One monitor, one memstore OSD and one manager with their state in ``directory``.

    ``start()`` bootstraps or reuses; ``pids()`` and ``stop()`` work from any process (they
    read the daemons' pid files), so the cloud's ``down()`` stops a cluster it did not start.
    """

    def __init__(self, directory: Path, logs: Path | None = None, timeout: float = 60.0) -> None:
        self.dir = Path(directory)
        self.logs = Path(logs) if logs else self.dir / "log"
        self.conf = self.dir / "ceph.conf"
        self.timeout = timeout
        self._started: list[Daemon] = []

    # -- public surface ----------------------------------------------------------------------
    def keyring(self, name: str) -> Path:
        """The keyring of ``name`` (``client.cinder``, ``osd.0``...): ceph.conf's pattern."""
        return self.dir / f"ceph.{name}.keyring"

    def start(self) -> CephCluster:
        """Bootstrap and start the cluster with the pool and the client for Cinder, or reuse
        the healthy one already running from this directory."""
        if self.conf.exists() and self.unhealthy() is None:
            return self
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        for sub in ("run", "mon", "osd", "mgr"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self._bootstrap()
        except OpenStackError:
            self.stop()
            raise
        return self

    def _bootstrap(self) -> None:
        daemons = self.daemons()

        def start(daemon: Daemon) -> None:
            self._started.append(daemon)
            daemon.start()

        self._make_monitor()
        start(daemons["ceph-mon"])
        daemons["ceph-mon"].wait_healthy()
        self._make_osd()
        start(daemons["ceph-osd"])
        self.ceph("auth", "get-or-create", "mgr.x", "mon", "allow profile mgr", "osd",
                  "allow *", "-o", str(self.keyring("mgr.x")))
        start(daemons["ceph-mgr"])
        daemons["ceph-osd"].wait_healthy()
        daemons["ceph-mgr"].wait_healthy()
        self._make_pool()
        wait_until(self._pgs_active, self.timeout, "ceph: placement groups active",
                   logs=daemons["ceph-osd"].log)

    def stop(self) -> None:
        """Stop this directory's daemons, the manager and the OSD before the monitor (the OSD
        tells the monitor it is going, and waits 5 s for it if the monitor is gone): those
        this object started and those whose pid files (another process's) are there."""
        started = {d.name: d.pid for d in self._started if d.pid is not None}
        from_files = self.pids()
        for name in reversed([f"ceph-{kind}" for kind in DAEMONS]):
            for pid in {p for p in (started.get(name), from_files.get(name)) if p is not None}:
                stop_group(pid, str(self.dir))
        self._started.clear()

    def pids(self) -> dict[str, int]:
        """``ceph-mon``/``ceph-osd``/``ceph-mgr`` → pid, from the daemons' pid files."""
        found = {}
        for kind in DAEMONS:
            try:
                found[f"ceph-{kind}"] = int((self.dir / "run" / f"{kind}.pid").read_text())
            except (OSError, ValueError):
                continue
        return found

    def unhealthy(self) -> str | None:
        """None when the monitor has quorum, the OSD is up, a manager is active and every
        placement group is active; else what is wrong."""
        pids = self.pids()
        for name in (f"ceph-{kind}" for kind in DAEMONS):
            if name not in pids or not Path(f"/proc/{pids[name]}").exists():
                return f"{name} is not running"
        try:
            status = self.status()
        except OpenStackError as exc:
            return str(exc)
        if not status.get("quorum_names"):
            return "ceph: the monitor has no quorum"
        if status.get("osdmap", {}).get("num_up_osds") != 1:
            return "ceph: osd.0 is not up"
        if not status.get("mgrmap", {}).get("available"):
            return "ceph: no active manager"
        pgs = self._pgs_active(status)
        return None if pgs is True else f"ceph: {pgs}"

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.ceph("status", "--format=json"))
        return result

    def images(self) -> dict[str, int]:
        """The RBD images in the pool with their sizes in bytes, as Cinder's user sees them
        (tests check that a volume really is an image in Ceph)."""
        out = self._run(["rbd", "-c", str(self.conf), "--id", CLIENT, "ls", "-l",
                         "--format=json", "-p", POOL], "rbd ls")
        return {entry["image"]: int(entry["size"]) for entry in json.loads(out or "[]")}

    def ceph(self, *args: str) -> str:
        """The ``ceph`` CLI as client.admin; returns stdout."""
        return self._run(["ceph", "-c", str(self.conf), "--connect-timeout", "10", *args],
                         f"ceph {' '.join(args[:3])}")

    # -- daemons -------------------------------------------------------------------------------
    def daemons(self) -> dict[str, Daemon]:
        """The three daemons in start order, each with its health check."""
        def daemon(kind: str, ident: str, health: Callable[[], bool | str]) -> Daemon:
            return Daemon(f"ceph-{kind}", [f"ceph-{kind}", "-f", "-c", str(self.conf),
                                           "-i", ident],
                          self.logs / f"ceph-{kind}.log", health=health, timeout=self.timeout)

        return {d.name: d for d in (daemon("mon", "a", self._monitor_ready),
                                    daemon("osd", "0", self._osd_up),
                                    daemon("mgr", "x", self._manager_active))}

    def _monitor_ready(self) -> bool | str:
        return bool(self.status().get("quorum_names")) or "no quorum yet"

    def _osd_up(self) -> bool | str:
        up = self.status().get("osdmap", {}).get("num_up_osds")
        return up == 1 or f"{up} OSDs up"

    def _manager_active(self) -> bool | str:
        return bool(self.status().get("mgrmap", {}).get("available")) or "no active manager"

    def _pgs_active(self, status: dict[str, Any] | None = None) -> bool | str:
        pgmap = (status or self.status()).get("pgmap", {})
        states = {s["state_name"]: s["count"] for s in pgmap.get("pgs_by_state", [])}
        inactive = {state: n for state, n in states.items() if "active" not in state}
        return not inactive or f"placement groups not active: {inactive}"

    # -- bootstrap -----------------------------------------------------------------------------
    def _make_monitor(self) -> None:
        port = free_port()
        fsid = str(uuid.uuid4())
        self.conf.write_text(self._config(fsid, port))
        mon_keyring, admin = self.keyring("mon.a"), self.keyring("client.admin")
        self._run(["ceph-authtool", "--create-keyring", str(mon_keyring), "--gen-key",
                   "-n", "mon.", "--cap", "mon", "allow *"], "ceph-authtool mon.")
        self._run(["ceph-authtool", "--create-keyring", str(admin), "--gen-key",
                   "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *",
                   "--cap", "mgr", "allow *"], "ceph-authtool client.admin")
        self._run(["ceph-authtool", str(mon_keyring), "--import-keyring", str(admin)],
                  "ceph-authtool import")
        monmap = self.dir / "monmap"
        self._run(["monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{port}]",
                   "--fsid", fsid, str(monmap)], "monmaptool")
        self._run(["ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a", "--monmap",
                   str(monmap), "--keyring", str(mon_keyring)], "ceph-mon --mkfs")

    def _make_osd(self) -> None:
        osd_uuid = str(uuid.uuid4())
        osd_id = self.ceph("osd", "new", osd_uuid).strip()
        if osd_id != "0":
            raise OpenStackError(f"ceph osd new: expected osd.0, got {osd_id!r}")
        keyring = self.keyring("osd.0")
        self._run(["ceph-authtool", "--create-keyring", str(keyring), "--gen-key",
                   "-n", "osd.0"], "ceph-authtool osd.0")
        self.ceph("auth", "add", "osd.0", "osd", "allow *", "mon", "allow profile osd",
                  "mgr", "allow profile osd", "-i", str(keyring))
        (self.dir / "osd" / "ceph-0").mkdir(parents=True, exist_ok=True)
        self._run(["ceph-osd", "-c", str(self.conf), "-i", "0", "--mkfs", "--osd-uuid",
                   osd_uuid], "ceph-osd --mkfs")

    def _make_pool(self) -> None:
        self.ceph("osd", "pool", "create", POOL, "8", "8")
        self._run(["rbd", "-c", str(self.conf), "pool", "init", POOL], "rbd pool init")
        self.ceph("auth", "get-or-create", f"client.{CLIENT}", "mon", "profile rbd",
                  "osd", f"profile rbd pool={POOL}", "mgr", f"profile rbd pool={POOL}",
                  "-o", str(self.keyring(f"client.{CLIENT}")))

    def _config(self, fsid: str, port: int) -> str:
        disabled = sorted(p.name for p in MGR_MODULE_DIR.iterdir()
                          if p.is_dir() and p.name not in ALWAYS_ON_MGR_MODULES)
        d = self.dir
        daemon = f"""\
log to file = false
log to stderr = true
err to stderr = true
admin socket = {d}/run/$name.asok
pid file = {d}/run/$type.pid
"""
        return f"""\
[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{port}
public addr = 127.0.0.1
ms bind msgr1 = false
keyring = {d}/$cluster.$name.keyring
run dir = {d}/run
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
auth allow insecure global id reclaim = false
# a busy shared /tmp is no reason for the monitor to warn or to stop
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = {d}/mon/$cluster-$id
{daemon}
[osd]
osd data = {d}/osd/$cluster-$id
osd objectstore = memstore
# the capacity reported (memory is used only for data written; Cinder oversubscribes
# thin volumes 20 times this)
memstore device bytes = {10 * 1024**3}
{daemon}
[mgr]
mgr data = {d}/mgr/$cluster-$id
mgr disabled modules = {",".join(disabled)}
{daemon}"""

    def _run(self, cmd: list[str], what: str) -> str:
        """Run a bootstrap or client command (bounded); failures carry its output and the
        log tails of the daemons that are running."""
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise OpenStackError(f"{what}: no answer within {self.timeout:g}s\n"
                                 + self._log_tails()) from None
        if done.returncode != 0:
            raise OpenStackError(f"{what}: {' '.join(cmd)} exited with {done.returncode}:\n"
                                 f"{(done.stdout + done.stderr).strip()[-2000:]}\n"
                                 + self._log_tails())
        return done.stdout

    def _log_tails(self) -> str:
        logs = [self.logs / f"ceph-{kind}.log" for kind in DAEMONS]
        return "\n".join(log_tail(log, 15) for log in logs if log.exists())

