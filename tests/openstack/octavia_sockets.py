"""Points octavia_lib's driver-library sockets into the harness directory (imported first by
the harness's Octavia API and ``octavia-driver-agent``).

Why: the OVN provider builds ``DriverLibrary()`` without arguments, so it talks to the
defaults ``/var/run/octavia/{status,stats,get}.sock`` and ignores ``[driver_agent]`` of
``octavia.conf``. Two harnesses on one machine must not share those sockets, and the harness
writes nothing outside its directory; the directory comes from ``SCS_OCTAVIA_SOCKET_DIR``,
the same one ``[driver_agent]`` names for the agent's listeners.

Runs inside Debian's Octavia (system Python), copied next to the harness's configuration; it
imports nothing from this repository.
"""

import os

from octavia_lib.api.drivers import driver_lib

_DIR = os.environ["SCS_OCTAVIA_SOCKET_DIR"]
driver_lib.DriverLibrary.__init__.__defaults__ = tuple(
    os.path.join(_DIR, name) for name in ("status.sock", "stats.sock", "get.sock"))
