"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` from PATH.

Why not a container or a mock: the PostgreSQL store relies on real server behaviour (row locks,
REPEATABLE READ snapshots, LISTEN/NOTIFY, crash recovery), so the contract suite needs the real
thing, and CI installs the PostgreSQL binaries. PostgreSQL refuses to run as root, so when the
tests run as root the cluster is owned by and run as the unprivileged ``postgres`` user (or
``nobody``). The server listens on 127.0.0.1 only (plus a Unix socket in its own temp dir) on a
free port, with ``fsync`` on so that the crash test (:meth:`PostgresServer.kill`) means something.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresServer", "find_pg_bin"]


def find_pg_bin(tool: str) -> str | None:
    """``tool`` from PATH, else from the Debian layout (``/usr/lib/postgresql/<v>/bin``)."""
    found = shutil.which(tool)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root but neither user 'postgres' nor 'nobody' exists")


def _stat_fields(pid: str | int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name: [state, ppid, pgrp, ...] ([] if gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    # "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after the last ')'.
    return text[text.rfind(")") + 2:].split()


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if len(fields) > 1 and int(fields[1]) == parent:
                found.append(int(entry))
    return found


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead: it holds no resources)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


class PostgresServer:
    """One PostgreSQL cluster in a temp dir; ``start``/``stop``/``kill`` it as often as needed.

    The constructor only runs ``initdb``; call :meth:`start` (or use it as a context manager).
    """

    def __init__(self, base_dir: str | None = None, user: str = "postgres") -> None:
        initdb = find_pg_bin("initdb")
        pg_ctl = find_pg_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found on PATH")
        self._initdb, self._pg_ctl = initdb, pg_ctl
        self.db_user = user
        self.root = Path(tempfile.mkdtemp(prefix="scs-pg-", dir=base_dir))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "postgres.log"
        self.port = _free_port()
        self._os_user = _unprivileged_user()
        self.socket_dir.mkdir()
        self.log_file.touch()
        if self._os_user is not None:
            for path in (self.root, self.socket_dir, self.log_file):
                os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)
        self._run([self._initdb, "-D", str(self.data_dir), "-U", user, "--auth=trust",
                   "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], what="initdb")
        # Settings go into the cluster config so a later start() (after stop/kill) reuses them.
        with open(self.data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "full_page_writes = on\n"
                "max_connections = 300\n"
                "shared_buffers = '32MB'\n"
                "log_min_messages = warning\n")

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        """Start (or restart after stop/kill, running crash recovery) and wait until ready."""
        try:
            self._run([self._pg_ctl, "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                       "-t", str(int(timeout)), "start"], what="pg_ctl start")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- postgres.log (tail) ---\n{self.log_tail()}") from None

    def stop(self) -> None:
        """Clean shutdown (``-m fast``: disconnect clients, checkpoint, exit)."""
        if self.pid() is None:
            return
        self._run([self._pg_ctl, "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                  what="pg_ctl stop")

    def kill(self, timeout: float = 30) -> None:
        """Simulate a crash: SIGKILL the postmaster and all of its children at once.

        Killing every server process (not just the postmaster, whose children would linger
        until they notice) is what a power cut or an OOM-kill of the container looks like.
        Each PostgreSQL child is its own session leader, so they are found via their ppid.
        """
        pid = self.pid()
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while any(_pid_alive(victim) for victim in victims):
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres (pid {pid}) did not die after SIGKILL")
            time.sleep(0.02)
        # Our init may reap orphans lazily: a zombie postmaster still "exists" for kill(pid, 0),
        # and PostgreSQL would refuse to start over its lock files. Every process of the cluster
        # is dead now (as after a reboot), so the lock files are stale.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        for lock in self.socket_dir.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)

    def cleanup(self) -> None:
        """Stop the server (killing it if a clean stop fails) and delete its directory."""
        try:
            self.stop()
        except RuntimeError:
            self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- information -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """URL of the default ``postgres`` database (TCP on 127.0.0.1)."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.db_user}@127.0.0.1:{self.port}/{database}"

    def pid(self) -> int | None:
        """The postmaster's pid from ``postmaster.pid`` if that process is alive."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    # -- helpers ---------------------------------------------------------------------------
    def _run(self, argv: list[str], what: str) -> None:
        if self._os_user is not None:
            argv = ["runuser", "-u", self._os_user.pw_name, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=self.root,
                              stdin=subprocess.DEVNULL, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{what} failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")

