"""A real OpenStack (Debian's Zed packages) on 127.0.0.1 for the IaaS provider tests.

Why real services: the OpenStack provider depends on what Nova, Neutron, Cinder, Glance and
Octavia actually answer — tag filters, status words, error codes, quota wording — which a
mock would only repeat our assumptions about. See :mod:`.cloud` for the start-up, and
``scripts/openstack-up`` to run the same cloud by hand.
"""

from .cloud import CLOUD_NAME, OpenStackCloud
from .processes import OpenStackError

__all__ = ["CLOUD_NAME", "OpenStackCloud", "OpenStackError"]
