"""``iaas.scs.community/v1alpha1``: networks, servers, volumes, images and load balancers.

Objects refer to each other by name in the same namespace (``networkRef``); each reference
names its target kind on the field (:class:`~.common.References`), from which controllers
resolve it and report a ``ReferencesResolved`` condition while a referenced object is missing
or not Ready. Rules across fields are the spec models' ``causes``.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from ..machinery.errors import Cause
from .common import (
    READY_COLUMN_PATH,
    LocalRef,
    Model,
    Reconciled,
    References,
    Spec,
    Status,
)
from .kind import Column, ResourceType, declare

API_VERSION = "iaas.scs.community/v1alpha1"
READY = Column("Ready", READY_COLUMN_PATH)
REASON = Column("Reason", '.status.conditions[?(@.type=="Ready")].reason', priority=1)
BACKEND_ID = Column("Backend ID", ".status.backendID", priority=1)
PORT = Field(ge=1, le=65535)


class IaasStatus(Status):
    backendID: str = Field("", description="ID of the backend resource.")
    provider: str = Field("", description="Provider that realises the object; \"sandbox\" "
                                          "means simulated.")


class IaasObject(Reconciled):
    """What every IaaS kind has: a spec the backend realises and the backend's status."""

    spec: Spec = Field(default_factory=Spec)
    status: IaasStatus = Field(default_factory=IaasStatus)


def _network_causes(field: str, value: str, version: int | None = None) -> list[Cause]:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [Cause(field, f'Invalid value: "{value}": must be a CIDR, e.g. 10.0.0.0/24')]
    if version is not None and net.version != version:
        return [Cause(field, f'Invalid value: "{value}": not an IPv{version} CIDR')]
    return []


