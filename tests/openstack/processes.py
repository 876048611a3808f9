"""Start, health-check and stop the harness's daemons, each in its own process group.

Why process groups: uwsgi and the eventlet services fork workers; stopping the group stops
them all, and nothing outlives the harness. Why the pid is checked against the command line
before a signal is sent: ``--stop`` may run long after ``up`` (another shell, a reboot of the
test run), and a recycled pid must never be killed by mistake.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Daemon", "OpenStackError", "free_port", "http_ok", "log_tail", "stop_group"]


class OpenStackError(RuntimeError):
    """A service of the harness failed; the message names it and carries its log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} was not written)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text)


def http_ok(url: str) -> bool | str:
    """True when ``url`` answers below 500 (version documents answer 200 or 300)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
            return bool(resp.status < 500) or f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return exc.code < 500 or f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return str(exc)


def wait_until(check: Callable[[], bool | str], timeout: float, what: str,
               alive: Callable[[], bool] = lambda: True, logs: Path | None = None) -> None:
    """Poll ``check`` (True = done, a string = why not yet) until ``timeout``; fail with the
    last reason and the log tail, early if ``alive`` says the process died."""
    deadline = time.monotonic() + timeout
    last: bool | str = False
    while time.monotonic() < deadline:
        if not alive():
            raise OpenStackError(f"{what}: the process exited\n"
                                 + (log_tail(logs) if logs else ""))
        try:
            last = check()
        except Exception as exc:  # any error means "not yet"; the last one is reported
            last = f"{type(exc).__name__}: {exc}"
        if last is True:
            return
        time.sleep(0.5)
    raise OpenStackError(f"{what}: not healthy within {timeout:g}s (last: {last})\n"
                         + (log_tail(logs) if logs else ""))


def _marked(pid: int, marker: str) -> bool:
    """Whether the process's command line or environment mentions ``marker``."""
    for part in ("cmdline", "environ"):
        try:
            if marker.encode() in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
        except OSError:
            continue
    return False


def _stat(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name: [state, ppid, pgrp, ...] ([] if gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def _group_members(pgid: int, marker: str) -> list[int]:
    """Live processes of group ``pgid`` that belong to the harness (the leader may be gone,
    e.g. rabbitmq-server's shell, while its children run on)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X") \
                    and _marked(int(entry.name), marker):
                members.append(int(entry.name))
    return members


def stop_group(pgid: int, marker: str, grace: float = 15.0) -> None:
    """SIGTERM the harness's processes in group ``pgid`` (those whose command line or
    environment contains ``marker``), SIGKILL what is left after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while members := _group_members(pgid, marker):
        for pid in members:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGKILL:
            time.sleep(0.2)
            if time.monotonic() > deadline + 10:
                raise OpenStackError(f"processes {members} survive SIGKILL")
            continue
        time.sleep(0.2)
        if time.monotonic() > deadline:
            sig = signal.SIGKILL


@dataclass
class Daemon:
    """One long-running service process: command, environment, log file and health check."""

    name: str
    cmd: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    health: Callable[[], bool | str] | None = None
    timeout: float = 90.0
    pid: int | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            # cwd: crash dumps (Erlang's erl_crash.dump, MnesiaCore) land beside the log.
            proc = subprocess.Popen(self.cmd, env={**os.environ, **self.env},
                                    cwd=self.log.parent, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = proc.pid

    @property
    def alive(self) -> bool:
        return self.pid is not None and _alive(self.pid)

    def wait_healthy(self) -> None:
        wait_until(self.health or (lambda: True), self.timeout, self.name,
                   alive=lambda: self.alive, logs=self.log)
