"""Several worker processes on one listening socket (``scs serve --workers N``).

Why processes: one Python process runs its Python code on one core at a time (the GIL), so
the read path of a 2-core machine left a core idle. Like gunicorn, the parent binds the
socket once and forks N workers that inherit it; the kernel hands each new connection to one
of the workers blocked in ``accept``. Each worker builds its own app, store connections,
watch hub and caches; what must run once in the whole cluster (controllers, the ledger, the
garbage collector) already runs under leases in the store, so N workers behave like N
replicas on one machine.

Why fork and not uvicorn's multiprocess mode: that one pickles its ``Config`` into a
spawned interpreter, and our protocol class is configured at run time (a class made by
``GuardedH11Protocol.configure``), which does not pickle; a forked child simply inherits
the function it runs and builds the rest itself.

The parent only supervises: SIGTERM or SIGINT stops every worker (SIGTERM, then SIGKILL
after ``stop_seconds``), and a worker that dies is started again after a back-off that
doubles while it keeps dying early (1 s up to 30 s). Workers run in their own process group
(a Ctrl-C reaches the parent only, which stops them once, gracefully) and receive SIGTERM
when the parent dies, even by SIGKILL (``PR_SET_PDEATHSIG``), so none is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger("central_api.workers")

AUTO = "auto"
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
HEALTHY_SECONDS = 60.0
"""A worker that ran this long before dying starts again after the first back-off."""
SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1


def worker_count(setting: int | str) -> int:
    """The number of workers ``setting`` asks for: a positive number, or ``auto`` for the
    CPUs this process may run on. Raises ValueError for anything else."""
    if setting == AUTO:
        return len(os.sched_getaffinity(0))
    try:
        count = int(setting)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"workers must be a positive number or {AUTO!r}, got {setting!r}")
    return count


def listen_socket(host: str, port: int, backlog: int) -> socket.socket:
    """The listening TCP socket every worker accepts on (IPv6 for an address with a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@dataclass
class _Slot:
    """One worker position: its current process and how long to wait before restarting it."""

    index: int
    pid: int = 0
    started: float = 0.0
    backoff: float = FIRST_BACKOFF
    restart_at: float = 0.0


@dataclass
class Supervisor:
    """Runs ``work(index)`` in ``count`` forked workers until SIGTERM or SIGINT; ``work``
    returns the worker's exit code."""

    count: int
    work: Callable[[int], int]
    stop_seconds: float = 10.0
    slots: list[_Slot] = field(default_factory=list)

    def run(self) -> int:
        """Supervise until told to stop; 0 after a clean stop."""
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            self.slots = [_Slot(i) for i in range(self.count)]
            for slot in self.slots:
                self._start(slot, previous)
            self._supervise(previous)
            return self._stop_all()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _supervise(self, mask: Iterable[int]) -> None:
        """Wait for signals (blocked, so none is lost between checks): a stop request ends
        the loop, a dead worker is scheduled for a restart, a due restart is started."""
        while True:
            pending = [s.restart_at for s in self.slots if not s.pid]
            timeout = max(0.0, min(pending) - time.monotonic()) if pending else 3600.0
            info = signal.sigtimedwait(SIGNALS, timeout)
            if info is not None and info.si_signo != signal.SIGCHLD:
                return
            self._reap()
            now = time.monotonic()
            for slot in self.slots:
                if not slot.pid and slot.restart_at <= now:
                    self._start(slot, mask)

    def _reap(self) -> None:
        """Collect every dead worker and schedule its restart."""
        for slot in self.slots:
            if not slot.pid:
                continue
            pid, status = os.waitpid(slot.pid, os.WNOHANG)
            if pid == 0:
                continue
            ran = time.monotonic() - slot.started
            slot.backoff = FIRST_BACKOFF if ran >= HEALTHY_SECONDS else slot.backoff
            log.error("worker %d (pid %d) ended (%s) after %.1f s; restarting in %.0f s",
                      slot.index, slot.pid, _describe(status), ran, slot.backoff)
            slot.pid, slot.restart_at = 0, time.monotonic() + slot.backoff
            slot.backoff = min(MAX_BACKOFF, slot.backoff * 2)

    def _start(self, slot: _Slot, mask: Iterable[int]) -> None:
        for stream in (sys.stdout, sys.stderr):  # or the child writes the buffer again
            stream.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child(parent, mask, lambda: self.work(slot.index))
        slot.pid, slot.started = pid, time.monotonic()

    def _stop_all(self) -> int:
        """SIGTERM to every worker, SIGKILL to those still running after ``stop_seconds``."""
        running = {s.pid for s in self.slots if s.pid}
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_seconds
        while running and time.monotonic() < deadline:
            signal.sigtimedwait([signal.SIGCHLD], max(0.0, deadline - time.monotonic()))
            running = {pid for pid in running if os.waitpid(pid, os.WNOHANG)[0] == 0}
        for pid in running:
            log.warning("worker pid %d did not stop in %.0f s: killed", pid, self.stop_seconds)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        return 0


def _child(parent: int, mask: Iterable[int], work: Callable[[], int]) -> None:
    """The forked worker: its own process group, SIGTERM when the parent dies, the signal
    mask of before; never returns into the parent's code."""
    code = 1
    try:
        os.setpgid(0, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _die_with(parent)
        code = work()
    except BaseException:  # noqa: BLE001 - report anything; the parent restarts the worker
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _die_with(parent: int) -> None:
    """Ask the kernel for SIGTERM when the parent ends; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
