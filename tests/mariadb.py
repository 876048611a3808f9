"""A private MariaDB for tests: Debian's ``mariadb-server`` binaries, run without the service.

Why MariaDB and not SQLite: OpenStack services run several workers against one database, and
SQLite answers concurrent writers with ``database is locked``; Neutron's and Nova's schema
migrations do not run on SQLite at all. Why not the packaged service: tests must not depend on
or disturb a system-wide daemon, and CI machines have no systemd.

How: ``mariadb-install-db --no-defaults --datadir=D`` once, then ``mariadbd --no-defaults``
with its own data directory, Unix socket, pid file and error log, listening on 127.0.0.1 and a
free port. ``--no-defaults`` keeps ``/etc/mysql`` out of it. Root administers over the socket
(unix_socket authentication as the OS root user); services connect over TCP as the user
``openstack`` with a random password (:meth:`MariaDBServer.url`). The server runs as the
current user (``--user`` is passed when that is root, which mariadbd otherwise refuses).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["MariaDBError", "MariaDBServer"]

USER = "openstack"


class MariaDBError(RuntimeError):
    """MariaDB could not be initialised or started; the message carries the error log tail."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MariaDBServer:
    """One mariadbd on 127.0.0.1 with its data in ``data_dir`` (a temp dir by default).

    ``start()`` initialises the data directory on first use and is a no-op while the server
    runs; ``stop()`` keeps the data; ``cleanup()`` removes it too. ``pid`` is kept so that a
    different process (``scripts/openstack-up --stop``) can stop a server started earlier.
    """

    def __init__(self, data_dir: Path | None = None, *, port: int | None = None,
                 password: str = "", startup_timeout: float = 60.0) -> None:
        self.dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="mariadb-"))
        self.port = port or _free_port()
        self.password = password or os.urandom(12).hex()
        self.startup_timeout = startup_timeout
        self.datadir = self.dir / "data"
        self.socket = self.dir / "mysqld.sock"
        self.error_log = self.dir / "error.log"
        self.pid: int | None = None

    def url(self, database: str) -> str:
        """SQLAlchemy URL for ``database`` as the ``openstack`` user (PyMySQL driver)."""
        return (f"mysql+pymysql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"
                "?charset=utf8")

    @property
    def running(self) -> bool:
        return self.pid is not None and _alive(self.pid)

    def start(self) -> MariaDBServer:
        if self.running:
            return self
        for tool in ("mariadb-install-db", "mariadbd", "mariadb"):
            if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
                raise MariaDBError(f"{tool} not found: apt-get install mariadb-server")
        self.dir.mkdir(parents=True, exist_ok=True)
        user = ["--user=" + pwd.getpwuid(os.geteuid()).pw_name]
        fresh = not (self.datadir / "mysql").exists()
        if fresh:
            self._run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                       "--auth-root-authentication-method=socket", "--skip-test-db",
                       *user], "mariadb-install-db")
        cmd = [_sbin("mariadbd"), "--no-defaults", f"--datadir={self.datadir}",
               f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
               f"--pid-file={self.dir / 'mysqld.pid'}", f"--log-error={self.error_log}",
               f"--tmpdir={self.dir}", "--skip-name-resolve", "--max-connections=1000",
               "--innodb-buffer-pool-size=256M", "--innodb-flush-log-at-trx-commit=2",
               "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
               *user]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = proc.pid
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid = None
                raise MariaDBError(f"mariadbd exited with {proc.returncode}\n{self.log_tail()}")
            if self.socket.exists() and self._ping():
                break
            time.sleep(0.2)
        else:
            self.stop()
            raise MariaDBError(f"mariadbd not ready within {self.startup_timeout:g}s\n"
                               + self.log_tail())
        if fresh:
            self.sql(f"CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' "
                     f"IDENTIFIED BY '{self.password}';"
                     f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'; FLUSH PRIVILEGES;")
        return self

    def create_databases(self, *names: str) -> None:
        self.sql("".join(f"CREATE DATABASE IF NOT EXISTS `{n}` CHARACTER SET utf8;"
                         for n in names))

    def sql(self, statements: str) -> str:
        """Run SQL as root over the socket; returns the tab-separated output."""
        return self._run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root",
                          "-N", "-B", "-e", statements], "mariadb")

    def stop(self) -> None:
        """SIGTERM (a clean InnoDB shutdown), SIGKILL after 30 s; the data stays."""
        pid, self.pid = self.pid, None
        if pid is None or not _alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        if not self.error_log.exists():
            return "(no error log written)"
        return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])

    def _ping(self) -> bool:
        try:
            self.sql("SELECT 1")
        except MariaDBError:
            return False
        return True

    def _run(self, cmd: list[str], what: str) -> str:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise MariaDBError(f"{what} failed (exit {done.returncode}): "
                               f"{(done.stdout + done.stderr).strip()[-2000:]}")
        return done.stdout


def _sbin(tool: str) -> str:
    return shutil.which(tool) or f"/usr/sbin/{tool}"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