def _url_problem(url: str) -> str:
    """What makes ``url`` unusable as an image source ("" if nothing): the cloud downloads
    it, so it must parse the same way everywhere and carry no secret."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL (malformed host or port)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http or https URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials (everyone who can read the Image sees the URL)"
    if port == 0:
        return "port 0 is not a valid port"
    labels = parts.hostname.rstrip(".").split(".")
    if len(parts.hostname) > 253 or not all(0 < len(label) <= 63 for label in labels):
        return "the host is not a valid DNS name or address"
    return ""


# -- Network -----------------------------------------------------------------------------------
class NetworkSpec(Spec):
    mtu: int | None = Field(None, ge=68, le=9216, description="MTU; default from the backend.")
    adminStateUp: bool = Field(True, description="Whether the network carries traffic.")
    description: str = Field("", max_length=255)


class Network(IaasObject):
    """An isolated layer-2 network."""

    spec: NetworkSpec = Field(default_factory=NetworkSpec)
    status: IaasStatus = Field(default_factory=IaasStatus)


# -- Subnet ------------------------------------------------------------------------------------
class SubnetSpec(Spec):
    networkRef: Annotated[LocalRef, References(Network)]
    cidr: str = Field(description="e.g. 10.0.0.0/24", max_length=43)
    ipVersion: Literal[4, 6] = 4
    gatewayIP: str | None = Field(None, description="Default: first address of the CIDR.")
    enableDHCP: bool = True
    dnsNameservers: list[str] = Field(default_factory=list, max_length=5)

    def causes(self) -> list[Cause]:
        causes = _network_causes("spec.cidr", self.cidr, self.ipVersion)
        if self.gatewayIP and not causes:
            net = ipaddress.ip_network(self.cidr, strict=False)
            try:
                inside = ipaddress.ip_address(self.gatewayIP) in net
            except ValueError:
                inside = False
            if not inside:
                causes.append(Cause("spec.gatewayIP", f'Invalid value: "{self.gatewayIP}": '
                                                      f"must be an address in {self.cidr}"))
        return causes


class SubnetStatus(IaasStatus):
    networkID: str = ""


class Subnet(IaasObject):
    """An IP range on a Network."""

    spec: SubnetSpec
    status: SubnetStatus = Field(default_factory=SubnetStatus)


# -- Router ------------------------------------------------------------------------------------
class RouterSpec(Spec):
    externalGateway: bool = Field(False, description="Connect to the provider's external "
                                                     "network (enables floating IPs).")
    interfaces: Annotated[list[LocalRef], References(Subnet)] = Field(default_factory=list,
                                       description="Subnets attached to the router.")


class RouterStatus(IaasStatus):
    externalIP: str = ""


class Router(IaasObject):
    """Routes between subnets and, optionally, to the external network."""

    spec: RouterSpec = Field(default_factory=RouterSpec)
    status: RouterStatus = Field(default_factory=RouterStatus)


# -- SecurityGroup -----------------------------------------------------------------------------
class SecurityGroupRule(Model):
    direction: Literal["ingress", "egress"] = "ingress"
    protocol: Literal["tcp", "udp", "icmp", "any"] = "tcp"
    portRangeMin: int | None = Field(None, ge=1, le=65535)
    portRangeMax: int | None = Field(None, ge=1, le=65535)
    remoteIPPrefix: str = Field("0.0.0.0/0", max_length=43)
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"


class SecurityGroupSpec(Spec):
    description: str = Field("", max_length=255)
    rules: list[SecurityGroupRule] = Field(default_factory=list, max_length=200)

    def causes(self) -> list[Cause]:
        causes = []
        for i, rule in enumerate(self.rules):
            causes += _network_causes(f"spec.rules[{i}].remoteIPPrefix", rule.remoteIPPrefix)
            low, high = rule.portRangeMin, rule.portRangeMax
            if low is not None and high is not None and low > high:
                causes.append(Cause(f"spec.rules[{i}].portRangeMax",
                                    "Invalid value: must not be below portRangeMin"))
        return causes


class SecurityGroup(IaasObject):
    """Firewall rules applied to server ports."""

    spec: SecurityGroupSpec = Field(default_factory=SecurityGroupSpec)
    status: IaasStatus = Field(default_factory=IaasStatus)


# -- Keypair -----------------------------------------------------------------------------------
class KeypairSpec(Spec):
    publicKey: str = Field(min_length=16, max_length=16384,
                           description="OpenSSH public key, e.g. ssh-ed25519 AAAA...")


class KeypairStatus(IaasStatus):
    fingerprint: str = ""


class Keypair(IaasObject):
    """An SSH public key injected into servers."""

    spec: KeypairSpec
    status: KeypairStatus = Field(default_factory=KeypairStatus)


# -- Volume ------------------------------------------------------------------------------------
class VolumeSpec(Spec):
    sizeGiB: int = Field(ge=1, le=65536)
    volumeType: str = Field("", max_length=255, description="Backend volume type; default "
                                                             "from the provider.")
    imageRef: str = Field("", max_length=255, description="Create from this image name.")


class VolumeStatus(IaasStatus):
    attachedTo: str = ""


class Volume(IaasObject):
    """A block storage volume."""

    spec: VolumeSpec
    status: VolumeStatus = Field(default_factory=VolumeStatus)


# -- Image -------------------------------------------------------------------------------------
DISK_FORMATS = Literal["qcow2", "raw", "iso", "vmdk", "vhd", "vhdx", "vdi"]
CHECKSUM_PATTERN = "^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})?$"
IMMUTABLE: dict[str, Any] = {"x-kubernetes-validations": [
    {"rule": "self == oldSelf", "message": "field is immutable; create a new Image instead"}]}
"""Marks the image's content and its format: the cloud imports them once, so a change means
a new Image (Glance cannot replace the data of an active image)."""


class ImageSource(Model):
    url: str = Field(min_length=1, max_length=2048,
                     description="http(s) URL the cloud downloads the image from.")


class ImageSpec(Spec):
    source: ImageSource = Field(description="Where the image data comes from (immutable).",
                                json_schema_extra=IMMUTABLE)
    checksum: str = Field("", max_length=135, pattern=CHECKSUM_PATTERN,
                          json_schema_extra=IMMUTABLE, description=(
        "Expected digest of the data, sha256:<hex> or sha512:<hex> (immutable). The image "
        "is never Ready, and is deactivated in the cloud, if the data differs."))
    diskFormat: DISK_FORMATS = Field("qcow2", description="Format of the data (immutable).",
                                     json_schema_extra=IMMUTABLE)
    architecture: Literal["amd64", "arm64"] = Field(
        "amd64", description="CPU architecture the image boots on.")
    minDiskGiB: int = Field(0, ge=0, le=65536, description="Smallest root disk it needs.")
    minMemoryMiB: int = Field(0, ge=0, le=4 * 1024 * 1024,
                              description="Smallest amount of RAM it needs.")
    osDistro: str = Field("", max_length=63, description="e.g. ubuntu, debian (os_distro).")
    osVersion: str = Field("", max_length=63, description="e.g. 24.04 (os_version).")

    def causes(self) -> list[Cause]:
        problem = _url_problem(self.source.url)
        return [Cause("spec.source.url", f"Invalid value: {problem}")] if problem else []


IMAGE_IMMUTABLE = tuple(name for name, field in ImageSpec.model_fields.items()
                        if field.json_schema_extra is IMMUTABLE)
"""The fields marked IMMUTABLE, for backends that check them too (the sandbox)."""


class ImageStatus(IaasStatus):
    sizeBytes: int = Field(0, description="Size of the imported data.")
    checksum: str = Field("", description="Digest the cloud computed, <algorithm>:<hex>.")


class Image(IaasObject):
    """A private disk image, imported by the cloud from a URL; Servers boot it with
    ``imageRef``."""

    spec: ImageSpec
    status: ImageStatus = Field(default_factory=ImageStatus)


# -- Server ------------------------------------------------------------------------------------
class Resources(Model):
    cpu: int = Field(ge=1, le=512)
    memoryMiB: int = Field(ge=256, le=4 * 1024 * 1024)


class GPURequest(Model):
    count: int = Field(1, ge=1, le=16)
    model: str = Field("", max_length=63, description="e.g. nvidia-l4; empty: any.")


class ServerSpec(Spec):
    flavor: str = Field("", max_length=255, description="Flavor name, e.g. SCS-2V-4; or give "
                                                         "resources.")
    resources: Resources | None = Field(None, description="CPU/RAM request; the provider "
                                                          "picks the smallest fitting flavor.")
    image: str = Field("", max_length=255, description="Name of a provider image (e.g. "
                                                       "ubuntu-24.04); or give imageRef.")
    imageRef: Annotated[LocalRef | None, References(Image, at_creation=True)] = Field(
        None, description="An Image in this namespace.")
    architecture: Literal["amd64", "arm64"] = "amd64"
    gpu: GPURequest | None = None
    networks: Annotated[list[LocalRef], References(Network)] = Field(min_length=1,
                                                                     max_length=16)
    securityGroups: Annotated[list[LocalRef], References(SecurityGroup)] = Field(
        default_factory=list, max_length=16)
    volumes: Annotated[list[LocalRef], References(Volume)] = Field(default_factory=list,
                                                                   max_length=16)
    keypairRef: Annotated[LocalRef | None, References(Keypair)] = None
    userData: str = Field("", max_length=65535, description="cloud-init user data.")
    haPolicy: Literal["none", "restart"] = Field(
        "none", description="restart: the cloud restarts the server on another host when its "
                            "host fails (VM-HA, opt-in).")

    def causes(self) -> list[Cause]:
        causes = []
        if bool(self.flavor) == (self.resources is not None):
            causes.append(Cause("spec.flavor",
                                "Invalid value: give exactly one of flavor or resources"))
        if bool(self.image) == (self.imageRef is not None):
            causes.append(Cause("spec.image",
                                "Invalid value: give exactly one of image or imageRef"))
        return causes


class ServerStatus(IaasStatus):
    addresses: list[str] = Field(default_factory=list)
    flavor: str = ""
    powerState: str = ""


class Server(IaasObject):
    """A virtual machine."""

    spec: ServerSpec
    status: ServerStatus = Field(default_factory=ServerStatus)


# -- FloatingIP --------------------------------------------------------------------------------
class FloatingIPSpec(Spec):
    serverRef: Annotated[LocalRef | None, References(Server, absent=None)] = Field(
        None, description="Server to associate with.")


class FloatingIPStatus(IaasStatus):
    address: str = ""


class FloatingIP(IaasObject):
    """A public IPv4 address from the external network."""

    spec: FloatingIPSpec = Field(default_factory=FloatingIPSpec)
    status: FloatingIPStatus = Field(default_factory=FloatingIPStatus)


# -- LoadBalancer ------------------------------------------------------------------------------
class Member(Model):
    serverRef: Annotated[LocalRef, References(Server)]
    port: int = PORT


class Pool(Model):
    name: str = Field(min_length=1, max_length=63)
    protocol: Literal["TCP", "UDP", "HTTP"] = "TCP"
    algorithm: Literal["ROUND_ROBIN", "SOURCE_IP_PORT", "LEAST_CONNECTIONS"] = "SOURCE_IP_PORT"
    members: list[Member] = Field(default_factory=list, max_length=256)


class Listener(Model):
    name: str = Field(min_length=1, max_length=63)
    protocol: Literal["TCP", "UDP", "HTTP"] = "TCP"
    port: int = PORT
    pool: str = Field(description="Name of a pool in spec.pools.")


class LoadBalancerSpec(Spec):
    subnetRef: Annotated[LocalRef, References(Subnet)]
    provider: Literal["ovn", "amphora"] = Field("ovn", description="OVN (L4) by default.")
    floatingIP: bool = Field(False, description="Expose the VIP on a floating IP.")
    listeners: list[Listener] = Field(default_factory=list, max_length=64)
    pools: list[Pool] = Field(default_factory=list, max_length=64)

    def causes(self) -> list[Cause]:
        pools = {pool.name for pool in self.pools}
        return [Cause(f"spec.listeners[{i}].pool", f'Invalid value: "{listener.pool}": '
                                                   "no pool of that name in spec.pools")
                for i, listener in enumerate(self.listeners) if listener.pool not in pools]


class LoadBalancerStatus(IaasStatus):
    vipAddress: str = ""
    floatingIP: str = ""


class LoadBalancer(IaasObject):
    """An L4 (OVN) or L7 load balancer."""

    spec: LoadBalancerSpec
    status: LoadBalancerStatus = Field(default_factory=LoadBalancerStatus)


def _declare(kind: type[IaasObject], columns: list[Column], short: list[str]) -> ResourceType:
    return declare(API_VERSION, kind.__name__, kind, short_names=short, categories=["scs", "iaas"],
                   columns=[*columns, READY, REASON, BACKEND_ID])


NETWORK = _declare(Network, [], ["net"])
SUBNET = _declare(Subnet, [Column("Network", ".spec.networkRef.name"),
                           Column("CIDR", ".spec.cidr")], ["sn"])
ROUTER = _declare(Router, [Column("External", ".spec.externalGateway", "boolean"),
                           Column("External IP", ".status.externalIP", priority=1)], ["rt"])
SECURITY_GROUP = _declare(SecurityGroup, [], ["sg"])
KEYPAIR = _declare(Keypair, [Column("Fingerprint", ".status.fingerprint", priority=1)], ["kp"])
VOLUME = _declare(Volume, [Column("Size", ".spec.sizeGiB", "integer"),
                           Column("Attached To", ".status.attachedTo")], ["vol"])
IMAGE = _declare(Image, [Column("Arch", ".spec.architecture"),
                         Column("Format", ".spec.diskFormat"),
                         Column("Size", ".status.sizeBytes", "integer"),
                         Column("Source", ".spec.source.url", priority=1)], ["img"])
SERVER = _declare(Server, [Column("Flavor", ".status.flavor"),
                           Column("Image", ".spec.image"),
                           Column("Image Ref", ".spec.imageRef.name", priority=1),
                           Column("Arch", ".spec.architecture"),
                           Column("Addresses", ".status.addresses", priority=1)], ["srv"])
FLOATING_IP = _declare(FloatingIP, [Column("Address", ".status.address"),
                                    Column("Server", ".spec.serverRef.name")], ["fip"])
LOAD_BALANCER = _declare(LoadBalancer, [Column("Provider", ".spec.provider"),
                                        Column("VIP", ".status.vipAddress"),
                                        Column("Floating IP", ".status.floatingIP",
                                               priority=1)], ["lb"])

IAAS_KINDS = [NETWORK, SUBNET, ROUTER, SECURITY_GROUP, KEYPAIR, VOLUME, IMAGE, SERVER,
              FLOATING_IP, LOAD_BALANCER]
