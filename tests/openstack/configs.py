"""The configuration files of the harness's OpenStack services (pure text, no I/O).

Each service gets the smallest configuration that works on one loopback-only machine: one
worker per API (2 shared cores), logs to stderr (the harness redirects them into one file per
service), the private MariaDB and RabbitMQ, ``keystone_authtoken`` with the service's own user.
Choices that differ from a production cloud, and why:

- Nova runs ``compute_driver = fake.FakeDriver`` (there is no hypervisor here) and the
  scheduler only has ``ComputeFilter``: the fake host reports x86_64 only, and the
  ImagePropertiesFilter would refuse the arm64 image the seed asks for.
- Neutron is ML2/OVN as on SCS clouds: mechanism driver ``ovn``, Geneve tenant networks, the
  external network flat on the physnet ``public``, routers and floating IPs by the
  ``ovn-router`` service plugin (OVN NAT), DHCP native in OVN, no metadata agent. The OVN
  databases and ``ovn-northd`` run in the harness (``ovn.py``); the compute host is a chassis
  row (gateway, ``public:br-ex``) without ``ovn-controller``, so ports bind (vif type
  ``ovs``) but stay DOWN, which the fake compute driver does not wait for.
- Cinder's backend ``ceph`` is the real RBD driver (``cinder.volume.drivers.rbd.RBDDriver``)
  on a one-node Ceph in user space (``ceph.py``: pool ``volumes``, one replica, cephx user
  ``cinder``): LVM needs device-mapper and an iSCSI target in the kernel, and the build
  machine's kernel has neither (``dmsetup version``: "/dev/mapper/control: open failed: No
  such device"); RBD needs only TCP. The default type ``__DEFAULT__`` has no extra specs, so
  it and any type naming ``volume_backend_name = ceph`` land there (retypes between them need
  no migration).
- Octavia has two providers: ``ovn`` (the OVN provider writes load balancers into OVN's
  northbound database and reports their status through ``octavia-driver-agent``, whose
  sockets live in the harness directory) and ``amphora`` on its noop
  amphora/compute/network drivers (no amphora images, no VMs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REGION = "RegionOne"
# Nova's compute host: also the OVN chassis ports are bound to (ovn.register_chassis).
COMPUTE_HOST = "scs-compute-1"
# The hosts Glance may import images from (web-download): where the tests serve image
# files. Any other host is refused by Glance's import filtering ("does not pass filtering").
IMPORT_HOSTS = ("127.0.0.1",)


@dataclass(frozen=True)
class Common:
    """What every service's configuration refers to."""

    dir: Path
    keystone_url: str
    rabbit_port: int
    service_password: str

    @property
    def transport_url(self) -> str:
        return f"rabbit://guest:guest@127.0.0.1:{self.rabbit_port}/"

    def authtoken(self, user: str) -> str:
        return self.service_user("keystone_authtoken", user) + f"""\
www_authenticate_uri = {self.keystone_url}
# Cinder lets only a service (Nova with a service token) delete an attachment Nova made
# (OSSA-2023-003); the service users hold the role "service".
service_token_roles = service
service_token_roles_required = true
"""

    def service_user(self, section: str, user: str) -> str:
        """A keystoneauth section for calls to another service (Nova → Neutron and so on)."""
        return f"""
[{section}]
auth_url = {self.keystone_url}
auth_type = password
username = {user}
password = {self.service_password}
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = {REGION}
"""

    def defaults(self, name: str, extra: str = "") -> str:
        """``[DEFAULT]`` (common options plus ``extra``) and the sections all services share."""
        return f"""
[DEFAULT]
debug = false
use_stderr = true
transport_url = {self.transport_url}
state_path = {self.dir / 'state' / name}
{extra.strip()}

[oslo_concurrency]
lock_path = {self.dir / 'lock' / name}

[oslo_messaging_notifications]
driver = noop

[oslo_policy]
enforce_scope = false
enforce_new_defaults = false
"""


def placement_conf(c: Common, db: str) -> str:
    return c.defaults("placement") + f"""
[api]
auth_strategy = keystone

[placement_database]
connection = {db}
""" + c.authtoken("placement")


def glance_conf(c: Common, db: str, port: int) -> str:
    return c.defaults("glance", f"""
bind_host = 127.0.0.1
bind_port = {port}
workers = 1
image_cache_dir = {c.dir / 'state' / 'glance' / 'cache'}
# Image kinds import by URL (web-download): Glance stages the download here first.
node_staging_uri = file://{c.dir / 'state' / 'glance' / 'staging'}
enabled_import_methods = [glance-direct,web-download]
""") + f"""

[import_filtering_opts]
# The tests serve image files from an ephemeral port on 127.0.0.1; Glance's default
# allows only ports 80 and 443. An empty list allows every port.
allowed_ports = []
# The only hosts web-download may fetch from. Debian's security update 25.1.0-2+deb12u5
# (SSRF fixes) refuses loopback and link-local sources unless listed here; older packages
# apply the same list as a plain whitelist, so both behave alike. List syntax with
# brackets (the option is a bounded list): "127.0.0.1" alone fails to parse.
allowed_hosts = [{", ".join(IMPORT_HOSTS)}]

[database]
connection = {db}

[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini

[glance_store]
stores = file
default_store = file
filesystem_store_datadir = {c.dir / 'state' / 'glance' / 'images'}
""" + c.authtoken("glance")


