"""Tell the other worker processes of one server about each commit, at once.

A store calls its write listeners (:meth:`Store.add_write_listener`: the watch hub, caches
fed from the revision log) after its own commits only. With several worker processes on one
SQLite file, a watch served by worker B must still see a create that worker A committed at
once; without a wake it waited for the hub's half-second poll. PostgreSQL has LISTEN/NOTIFY
(:meth:`PostgresStore.wait_for_change`); for SQLite each worker sends an empty datagram to
each of the others after every commit batch, and a thread of the receiver calls its
listeners, which read the revision log from where they are.

Why datagrams and not polling ``PRAGMA data_version`` (the first version): a thread asking
every 5 ms cost every worker a thread wake-up 200 times a second, busy or idle — about 2 % of
a core idle and ~15 % more CPU per GET under the read benchmark on 2 cores. Datagrams cost
nothing without writes, and a burst of them wakes the receiver once.

The sockets are Unix datagram sockets in the abstract namespace (no files), named by a random
token the parent draws, the worker's index: a restarted worker binds its name again, and a
datagram to a worker that is down is dropped (so is one to a full socket: a wake is pending
there anyway). Commits of processes outside the group (another ``scs serve`` on the same
file) still reach the hub through its poll.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from .base import Store

STOP = b"s"


class PeerWake:
    """Worker ``index`` of ``count`` in ``group``: announces this store's commits to the
    other workers and calls this store's write listeners on theirs."""

    def __init__(self, store: Store, group: str, index: int, count: int) -> None:
        self.store = store
        self._peers = [_address(group, i) for i in range(count) if i != index]
        self._own = _address(group, index)
        self._inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._inbox.bind(self._own)
        self._outbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._outbox.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="peer-wake", daemon=True)
        store.add_write_listener(self._announce)

    def start(self) -> PeerWake:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._outbox.sendto(STOP, self._own)
            self._thread.join()
        self._inbox.close()
        self._outbox.close()

    def _announce(self) -> None:
        """After a commit of this process; not for the listeners' calls this class makes
        itself (those commits were the other workers', who told everyone already)."""
        if threading.current_thread() is self._thread:
            return
        for peer in self._peers:
            with contextlib.suppress(OSError):  # down (refused) or full (a wake is pending)
                self._outbox.sendto(b"", peer)

    def _run(self) -> None:
        while self._inbox.recv(1) != STOP:
            if not self._drain():
                return
            self.store._notify()  # the listeners its own commit calls

    def _drain(self) -> bool:
        """Take the datagrams that queued meanwhile (one wake serves them all); False when
        one of them asks the thread to stop."""
        self._inbox.setblocking(False)
        try:
            while True:
                if self._inbox.recv(1) == STOP:
                    return False
        except BlockingIOError:
            return True
        finally:
            self._inbox.setblocking(True)


def _address(group: str, index: int) -> str:
    return f"\0scs-wake-{group}-{index}"
