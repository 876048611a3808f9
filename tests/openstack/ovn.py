"""OVN for the harness: the northbound and southbound databases, ``ovn-northd`` and one
chassis, all in user space on 127.0.0.1 (Debian's ``ovn-central`` 23.03 binaries, started
directly, never the packaged services).

Why no ``ovn-controller`` or ``ovs-vswitchd``: Neutron (ML2/OVN) and Octavia's OVN provider
only write and read the OVN databases; nothing here forwards packets (Nova's fake driver plugs
no interfaces). What they need of a hypervisor is its chassis in the southbound database:
ML2/OVN binds a port only to a host with a live ``ovn-controller`` agent, which it reads from
the ``Chassis``/``Chassis_Private`` rows. :func:`register_chassis` writes those rows for the
compute host (``hostname`` as Nova reports it, ``ovn-bridge-mappings=public:br-ex`` so ports
on the flat external network bind, ``ovn-cms-options=enable-chassis-as-gw`` so router gateways
are scheduled on it). Neutron calls an agent alive while its ``Chassis_Private.nb_cfg`` is not
behind the northbound ``nb_cfg`` (which Neutron bumps to ping agents); with no controller to
answer the pings, the row carries a value far ahead, so the agent stays alive. Logical switch
ports stay ``down`` (no controller claims them), so Neutron ports stay DOWN; Nova does not wait
for them (``vif_plugging_timeout = 0``).

Every process gets ``OVS_*``/``OVN_*`` run, log and database directories in the harness
directory and explicit ``--unixctl`` sockets, so nothing touches ``/var/run/ovn``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .processes import Daemon, OpenStackError

NB_SCHEMA = Path("/usr/share/ovn/ovn-nb.ovsschema")
SB_SCHEMA = Path("/usr/share/ovn/ovn-sb.ovsschema")
# Far ahead of any nb_cfg Neutron reaches by pinging agents (see the module docstring).
CHASSIS_NB_CFG = 1 << 40


def remote(port: int) -> str:
    return f"tcp:127.0.0.1:{port}"


def _env(base: Path) -> dict[str, str]:
    dirs = {"RUNDIR": base, "LOGDIR": base, "DBDIR": base, "SYSCONFDIR": base}
    return {f"{p}_{k}": str(v) for p in ("OVS", "OVN") for k, v in dirs.items()}


def _run(cmd: list[str], base: Path, timeout: float = 20) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**_env(base), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                              check=False)
    except subprocess.TimeoutExpired:
        raise OpenStackError(f"ovn: {' '.join(cmd)} timed out after {timeout:g}s") from None
    if done.returncode != 0:
        raise OpenStackError(f"ovn: {' '.join(cmd)} exited with {done.returncode}: "
                             f"{(done.stdout + done.stderr).strip()[-2000:]}")
    return done.stdout


def create_databases(base: Path) -> None:
    """Fresh, empty NB and SB database files (a rebuilt harness starts from nothing)."""
    base.mkdir(parents=True, exist_ok=True)
    for name, schema in (("ovnnb_db.db", NB_SCHEMA), ("ovnsb_db.db", SB_SCHEMA)):
        (base / name).unlink(missing_ok=True)
        _run(["ovsdb-tool", "create", str(base / name), str(schema)], base)


def db_answers(base: Path, port: int, database: str) -> bool | str:
    try:
        dbs = _run(["ovsdb-client", "--timeout=3", "list-dbs", remote(port)], base, 5)
    except OpenStackError as exc:
        return str(exc)
    return database in dbs.split() or f"{database} not served: {dbs.strip()!r}"


DATABASES = {"ovn-nb": "OVN_Northbound", "ovn-sb": "OVN_Southbound"}


def ovsdb_daemon(name: str, base: Path, port: int) -> Daemon:
    """``ovsdb-server`` for ``ovn-nb`` or ``ovn-sb`` on a private TCP port."""
    short = name.removeprefix("ovn-")
    database = DATABASES[name]
    cmd = ["ovsdb-server", str(base / f"ovn{short}_db.db"), f"--remote=ptcp:{port}:127.0.0.1",
           f"--remote=punix:{base / f'ovn{short}_db.sock'}",
           f"--unixctl={base / f'ovn{short}_db.ctl'}", "-vconsole:info", "-vsyslog:off",
           "-vfile:off"]
    return Daemon(name, cmd, base.parent / "logs" / f"{name}.log", env=_env(base),
                  health=lambda: db_answers(base, port, database), timeout=30)


def _northd_active(base: Path) -> bool | str:
    try:
        status = _run(["ovn-appctl", "-t", str(base / "ovn-northd.ctl"), "status"], base, 5)
    except OpenStackError as exc:
        return str(exc)
    return "active" in status or status.strip()


def northd_daemon(base: Path, nb_port: int, sb_port: int) -> Daemon:
    """``ovn-northd``: translates Neutron's and Octavia's northbound rows into flows."""
    cmd = ["ovn-northd", f"--ovnnb-db={remote(nb_port)}", f"--ovnsb-db={remote(sb_port)}",
           f"--unixctl={base / 'ovn-northd.ctl'}", "-vconsole:info", "-vsyslog:off",
           "-vfile:off"]
    return Daemon("ovn-northd", cmd, base.parent / "logs" / "ovn-northd.log", env=_env(base),
                  health=lambda: _northd_active(base), timeout=30)


def register_chassis(base: Path, sb_port: int, host: str) -> None:
    """The compute host as an OVN chassis (gateway, physnet ``public``) with a live agent."""
    sbctl = ["ovn-sbctl", f"--db={remote(sb_port)}", "--timeout=10"]
    options = {"ovn-bridge-mappings": "public:br-ex",
               "ovn-cms-options": "enable-chassis-as-gw", "datapath-type": "system",
               "iface-types": "geneve,internal,system"}
    # Neutron (Zed) reads external_ids; OVN 22.09+ itself reads other_config.
    settings = [f"{column}:{key}={value}" for column in ("external_ids", "other_config")
                for key, value in options.items()]
    _run([*sbctl, "--may-exist", "chassis-add", host, "geneve", "127.0.0.1"], base)
    _run([*sbctl, "set", "Chassis", host, f"hostname={host}", *settings], base)
    uuid = _run([*sbctl, "--bare", "--columns=_uuid", "find", "Chassis", f"name={host}"],
                base).strip()
    if not _run([*sbctl, "--bare", "--columns=_uuid", "find", "Chassis_Private",
                 f"name={host}"], base).strip():
        _run([*sbctl, "create", "Chassis_Private", f"name={host}", f"chassis={uuid}",
              f"nb_cfg={CHASSIS_NB_CFG}"], base)


def nbctl(base: Path, nb_port: int, *args: str) -> str:
    """``ovn-nbctl`` against the harness's northbound database (tests inspect it)."""
    return _run(["ovn-nbctl", f"--db={remote(nb_port)}", "--timeout=10", *args], base)