def nova_conf(c: Common, api_db: str, cell1_db: str, port: int) -> str:
    """One file for api, conductor, scheduler and compute (as a single-host deployment)."""
    return c.defaults("nova", f"""
my_ip = 127.0.0.1
host = {COMPUTE_HOST}
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = {port}
osapi_compute_workers = 1
compute_driver = fake.FakeDriver
instances_path = {c.dir / 'state' / 'nova' / 'instances'}
# Booting on the fake driver is instant; no reason to wait for Neutron's vif events.
vif_plugging_timeout = 0
vif_plugging_is_fatal = false
""") + f"""

[wsgi]
api_paste_config = /etc/nova/api-paste.ini

[api]
auth_strategy = keystone

[api_database]
connection = {api_db}

[database]
connection = {cell1_db}

[conductor]
workers = 1

[scheduler]
workers = 1
discover_hosts_in_cells_interval = 2

[filter_scheduler]
enabled_filters = ComputeFilter

[cinder]
# catalog_info stays volumev3::publicURL: keystoneauth matches the alias block-storage.
os_region_name = {REGION}

[glance]
region_name = {REGION}

[vnc]
enabled = false
""" + c.authtoken("nova") + c.service_user("placement", "placement") \
        + c.service_user("neutron", "neutron") + c.service_user("service_user", "nova") \
        + "send_service_user_token = true\n"


def neutron_conf(c: Common, db: str, port: int, ovn_nb: str, ovn_sb: str) -> str:
    """ML2/OVN on the harness's OVN databases (``ovn_nb``/``ovn_sb``: ovsdb remotes)."""
    return c.defaults("neutron", f"""
bind_host = 127.0.0.1
bind_port = {port}
core_plugin = ml2
service_plugins = ovn-router
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
auth_strategy = keystone
allow_overlapping_ips = true
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
api_paste_config = /etc/neutron/api-paste.ini
""") + f"""

[database]
connection = {db}

[ml2]
type_drivers = flat,geneve
tenant_network_types = geneve
mechanism_drivers = ovn
extension_drivers = port_security
overlay_ip_version = 4

[ml2_type_flat]
flat_networks = public

[ml2_type_geneve]
vni_ranges = 1:10000
max_header_size = 38

[ovn]
ovn_nb_connection = {ovn_nb}
ovn_sb_connection = {ovn_sb}
ovn_l3_scheduler = leastloaded
ovn_metadata_enabled = false
enable_distributed_floating_ip = false
# The databases start empty with Neutron's: nothing to reconcile at start-up.
neutron_sync_mode = off

[agent]
root_helper = false
""" + c.authtoken("neutron") + c.service_user("nova", "nova")


def cinder_conf(c: Common, db: str, port: int, ceph_conf: Path, pool: str, user: str) -> str:
    """Cinder on the harness's Ceph: its images in ``pool`` as the cephx user ``user``
    (``ceph_conf``, the cluster's config, also names that user's keyring)."""
    return c.defaults("cinder", f"""
my_ip = 127.0.0.1
host = scs-cinder
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = {port}
osapi_volume_workers = 1
auth_strategy = keystone
api_paste_config = /etc/cinder/api-paste.ini
enabled_backends = ceph
default_volume_type = __DEFAULT__
""") + f"""

[database]
connection = {db}

[ceph]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = ceph
rbd_ceph_conf = {ceph_conf}
rbd_pool = {pool}
rbd_user = {user}
# A cluster that does not answer fails the call in bounded time instead of hanging it.
rados_connect_timeout = 10

[nova]
region_name = {REGION}
""" + c.authtoken("cinder")


def octavia_conf(c: Common, db: str, port: int, ovn_nb: str, ovn_sb: str) -> str:
    sockets = c.dir / "state" / "octavia"
    return c.defaults("octavia") + f"""
[api_settings]
bind_host = 127.0.0.1
bind_port = {port}
auth_strategy = keystone
enabled_provider_drivers = ovn:OVN provider, amphora:Amphora provider (noop backends)
default_provider_driver = amphora

[driver_agent]
# The OVN provider reports statuses through these sockets (octavia_lib's defaults under
# /var/run/octavia are redirected here too, see octavia_sockets.py).
status_socket_path = {sockets / 'status.sock'}
stats_socket_path = {sockets / 'stats.sock'}
get_socket_path = {sockets / 'get.sock'}
enabled_provider_agents = ovn

[ovn]
ovn_nb_connection = {ovn_nb}
ovn_sb_connection = {ovn_sb}

[database]
connection = {db}

[controller_worker]
amphora_driver = amphora_noop_driver
compute_driver = compute_noop_driver
network_driver = network_noop_driver
volume_driver = volume_noop_driver
image_driver = image_noop_driver
loadbalancer_topology = SINGLE
workers = 1
client_ca = {c.dir / 'state' / 'octavia' / 'ca.pem'}

[task_flow]
jobboard_enabled = false

[oslo_messaging]
topic = octavia_prov

[certificates]
cert_manager = local_cert_manager
ca_certificate = {c.dir / 'state' / 'octavia' / 'ca.pem'}
ca_private_key = {c.dir / 'state' / 'octavia' / 'ca.key'}
server_certs_key_passphrase = {c.service_password[:24].ljust(32, "0")}
""" + c.authtoken("octavia") + c.service_user("service_auth", "octavia")
