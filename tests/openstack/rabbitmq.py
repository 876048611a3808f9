"""A private RabbitMQ for the harness: Debian's ``rabbitmq-server`` started directly.

Why not the packaged service: no systemd, and a test run must not share a broker with
anything else. ``/usr/lib/rabbitmq/bin/rabbitmq-server`` is the foreground server script; all
its state goes under ``RABBITMQ_MNESIA_BASE``/``RABBITMQ_LOG_BASE`` in the harness directory,
with its own node name and distribution port, no plugins, listening on 127.0.0.1 only. The
built-in ``guest`` user may log in from loopback, which is all the services need.

Erlang would start a shared ``epmd -daemon`` that outlives everything; the harness runs its
own epmd in the foreground on a private port instead (``ERL_EPMD_PORT``), so stopping the
harness stops it too.
"""

from __future__ import annotations

import socket
from pathlib import Path

from .processes import Daemon, free_port

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def amqp_ready(port: int) -> bool | str:
    """True once the broker answers the AMQP 0-9-1 protocol header with connection.start."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame = sock.recv(8)
    except OSError as exc:
        return str(exc)
    return frame[:1] == b"\x01" or f"unexpected answer {frame!r}"


def epmd_daemon(base: Path, port: int) -> Daemon:
    """Erlang's port mapper for the broker's node, on a private port."""
    return Daemon("epmd", ["epmd", "-address", "127.0.0.1", "-port", str(port)],
                  base / "epmd.log", health=lambda: _listening(port), timeout=15)


def _listening(port: int) -> bool | str:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        return str(exc)
    return True


def rabbitmq_daemon(base: Path, port: int, epmd_port: int) -> Daemon:
    base.mkdir(parents=True, exist_ok=True)
    plugins = base / "enabled_plugins"
    plugins.write_text("[].\n")
    cookie_home = base / "home"
    cookie_home.mkdir(exist_ok=True)
    node = f"scs{port}@localhost"
    env = {"RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
           "RABBITMQ_NODENAME": node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
           "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(free_port()),
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
           "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),  # absent: defaults
           "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"), "HOME": str(cookie_home),
           "ERL_EPMD_ADDRESS": "127.0.0.1", "ERL_EPMD_PORT": str(epmd_port), "RABBITMQ_LOGS": "-"}
    return Daemon("rabbitmq", [SERVER], base / "rabbitmq.log", env=env,
                  health=lambda: amqp_ready(port), timeout=90)
