"""The whole test cloud: MariaDB, RabbitMQ, OVN, Keystone, Placement, Glance, Nova, Neutron
(ML2/OVN), Cinder on a one-node Ceph and Octavia (OVN and amphora providers) on 127.0.0.1,
started in dependency order with a health check each.

Why one object: the provider tests, the kubectl suite and ``scripts/openstack-up`` need the
same cloud, and the slow part (Keystone's bootstrap and the schema migrations, 40-140 s on
two cores depending on their load) must run once. State
lives in one directory (``state.json``: ports, passwords, pids), so ``up()`` on a directory
whose cloud is still healthy just reuses it, a half-dead one is stopped and started afresh,
and ``down()`` from any process stops every process the harness started (checked against the
directory before a signal is sent).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from tests.keystone import KeystoneError, KeystoneServer
from tests.mariadb import MariaDBError, MariaDBServer

from . import configs, ovn
from .ceph import CLIENT, POOL, CephCluster
from .install import ensure_installed
from .processes import Daemon, OpenStackError, free_port, http_ok, log_tail, stop_group
from .rabbitmq import epmd_daemon, rabbitmq_daemon
from .seed import seed_catalog, seed_resources, wait_for_compute_services

__all__ = ["CLOUD_NAME", "OpenStackCloud"]

CLOUD_NAME = "scs-harness"
HERE = Path(__file__).resolve().parent
DATABASES = ("placement", "glance", "nova_api", "nova_cell0", "nova", "neutron", "cinder",
             "octavia")
API_PORTS = ("placement", "glance", "nova", "neutron", "cinder", "octavia")
# Started before everything else (RabbitMQ with its epmd, OVN); the rest after the migrations.
EARLY = ("epmd", "rabbitmq", "ovn-nb", "ovn-sb", "ovn-northd")
PYTHON = "/usr/bin/python3"


def _module_main(module: str) -> list[str]:
    """Run a service's ``main()`` from Debian's Python packages (for services whose console
    script comes only with a package we do not install, e.g. nova-compute's hypervisor deps)."""
    return [PYTHON, "-c", f"import sys; from {module} import main; sys.exit(main())"]


class OpenStackCloud:
    """A private OpenStack in ``dir`` (a temp dir by default). ``up()``/``down()``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="openstack-"))
        self.state_file = self.dir / "state.json"
        self.clouds_yaml = self.dir / "clouds.yaml"
        self.logs = self.dir / "logs"
        self.state: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self._daemons: dict[str, Daemon] = {}
        self.ceph = CephCluster(self.dir / "ceph", logs=self.logs)

    # -- public surface ----------------------------------------------------------------------
    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.state['ports']['keystone']}/v3"

    @property
    def admin_auth(self) -> dict[str, str]:
        return {"auth_url": self.auth_url, "username": "admin",
                "password": self.state["admin_password"], "project_name": "admin",
                "user_domain_id": "default", "project_domain_id": "default"}

    def connection(self, auth: dict[str, Any] | None = None) -> Any:
        import openstack

        return openstack.connect(auth=auth or self.admin_auth, region_name=configs.REGION,
                                 load_yaml_config=False, load_envvars=False)

    def up(self) -> OpenStackCloud:
        """Start everything (installing packages first if needed), or reuse a healthy cloud
        already running from this directory."""
        started = time.monotonic()
        if self.load():
            if self.unhealthy() is None:
                self.timings["reused"] = time.monotonic() - started
                return self
            self.down(remove=True)
        self.timings["install"] = ensure_installed()
        try:
            self._start()
        except (OpenStackError, KeystoneError, MariaDBError) as exc:
            self.down(remove=False)
            raise OpenStackError(f"{exc}\n(logs kept in {self.logs})") from None
        self.timings["up"] = time.monotonic() - started - self.timings["install"]
        return self

    def down(self, remove: bool = True) -> None:
        """Stop every process of this cloud (also when started by another process)."""
        self.load()
        marker = str(self.dir)
        # Reverse start order: API users first, the database and the broker last.
        for _name, pid in reversed(list(self.state.get("pids", {}).items())):
            stop_group(pid, marker)
        self.ceph.stop()  # also when start-up failed before its pids were recorded
        self._daemons.clear()
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.state = {}
        elif self.state:
            self.state["pids"] = {}
            self._save()

    def load(self) -> bool:
        """Read ``state.json`` of an earlier ``up()`` (this or another process), if any."""
        if not self.state and self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())
        return bool(self.state)

    def unhealthy(self) -> str | None:
        """None when every process is alive and every API answers; else what is wrong."""
        for name, pid in self.state.get("pids", {}).items():
            if not Path(f"/proc/{pid}").exists():
                return f"{name} (pid {pid}) is not running"
        if "ports" not in self.state or not self.state.get("ready"):
            return "the cloud never finished starting"
        for name in ("keystone", *API_PORTS):
            answer = http_ok(f"http://127.0.0.1:{self.state['ports'][name]}/")
            if answer is not True:
                return f"{name} does not answer: {answer}"
        for name, database in ovn.DATABASES.items():
            answer = ovn.db_answers(self.ovn_dir, self.state["ports"][name], database)
            if answer is not True:
                return f"{name} does not answer: {answer}"
        return self.ceph.unhealthy()

    @property
    def ovn_dir(self) -> Path:
        return self.dir / "ovn"

    def ovn_nbctl(self, *args: str) -> str:
        """``ovn-nbctl`` against the cloud's OVN northbound database (e.g. ``lb-list``)."""
        return ovn.nbctl(self.ovn_dir, self.state["ports"]["ovn-nb"], *args)

    def stop_service(self, name: str) -> None:
        """Stop one service (fault tests: a backend going away mid-reconcile)."""
        pid = self.state["pids"].pop(name)
        stop_group(pid, str(self.dir))
        self._save()

    def start_service(self, name: str) -> None:
        """Start a service stopped by :meth:`stop_service` again and wait until healthy."""
        daemon = self._daemon_specs()[name]
        daemon.start()
        self.state["pids"][name] = daemon.pid
        self._save()
        daemon.wait_healthy()

    def memory_mib(self) -> float:
        """Memory of all the cloud's processes in MiB: the sum of their PSS (shared pages
        split between the processes sharing them, so forked workers are not counted twice)."""
        groups = set(self.state.get("pids", {}).values())
        total_kib = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) not in groups:
                    continue
                for line in (entry / "smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total_kib += int(line.split()[1])
            except (OSError, IndexError, ValueError):
                continue
        return total_kib / 1024

    # -- start-up ------------------------------------------------------------------------------
    def _save(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=1))

    def _timed(self, what: str, started: float) -> None:
        self.timings[what] = round(time.monotonic() - started, 1)

    def _start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        ports = {name: free_port() for name in ("keystone", "rabbitmq", "epmd", "ovn-nb",
                                                "ovn-sb", *API_PORTS)}
        self.state = {"ports": ports, "pids": {}, "ready": False,
                      "admin_password": os.urandom(12).hex(),
                      "service_password": os.urandom(12).hex()}
        t0 = time.monotonic()
        db = MariaDBServer(self.dir / "mariadb")
        db.start()
        self.state["pids"]["mariadb"] = db.pid
        self._save()
        db.create_databases(*DATABASES, "keystone")
        self.state["db"] = {"port": db.port, "password": db.password}
        self._timed("mariadb", t0)

        # OVN's databases start empty and are healthy in well under a second; the chassis
        # must exist before Neutron binds a port.
        t0 = time.monotonic()
        ovn.create_databases(self.ovn_dir)
        specs = self._daemon_specs()
        for name in EARLY:
            self._launch(specs[name])
        for name in ("ovn-nb", "ovn-sb", "ovn-northd"):
            self._daemons[name].wait_healthy()
        ovn.register_chassis(self.ovn_dir, self.state["ports"]["ovn-sb"], configs.COMPUTE_HOST)
        self._timed("ovn", t0)

        # Keystone's bootstrap, the other services' schema migrations and Ceph (for Cinder)
        # are independent.
        t0 = time.monotonic()
        self._write_configs(db)
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = [pool.submit(self._start_keystone, db), pool.submit(self._migrate, db),
                    pool.submit(self._start_ceph)]
            for job in jobs:
                job.result()
        self.state["pids"].update(self.ceph.pids())
        self._save()
        self._timed("keystone_and_db_sync", t0)

        t0 = time.monotonic()
        self._daemons["rabbitmq"].wait_healthy()
        specs = self._daemon_specs()
        services = [n for n in specs if n not in EARLY]
        for name in services:
            self._launch(specs[name])
        for name in services:
            self._daemons[name].wait_healthy()
        conn = self.connection()
        wait_for_compute_services(conn, self._daemons, timeout=120)
        self._run("nova-db", ["nova-manage", "--config-file", str(self._etc("nova")),
                              "cell_v2", "discover_hosts", "--verbose"])
        self._timed("services", t0)

        t0 = time.monotonic()
        seed_resources(conn)
        self._timed("seed", t0)
        self.state["ready"] = True
        self._save()
        self._write_client_config()

    def _start_keystone(self, db: MariaDBServer) -> None:
        keystone = KeystoneServer(port=self.state["ports"]["keystone"],
                                  admin_password=self.state["admin_password"],
                                  database_url=db.url("keystone"), workers=2,
                                  data_dir=self.dir / "keystone")
        keystone.start()
        self.state["pids"]["keystone"] = keystone.pid
        self._save()
        seed_catalog(self.connection(), self.state["ports"], self.state["service_password"])

    def _start_ceph(self) -> None:
        """Cinder's storage; its pids are recorded once the thread is done (``down()`` finds
        them by their pid files also if start-up fails before)."""
        t0 = time.monotonic()
        self.ceph.start()
        self._timed("ceph", t0)

    def _launch(self, daemon: Daemon) -> None:
        # The directory in the environment marks the process as ours for stop_group, also
        # when its command line does not mention it (epmd, rabbitmq's beam, uwsgi).
        daemon.env.setdefault("SCS_OPENSTACK_HARNESS", str(self.dir))
        daemon.start()
        self._daemons[daemon.name] = daemon
        self.state["pids"][daemon.name] = daemon.pid
        self._save()

    def _etc(self, name: str) -> Path:
        return self.dir / "etc" / name / f"{name}.conf"

    def _write_configs(self, db: MariaDBServer) -> None:
        ports = self.state["ports"]
        common = configs.Common(self.dir, self.auth_url, ports["rabbitmq"],
                                self.state["service_password"])
        nb, sb = ovn.remote(ports["ovn-nb"]), ovn.remote(ports["ovn-sb"])
        files = {
            "placement": configs.placement_conf(common, db.url("placement")),
            "glance": configs.glance_conf(common, db.url("glance"), ports["glance"]),
            "nova": configs.nova_conf(common, db.url("nova_api"), db.url("nova"),
                                      ports["nova"]),
            "neutron": configs.neutron_conf(common, db.url("neutron"), ports["neutron"], nb, sb),
            "cinder": configs.cinder_conf(common, db.url("cinder"), ports["cinder"],
                                          self.ceph.conf, POOL, CLIENT),
            "octavia": configs.octavia_conf(common, db.url("octavia"), ports["octavia"], nb,
                                            sb),
        }
        for name, text in files.items():
            self._etc(name).parent.mkdir(parents=True, exist_ok=True)
            self._etc(name).write_text(text)
            for sub in ("state", "lock"):
                (self.dir / sub / name).mkdir(parents=True, exist_ok=True)
        for sub in ("nova/instances", "glance/images", "glance/staging"):
            (self.dir / "state" / sub).mkdir(parents=True, exist_ok=True)
        plugin = self.dir / "plugins"
        plugin.mkdir(exist_ok=True)
        shutil.copy(HERE / "octavia_sockets.py", plugin / "scs_octavia_sockets.py")
        # Octavia's worker signs (noop) amphora certificates with a CA of its own.
        certs = self.dir / "state" / "octavia"
        self._run("octavia-ca", ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                 "-days", "30", "-subj", "/CN=scs-harness-octavia-ca",
                                 "-keyout", str(certs / "ca.key"),
                                 "-out", str(certs / "ca.pem")])

    def _run(self, name: str, cmd: list[str]) -> None:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=600,
                                  check=False)
        if done.returncode != 0:
            raise OpenStackError(f"{name}: {' '.join(cmd)} exited with {done.returncode}\n"
                                 + log_tail(log))

    def _migrate(self, db: MariaDBServer) -> None:
        """Schema migrations, in parallel (each service has its own database)."""
        nova = ["nova-manage", "--config-file", str(self._etc("nova"))]

        def nova_sync() -> None:
            self._run("nova-db", [*nova, "api_db", "sync"])
            self._run("nova-db", [*nova, "cell_v2", "map_cell0", "--database_connection",
                                  db.url("nova_cell0")])
            self._run("nova-db", [*nova, "cell_v2", "create_cell", "--name", "cell1",
                                  "--verbose"])
            self._run("nova-db", [*nova, "db", "sync"])

        jobs = [
            lambda: self._run("placement-db", ["placement-manage", "--config-file",
                                               str(self._etc("placement")), "db", "sync"]),
            lambda: self._run("glance-db", ["glance-manage", "--config-file",
                                            str(self._etc("glance")), "db_sync"]),
            nova_sync,
            lambda: self._run("neutron-db", ["neutron-db-manage", "--config-file",
                                             str(self._etc("neutron")), "upgrade", "heads"]),
            lambda: self._run("cinder-db", ["cinder-manage", "--config-file",
                                            str(self._etc("cinder")), "db", "sync"]),
            lambda: self._run("octavia-db", ["octavia-db-manage", "--config-file",
                                             str(self._etc("octavia")), "upgrade", "head"]),
        ]
        with ThreadPoolExecutor(max_workers=3) as pool:
            for future in [pool.submit(job) for job in jobs]:
                future.result()

    def _daemon_specs(self) -> dict[str, Daemon]:
        """Every daemon of the cloud, in start order (APIs before the services using them)."""
        ports = self.state["ports"]
        base = self.dir / "rabbitmq"

        def api(port_name: str, path: str = "/") -> Any:
            return lambda: http_ok(f"http://127.0.0.1:{ports[port_name]}{path}")

        def uwsgi(name: str, wsgi: str, env: dict[str, str], argv: str = "",
                  imports: tuple[str, ...] = ()) -> Daemon:
            cmd = ["uwsgi", "--plugin", "python3", "--http-socket",
                   f"127.0.0.1:{ports[name]}", "--wsgi-file", wsgi, "--master",
                   "--processes", "2", "--threads", "1", "--die-on-term", "--need-app",
                   "--lazy-apps", "--buffer-size", "65535", "--add-header",
                   "Connection: close"]
            if argv:
                cmd += ["--pyargv", argv]
            if imports:
                cmd += ["--pythonpath", str(self.dir / "plugins")]
                cmd += [arg for module in imports for arg in ("--import", module)]
            return Daemon(name, cmd, self.logs / f"{name}.log", env=env, health=api(name))

        def conf(name: str) -> list[str]:
            return ["--config-file", str(self._etc(name))]

        nova = conf("nova")
        sockets = self.dir / "state" / "octavia"
        octavia_env = {"SCS_OCTAVIA_SOCKET_DIR": str(sockets)}
        daemons = [
            epmd_daemon(base, ports["epmd"]),
            rabbitmq_daemon(base, ports["rabbitmq"], ports["epmd"]),
            ovn.ovsdb_daemon("ovn-nb", self.ovn_dir, ports["ovn-nb"]),
            ovn.ovsdb_daemon("ovn-sb", self.ovn_dir, ports["ovn-sb"]),
            ovn.northd_daemon(self.ovn_dir, ports["ovn-nb"], ports["ovn-sb"]),
            uwsgi("placement", "/usr/bin/placement-api",
                  {"OS_PLACEMENT_CONFIG_DIR": str(self._etc("placement").parent)}),
            Daemon("glance", ["glance-api", *conf("glance")], self.logs / "glance.log",
                   health=api("glance")),
            Daemon("nova", ["nova-api", *nova], self.logs / "nova.log", health=api("nova")),
            Daemon("nova-conductor", ["nova-conductor", *nova],
                   self.logs / "nova-conductor.log"),
            Daemon("nova-scheduler", ["nova-scheduler", *nova],
                   self.logs / "nova-scheduler.log"),
            Daemon("neutron", ["neutron-server", *conf("neutron")], self.logs / "neutron.log",
                   health=api("neutron")),
            Daemon("cinder", ["cinder-api", *conf("cinder")], self.logs / "cinder.log",
                   health=api("cinder")),
            Daemon("cinder-scheduler", ["cinder-scheduler", *conf("cinder")],
                   self.logs / "cinder-scheduler.log"),
            Daemon("cinder-volume", [*_module_main("cinder.cmd.volume"), *conf("cinder")],
                   self.logs / "cinder-volume.log"),
            Daemon("nova-compute", [*_module_main("nova.cmd.compute"), *nova],
                   self.logs / "nova-compute.log"),
            # The driver agent first: the OVN provider in the API reports through its sockets.
            Daemon("octavia-driver-agent",
                   [PYTHON, "-c", "import sys, scs_octavia_sockets; from octavia.cmd."
                    "driver_agent import main; sys.exit(main())", *conf("octavia")],
                   self.logs / "octavia-driver-agent.log",
                   env={**octavia_env, "PYTHONPATH": str(self.dir / "plugins")},
                   health=lambda: all((sockets / f"{n}.sock").exists()
                                      for n in ("status", "stats", "get"))
                   or "driver agent sockets not there yet"),
            uwsgi("octavia", "/usr/bin/octavia-wsgi", octavia_env,
                  argv=f"--config-file {self._etc('octavia')}",
                  imports=("scs_octavia_sockets",)),
            Daemon("octavia-worker", [*_module_main("octavia.cmd.octavia_worker"),
                                      *conf("octavia")], self.logs / "octavia-worker.log"),
        ]
        return {d.name: d for d in daemons}

    def _write_client_config(self) -> None:
        auth = self.admin_auth
        clouds = {"clouds": {CLOUD_NAME: {"auth": auth, "region_name": configs.REGION,
                                          "identity_api_version": 3}}}
        self.clouds_yaml.write_text(yaml.safe_dump(clouds, sort_keys=False))
        self.clouds_yaml.chmod(0o600)
        env = {"OS_AUTH_URL": auth["auth_url"], "OS_USERNAME": auth["username"],
               "OS_PASSWORD": auth["password"], "OS_PROJECT_NAME": auth["project_name"],
               "OS_USER_DOMAIN_ID": "default", "OS_PROJECT_DOMAIN_ID": "default",
               "OS_REGION_NAME": configs.REGION, "OS_IDENTITY_API_VERSION": "3"}
        (self.dir / "openrc").write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
