"""An ML2 mechanism driver that binds every port (loaded by the harness's neutron-server).

Why: ML2 binds a port only when a mechanism driver says the host can carry it, and the
usual drivers (Open vSwitch, Linux bridge, OVN) ask their agents or OVN databases, none of
which run in the test harness. Without a binding Nova sees ``binding_failed`` and the server
goes to ERROR. This driver binds the first segment with vif type ``other``; the fake compute
driver plugs nothing, so no datapath is needed.

Runs inside Debian's Neutron (system Python), copied next to a ``.dist-info`` entry point by
the harness; it imports nothing from this repository.
"""

from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):
    """Bind any port on any host to the first segment offered."""

    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OTHER,
                                {portbindings.CAP_PORT_FILTER: False}, status="ACTIVE")
            return
