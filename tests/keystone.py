"""A throwaway OpenStack Keystone for tests: Debian's ``keystone`` (Zed) served by uwsgi.

Why a real Keystone and not a mock: onboarding depends on Keystone behaviour that mocks get
wrong — policy enforcement (the scs-0302 domain manager), unified-limit validation against
registered limits, "application credentials only for yourself", cascading domain deletion —
so the identity tests run against the real service.

How: install the packages if missing (``/usr/sbin/policy-rc.d`` returns 101 first so the
package's own service is not started; ``apt-get update`` only when the install needs it),
write a private ``keystone.conf`` in a temp dir (SQLite database, fernet and credential key
repositories, log file, the SCS domain-manager policy, ``password_hash_rounds = 4`` because
bcrypt dominates test time otherwise), ``keystone-manage db_sync / fernet_setup /
credential_setup / bootstrap``, then ``uwsgi`` on 127.0.0.1:<free port>. Everything runs as
the current user (root in CI: ``--keystone-user/--keystone-group`` are set to it so the key
repositories are owned by whoever serves them).

Concurrency: SQLite serialises writers and Keystone answers concurrent writes with
``database is locked``; the server runs one process with one thread, so requests queue instead
of failing. That suits tests (serial access). For parallel load (benchmarks, several services
sharing one Keystone) point ``database_url`` at a private MariaDB instead —
``mariadb-install-db --datadir=D`` then ``mariadbd --datadir=D --socket=S --port=P``, no root
service needed — e.g. ``KeystoneServer(database_url="mysql+pymysql://root@127.0.0.1:P/ks",
workers=4)`` (python3-pymysql comes with the keystone package).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["KeystoneError", "KeystoneServer", "ensure_installed", "keystone_fixture"]

POLICY_FILE = Path(__file__).resolve().parent / "keystone_policy" / "policy.yaml"
SQLITE_FK_WSGI = POLICY_FILE.parent / "wsgi_sqlite_fk.py"
PACKAGES = ("keystone", "uwsgi-core", "uwsgi-plugin-python3")
REGION = "RegionOne"
SCS_ROLES = ("manager", "member", "reader")
# Services the unified limits of the Central API refer to (service type → name). A real cloud
# has them in its catalog already; the test Keystone has only itself after bootstrap.
SERVICES = {"compute": "nova", "block-storage": "cinder", "network": "neutron"}


class KeystoneError(RuntimeError):
    """Keystone could not be installed or started; the message carries the log tail."""


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None,
         timeout: float = 600) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KeystoneError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise KeystoneError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _missing_packages() -> list[str]:
    missing = []
    for package in PACKAGES:
        probe = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                               capture_output=True, text=True, check=False)
        if "install ok installed" not in probe.stdout:
            missing.append(package)
    return missing


def ensure_installed() -> float:
    """Install Debian's Keystone and uwsgi's python3 plugin if missing; returns seconds spent.

    Needs root (CI runs as root). ``apt-get update`` runs only if a plain install fails, so a
    machine with fresh package lists installs in about 30-60 s and one without them pays for
    the update once.
    """
    missing = _missing_packages() if shutil.which("dpkg-query") else list(PACKAGES)
    if not missing:
        return 0.0
    if os.geteuid() != 0:
        raise KeystoneError(f"Keystone packages {missing} are missing and installing them "
                            "needs root: apt-get install " + " ".join(missing))
    started = time.monotonic()
    policy_rc = Path("/usr/sbin/policy-rc.d")
    if not policy_rc.exists():
        policy_rc.write_text("#!/bin/sh\nexit 101\n")
        policy_rc.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    try:
        _run(install, "apt-get install", env=env)
    except KeystoneError:
        _run(["apt-get", "update", "-q"], "apt-get update", env=env)
        _run(install, "apt-get install (after apt-get update)", env=env)
    return time.monotonic() - started


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KeystoneServer:
    """One private Keystone on 127.0.0.1 with its own data directory.

    ``start()`` bootstraps on first use and restarts on the same data afterwards (tokens
    stay valid: same fernet keys); ``stop()`` stops the server and keeps the data;
    ``cleanup()`` also removes the data directory.
    """

    def __init__(self, *, port: int | None = None, admin_password: str = "",
                 policy_file: Path = POLICY_FILE, database_url: str = "",
                 workers: int = 1, startup_timeout: float = 60.0,
                 data_dir: Path | None = None) -> None:
        self.port = port or _free_port()
        self.admin_password = admin_password or os.urandom(12).hex()
        self.policy_file = policy_file
        self.workers = workers
        self.startup_timeout = startup_timeout
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
        self.dir = data_dir or Path(tempfile.mkdtemp(prefix="keystone-"))
        self.database_url = database_url or f"sqlite:///{self.dir / 'keystone.db'}"
        self.config_file = self.dir / "keystone.conf"
        self.log_file = self.dir / "keystone.log"
        self.uwsgi_log = self.dir / "uwsgi.log"
        self.region = REGION
        self._proc: subprocess.Popen[bytes] | None = None
        self._bootstrapped = False
        self.timings: dict[str, float] = {}

    # public surface ------------------------------------------------------------------------
    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    @property
    def admin_auth(self) -> dict[str, str]:
        """A clouds.yaml ``auth`` block for the bootstrap admin (project-scoped ``admin``)."""
        return {"auth_url": self.auth_url, "username": "admin",
                "password": self.admin_password, "project_name": "admin",
                "user_domain_id": "default", "project_domain_id": "default"}

    @property
    def system_auth(self) -> dict[str, str]:
        """The bootstrap admin with a system-scoped token (``system_scope: all``)."""
        return {"auth_url": self.auth_url, "username": "admin",
                "password": self.admin_password, "user_domain_id": "default",
                "system_scope": "all"}

    def connection(self, auth: dict[str, Any] | None = None) -> Any:
        """An openstacksdk connection (admin unless ``auth`` is given), no clouds.yaml read."""
        import openstack

        return openstack.connect(auth=auth or self.admin_auth, region_name=self.region,
                                 load_yaml_config=False, load_envvars=False)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The uwsgi process (it leads its own process group), for stopping it from another
        process (``scripts/openstack-up --stop``)."""
        return self._proc.pid if self.running and self._proc is not None else None

    def start(self) -> KeystoneServer:
        """Install if needed, bootstrap on first start, serve, wait until ``GET /v3`` is 200."""
        if self.running:
            return self
        started = time.monotonic()
        self.timings.setdefault("install", ensure_installed())
        if not self._bootstrapped:
            t0 = time.monotonic()
            self._write_config()
            self._bootstrap()
            self.timings["bootstrap"] = time.monotonic() - t0
        t0 = time.monotonic()
        self._serve()
        self.timings["serve"] = time.monotonic() - t0
        if not self._bootstrapped:
            self._bootstrapped = True
            self._seed()
        self.timings["start_total"] = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Stop the server (SIGINT, then SIGKILL after 10 s); the data stays for ``start()``."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        self._wait_port_free()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.uwsgi_log, self.log_file):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no log written)"

    def __enter__(self) -> KeystoneServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # internals -----------------------------------------------------------------------------
    def _write_config(self) -> None:
        for sub in ("fernet-keys", "credential-keys"):
            (self.dir / sub).mkdir(mode=0o700, exist_ok=True)
        self.config_file.write_text(f"""\
[DEFAULT]
log_file = {self.log_file}
use_stderr = false
debug = false

[database]
connection = {self.database_url}

[identity]
# Test only: 4 bcrypt rounds instead of 12 make user creation and token issue fast.
password_hash_rounds = 4

[token]
provider = fernet
expiration = 7200

[fernet_tokens]
key_repository = {self.dir / 'fernet-keys'}

[fernet_receipts]
key_repository = {self.dir / 'fernet-keys'}

[credential]
key_repository = {self.dir / 'credential-keys'}

[cache]
enabled = false

[oslo_policy]
policy_file = {self.policy_file}
# policy_dirs stays at its default (policy.d next to this file, which does not exist):
# an empty value would make oslo.policy parse this whole directory as policy files.

[unified_limit]
enforcement_model = flat
""")

    def _manage(self, *args: str) -> str:
        try:
            return _run(["keystone-manage", "--config-file", str(self.config_file), *args],
                        f"keystone-manage {args[0]}", timeout=300)
        except KeystoneError as exc:
            # keystone-manage logs its real error to the log file, not to stderr.
            raise KeystoneError(f"{exc}\n{self.log_tail(15)}") from None

    def _bootstrap(self) -> None:
        import grp
        import pwd

        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        owner = ["--keystone-user", user, "--keystone-group", group]
        self._manage("db_sync")
        if self.database_url.startswith("sqlite:///"):
            # WAL (persistent in the file): a reader that Keystone leaves open (a pooled
            # connection mid-SELECT) no longer blocks the next writer's commit, which in the
            # default rollback journal ends in "database is locked" after 5 s.
            import sqlite3

            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as db:
                db.execute("PRAGMA journal_mode=WAL")
        self._manage("fernet_setup", *owner)
        self._manage("credential_setup", *owner)
        self._manage("bootstrap", "--bootstrap-password", self.admin_password,
                     "--bootstrap-username", "admin", "--bootstrap-project-name", "admin",
                     "--bootstrap-role-name", "admin", "--bootstrap-service-name", "keystone",
                     "--bootstrap-region-id", self.region,
                     "--bootstrap-admin-url", self.auth_url,
                     "--bootstrap-public-url", self.auth_url,
                     "--bootstrap-internal-url", self.auth_url)

    def _serve(self) -> None:
        uwsgi = shutil.which("uwsgi")
        wsgi = shutil.which("keystone-wsgi-public")
        if not uwsgi or not wsgi:
            raise KeystoneError("uwsgi or keystone-wsgi-public not found on PATH")
        if self.database_url.startswith("sqlite"):
            wsgi = str(SQLITE_FK_WSGI)  # cascades as on MySQL/PostgreSQL (see that file)
        env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(self.config_file)}
        env.pop("OS_KEYSTONE_CONFIG_DIR", None)
        cmd = [uwsgi, "--plugin", "python3", "--http-socket", f"127.0.0.1:{self.port}",
               "--wsgi-file", wsgi, "--add-header", "Connection: close",
               "--processes", str(self.workers), "--threads", "1",
               "--die-on-term", "--need-app", "--skip-atexit", "--lazy-apps",
               "--buffer-size", "65535",
               "--logto", str(self.uwsgi_log)]
        if self.workers > 1:
            cmd.append("--master")
        self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        last = ""
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise KeystoneError(f"uwsgi exited with {code} while starting Keystone\n"
                                    + self.log_tail())
            try:
                with urllib.request.urlopen(f"{self.auth_url}", timeout=5) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        self.stop()
        raise KeystoneError(f"Keystone did not answer GET /v3 within {self.startup_timeout:g}s"
                            f" (last: {last})\n" + self.log_tail())

    def _wait_port_free(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)

    def _seed(self) -> None:
        """SCS roles (``manager`` implies ``member`` as in Keystone 2024.2) and the services
        that unified limits refer to."""
        try:
            conn = self.connection()
            roles = {role.name: role for role in conn.identity.roles()}
            for name in SCS_ROLES:
                if name not in roles:
                    roles[name] = conn.identity.create_role(name=name)
            # PUT is idempotent in effect: 201 when created, 409 when the rule exists.
            response = conn.session.put(f"{self.auth_url}/roles/{roles['manager'].id}"
                                        f"/implies/{roles['member'].id}", raise_exc=False)
            if response.status_code not in (200, 201, 204, 409):
                raise KeystoneError(f"implied role manager→member: HTTP "
                                    f"{response.status_code} {response.text}")
            ensure_services(conn, self.region)
            conn.close()
        except Exception as exc:
            self.stop()
            raise KeystoneError(f"seeding Keystone failed: {exc}\n{self.log_tail()}") from exc


def ensure_services(conn: Any, region: str) -> dict[str, str]:
    """Catalog services for compute, block storage and network (type → ID), created if
    missing. Unified limits name a service; a real cloud has these from its deployment."""
    found: dict[str, str] = {}
    existing = {service.type: service.id for service in conn.identity.services()}
    for service_type, name in SERVICES.items():
        service_id = existing.get(service_type)
        if service_id is None:
            service_id = conn.identity.create_service(type=service_type, name=name,
                                                      enabled=True).id
        found[service_type] = service_id
    return found


def keystone_fixture() -> Iterator[KeystoneServer]:
    """The body of the session fixture ``keystone`` (registered in tests/conftest.py).

    Fails, never skips: a Keystone that cannot be installed or started must turn the run red
    with the reason, or the identity provider would ship untested.
    """
    import pytest

    server = KeystoneServer()
    try:
        try:
            server.start()
        except KeystoneError as exc:
            pytest.fail(f"could not install/start Keystone: {exc}", pytrace=False)
        yield server
    finally:
        server.cleanup()
