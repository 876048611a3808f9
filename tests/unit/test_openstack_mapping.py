"""The pure parts of the OpenStack provider: no cloud, no fakes of one.

States, error translation (with openstacksdk's real exception classes, built the way
openstacksdk builds them from an HTTP response), flavor and image choice over flavor-like
records, security group rule diffing and key fingerprints.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions

from central_api.kinds.iaas import IAAS_KINDS
from central_api.providers.base import (
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderError,
    QuotaExceeded,
)
from central_api.providers.openstack import OpenStackSettings, openstack_provider
from central_api.providers.openstack.compute import spec_hash
from central_api.providers.openstack.connection import _cloud_entry
from central_api.providers.openstack.errors import fault_message, map_state, translate
from central_api.providers.openstack.flavors import (
    flavor_arch,
    flavor_gpus,
    pick_flavor,
    pick_image,
)
from central_api.providers.openstack.images import checksum_problem, import_started
from central_api.providers.openstack.keys import fingerprint
from central_api.providers.openstack.ownership import is_owned_by, owner_tag, resource_name
from central_api.providers.openstack.security import backend_key, desired_key, diff_rules


# -- states ------------------------------------------------------------------------------------
@pytest.mark.parametrize("status, state", [
    ("BUILD", "PENDING"), ("creating", "PENDING"), ("downloading", "PENDING"),
    ("PENDING_CREATE", "PENDING"), ("PENDING_UPDATE", "PENDING"), ("extending", "PENDING"),
    ("ACTIVE", "ACTIVE"), ("available", "ACTIVE"), ("in-use", "ACTIVE"), ("ONLINE", "ACTIVE"),
    ("SHUTOFF", "ACTIVE"), ("DOWN", "ACTIVE"),
    ("ERROR", "ERROR"), ("error_deleting", "ERROR"), ("error_extending", "ERROR"),
    ("deleting", "DELETING"), ("PENDING_DELETE", "DELETING"), ("SOFT_DELETED", "DELETING"),
])
def test_openstack_status_maps_to_provider_state(status: str, state: str) -> None:
    assert map_state(status) == state


def test_unknown_status_keeps_polling_instead_of_failing() -> None:
    assert map_state("SOMETHING_NEW") == "PENDING"
    assert map_state(None) == "PENDING"


def test_nova_fault_becomes_the_error_message() -> None:
    fault = {"code": 500, "message": "No valid host was found. There are not enough hosts "
                                     "available.", "created": "2024-01-01T00:00:00Z"}
    assert fault_message(fault).startswith("No valid host was found")
    assert "(code 500)" in fault_message(fault)


# -- errors ------------------------------------------------------------------------------------
def _sdk_error(status: int, body: dict[str, Any]) -> os_exceptions.SDKException:
    """The exception openstacksdk itself raises for this HTTP answer."""
    response = requests.Response()
    response.status_code = status
    response.headers["content-type"] = "application/json"
    response._content = json.dumps(body).encode()
    with pytest.raises(os_exceptions.SDKException) as caught:
        os_exceptions.raise_from_response(response)
    return caught.value


@pytest.mark.parametrize("status, body, expected", [
    (404, {"itemNotFound": {"code": 404, "message": "Flavor x could not be found."}}, NotFound),
    (409, {"NeutronError": {"type": "InUse", "message": "Network is in use."}}, Conflict),
    (409, {"NeutronError": {"type": "OverQuota",
                            "message": "Quota exceeded for resources: ['network']."}},
     QuotaExceeded),
    (403, {"forbidden": {"code": 403, "message": "Quota exceeded for cores: Requested 4, "
                                                 "but already used 8 of 10 cores"}},
     QuotaExceeded),
    (413, {"overLimit": {"code": 413, "message": "VolumeSizeExceedsAvailableQuota: "
                                                 "Requested volume exceeds allowed gigabytes"}},
     QuotaExceeded),
    (400, {"badRequest": {"code": 400, "message": "Invalid input for field/attribute cidr."}},
     InvalidRequest),
    (403, {"forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:servers"
                                                 ":create to be performed."}},
     InvalidRequest),
    (500, {"computeFault": {"code": 500, "message": "Unexpected API Error."}},
     BackendUnavailable),
    (503, {"message": "Service Unavailable"}, BackendUnavailable),
])
def test_http_errors_map_to_typed_provider_errors(status: int, body: dict[str, Any],
                                                  expected: type[ProviderError]) -> None:
    error = translate(_sdk_error(status, body))
    assert type(error) is expected
    message = next(iter(body.values()))
    if isinstance(message, dict):
        assert message["message"] in str(error)


def test_directly_constructed_sdk_exceptions_map_by_class() -> None:
    assert isinstance(translate(os_exceptions.ResourceNotFound("no such server")), NotFound)
    assert isinstance(translate(os_exceptions.NotFoundException("gone")), NotFound)
    assert isinstance(translate(os_exceptions.ConflictException("busy")), Conflict)
    assert isinstance(translate(os_exceptions.ResourceTimeout("wait expired")),
                      BackendUnavailable)
    assert isinstance(translate(os_exceptions.BadRequestException("bad")), InvalidRequest)


def test_connection_failures_are_retryable_outages() -> None:
    for exc in (ks_exceptions.ConnectFailure("connection refused"),
                ks_exceptions.ConnectTimeout("timed out"),
                requests.exceptions.ConnectionError("reset"), TimeoutError()):
        error = translate(exc)
        assert isinstance(error, BackendUnavailable)
        assert error.retryable


def test_terminal_errors_are_not_retried() -> None:
    assert not translate(os_exceptions.ResourceNotFound("x")).retryable
    assert not translate(os_exceptions.BadRequestException("x")).retryable
    assert translate(os_exceptions.ConflictException("x")).retryable


# -- flavors and images ------------------------------------------------------------------------
def flavor(name: str, vcpus: int, ram: int, **extra_specs: str) -> SimpleNamespace:
    return SimpleNamespace(id=f"id-{name}", name=name, vcpus=vcpus, ram=ram, disk=10,
                           is_disabled=False, extra_specs=extra_specs)


FLAVORS = [
    flavor("SCS-4V-16", 4, 16384),
    flavor("SCS-2V-4", 2, 4096),
    flavor("SCS-1V-2", 1, 2048),
    flavor("SCS-2V-8", 2, 8192),
    flavor("SCS-2V-4-arm", 2, 4096, cpu_arch="aarch64"),
    flavor("SCS-4V-16-l4", 4, 16384, **{"scs:gpu-count": "1", "scs:gpu-model": "nvidia-l4"}),
    flavor("SCS-8V-32-a100x2", 8, 32768, **{"pci_passthrough:alias": "nvidia-a100:2"}),
]


def test_smallest_fitting_flavor_is_chosen() -> None:
    assert pick_flavor(FLAVORS, cpu=2, memory_mib=4096).name == "SCS-2V-4"
    assert pick_flavor(FLAVORS, cpu=2, memory_mib=5000).name == "SCS-2V-8"
    assert pick_flavor(FLAVORS, cpu=1, memory_mib=1024).name == "SCS-1V-2"


def test_gpu_flavors_are_not_spent_on_requests_without_gpus() -> None:
    assert pick_flavor(FLAVORS, cpu=4, memory_mib=16384).name == "SCS-4V-16"


def test_gpu_request_picks_a_flavor_with_the_model_and_count() -> None:
    assert pick_flavor(FLAVORS, 2, 4096, gpu={"count": 1, "model": "nvidia-l4"}).name \
        == "SCS-4V-16-l4"
    assert pick_flavor(FLAVORS, 2, 4096, gpu={"count": 2, "model": ""}).name \
        == "SCS-8V-32-a100x2"
    with pytest.raises(InvalidRequest, match="GPU nvidia-h100"):
        pick_flavor(FLAVORS, 2, 4096, gpu={"count": 1, "model": "nvidia-h100"})


def test_gpu_conventions_are_read_from_extra_specs() -> None:
    assert flavor_gpus(FLAVORS[5]) == (1, "nvidia-l4")
    assert flavor_gpus(FLAVORS[6]) == (2, "nvidia-a100")
    assert flavor_gpus(flavor("vgpu", 4, 8192, **{"resources:VGPU": "1"})) == (1, "")
    assert flavor_gpus(FLAVORS[0]) == (0, "")


def test_arm64_prefers_flavors_tagged_aarch64() -> None:
    assert flavor_arch(FLAVORS[4]) == "arm64"
    assert pick_flavor(FLAVORS, 2, 4096, architecture="arm64").name == "SCS-2V-4-arm"
    assert pick_flavor(FLAVORS, 2, 4096, architecture="amd64").name == "SCS-2V-4"


def test_disabled_flavors_and_impossible_requests() -> None:
    disabled = flavor("SCS-1V-1", 1, 1024)
    disabled.is_disabled = True
    assert pick_flavor([disabled, *FLAVORS], 1, 1024).name == "SCS-1V-2"
    with pytest.raises(InvalidRequest, match="no flavor offers 64 vCPU"):
        pick_flavor(FLAVORS, cpu=64, memory_mib=1024)


def test_image_choice_respects_architecture() -> None:
    images = [SimpleNamespace(id="x86", name="Ubuntu 24.04", status="active",
                              architecture="x86_64", properties={}, created_at="2024-05-01"),
              SimpleNamespace(id="arm", name="Ubuntu 24.04", status="active", architecture=None,
                              properties={"hw_architecture": "aarch64"},
                              created_at="2024-05-01")]
    assert pick_image(images, "Ubuntu 24.04", "amd64").id == "x86"
    assert pick_image(images, "Ubuntu 24.04", "arm64").id == "arm"
    with pytest.raises(InvalidRequest, match="not for arm64"):
        pick_image(images[:1], "Ubuntu 24.04", "arm64")
    with pytest.raises(InvalidRequest, match="not found"):
        pick_image(images, "Debian 12", "amd64")


# -- security group rules ----------------------------------------------------------------------
def neutron_rule(rule_id: str, direction: str, ethertype: str = "IPv4",
                 protocol: str | None = None, low: int | None = None,
                 high: int | None = None, remote: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(id=rule_id, direction=direction, ether_type=ethertype,
                           protocol=protocol, port_range_min=low, port_range_max=high,
                           remote_ip_prefix=remote, remote_group_id=None)


DEFAULT_EGRESS = [neutron_rule("eg4", "egress"), neutron_rule("eg6", "egress", "IPv6")]
SSH = {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22,
       "remoteIPPrefix": "0.0.0.0/0", "ethertype": "IPv4"}


def test_new_rules_are_added_and_default_egress_is_kept() -> None:
    add, remove = diff_rules([SSH], DEFAULT_EGRESS)
    assert add == [desired_key(SSH)]
    assert remove == []


def test_rules_no_longer_desired_are_removed() -> None:
    existing = [*DEFAULT_EGRESS, neutron_rule("ssh", "ingress", protocol="tcp", low=22, high=22),
                neutron_rule("web", "ingress", protocol="tcp", low=80, high=80,
                             remote="10.0.0.0/8")]
    add, remove = diff_rules([SSH], existing)
    assert add == []
    assert remove == ["web"]


def test_equivalent_spellings_are_the_same_rule() -> None:
    # Neutron may store "everything" as no prefix; a single port may be given as min only.
    existing = [neutron_rule("ssh", "ingress", protocol="tcp", low=22, high=22, remote=None)]
    add, remove = diff_rules([{**SSH, "portRangeMax": None}], existing)
    assert (add, remove) == ([], [])
    assert backend_key(existing[0]) == desired_key({**SSH, "remoteIPPrefix": "0.0.0.0/0"})


def test_any_protocol_and_duplicates() -> None:
    existing = [neutron_rule("a", "ingress", protocol="icmp"),
                neutron_rule("b", "ingress", protocol="icmp")]
    add, remove = diff_rules([{"direction": "ingress", "protocol": "icmp"},
                              {"direction": "ingress", "protocol": "any",
                               "remoteIPPrefix": "192.168.0.0/16"}], existing)
    assert remove == ["b"]
    assert [k.protocol for k in add] == [None]
    assert add[0].remote == "192.168.0.0/16"


# -- keys, ownership, settings -----------------------------------------------------------------
def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    key = tmp_path / "id"
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
    except FileNotFoundError:
        pytest.skip("ssh-keygen not installed")
    public = (tmp_path / "id.pub").read_text()
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(key) + ".pub"],
                         check=True, capture_output=True, text=True).stdout
    assert out.split()[1] == "MD5:" + fingerprint(public)


def test_fingerprint_is_md5_of_the_key_blob() -> None:
    blob = b"\x00\x00\x00\x0bssh-ed25519" + bytes(36)
    key = "ssh-ed25519 " + base64.b64encode(blob).decode() + " me@host"
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    assert fingerprint(key).replace(":", "") == digest
    with pytest.raises(InvalidRequest):
        fingerprint("ssh-ed25519 not*base64")


def test_owner_is_recognised_by_tag_metadata_or_name() -> None:
    uid = "0b7e6a52-5d5c-4e8e-9d6f-1f2a3b4c5d6e"
    assert is_owned_by(SimpleNamespace(tags=[owner_tag(uid)]), uid)
    assert is_owned_by(SimpleNamespace(tags=[], metadata={"scs-owner-uid": uid}), uid)
    assert is_owned_by(SimpleNamespace(name=resource_name(uid)), uid)
    assert not is_owned_by(SimpleNamespace(tags=[owner_tag("other")], name="x"), uid)
    assert len(owner_tag(uid)) <= 60  # Nova's tag limit


def test_server_spec_hash_covers_only_immutable_fields() -> None:
    base = {"flavor": "SCS-2V-4", "image": "Ubuntu", "networkIDs": ["n1"]}
    assert spec_hash(base) == spec_hash({**base, "securityGroupIDs": ["g"], "haPolicy": "restart"})
    assert spec_hash(base) != spec_hash({**base, "image": "Debian"})
    assert spec_hash(base) == spec_hash({**base, "architecture": "amd64"})


def test_credentials_in_every_accepted_shape_become_a_cloud_entry() -> None:
    auth = {"auth_url": "https://keystone.example/v3", "application_credential_id": "id",
            "application_credential_secret": "s3cret"}
    bare = _cloud_entry(auth)
    assert bare["auth_type"] == "v3applicationcredential"
    assert bare["auth"] == auth
    assert _cloud_entry({"auth": auth, "region_name": "RegionOne"})["region_name"] == "RegionOne"
    assert _cloud_entry({"clouds": {"tenant": {"auth": auth}}})["auth"] == auth
    with pytest.raises(InvalidRequest):
        _cloud_entry({"clouds": {"a": {"auth": auth}, "b": {"auth": auth}}})


def test_provider_offers_every_iaas_kind_and_is_real() -> None:
    provider = openstack_provider({"cloud": "test", "externalNetwork": "public"})
    assert provider.name == "openstack"
    assert provider.simulated is False
    assert set(provider.services) == {rt.kind for rt in IAAS_KINDS}
    settings = OpenStackSettings.from_mapping({"cloudsYaml": "/etc/x.yaml", "timeout": 30})
    assert (settings.clouds_yaml, settings.timeout) == ("/etc/x.yaml", 30.0)
    assert settings.allow_private_image_sources is False
    assert OpenStackSettings.from_mapping(
        {"allowPrivateImageSources": True}).allow_private_image_sources is True
    assert OpenStackSettings.from_mapping(
        {"allowPrivateImageSources": "false"}).allow_private_image_sources is False


@pytest.mark.parametrize(("algorithm", "value", "expected", "problem"), [
    ("sha512", "ab" * 64, "", ""),
    ("sha512", "ab" * 64, "sha512:" + "AB" * 64, ""),
    ("sha512", "ab" * 64, "sha512:" + "cd" * 64, "checksum mismatch"),
    ("sha512", "ab" * 64, "sha256:" + "ab" * 32, "cannot verify the sha256 checksum"),
    ("", "", "sha256:" + "ab" * 32, "this cloud computes no digests"),
])
def test_an_image_checksum_is_verified_only_in_the_algorithm_glance_used(
        algorithm: str, value: str, expected: str, problem: str) -> None:
    image = SimpleNamespace(hash_algo=algorithm, hash_value=value, disk_format="qcow2",
                            properties={"scs-disk-format": "qcow2"})
    found = checksum_problem(image, expected)
    assert (problem in found) if problem else found == "", found


def test_the_checksum_of_data_the_cloud_converted_cannot_be_verified() -> None:
    converted = SimpleNamespace(hash_algo="sha512", hash_value="ab" * 64, disk_format="raw",
                                properties={"scs-disk-format": "qcow2"})
    assert "converted the image from qcow2 to raw" in checksum_problem(
        converted, "sha512:" + "ab" * 64)


@pytest.mark.parametrize(("properties", "started"), [
    ({}, False),
    ({"scs-source-url": "https://x.example/a"}, False),  # set, then crashed before importing
    ({"os_glance_import_task": "t-1"}, True),  # running
    ({"os_glance_importing_to_stores": "", "os_glance_failed_import": ""}, True),  # ended
])
def test_an_import_counts_as_started_by_the_marks_glance_keeps(
        properties: dict[str, str], started: bool) -> None:
    assert import_started(SimpleNamespace(properties=properties)) is started


def test_a_new_load_balancer_names_its_vip_network_too() -> None:
    """Octavia (Zed) hands the OVN provider a VIP without network when only the subnet is
    given, and the provider's VIP port creation fails; the subnet's network is sent along."""
    import asyncio

    from central_api.providers.base import Scope
    from central_api.providers.openstack.connection import Connections
    from central_api.providers.openstack.loadbalancer import LoadBalancerService

    created: dict[str, Any] = {}
    lb = SimpleNamespace(id="lb-1", provisioning_status="ACTIVE", operating_status="ONLINE",
                         listeners=[], pools=[], vip_subnet_id="sub-1", vip_address="10.0.0.5",
                         vip_port_id="port-1", provider="ovn", tags=[])

    def create_load_balancer(**fields: Any) -> SimpleNamespace:
        created.update(fields)
        return lb

    conn = SimpleNamespace(
        network=SimpleNamespace(
            get_subnet=lambda subnet_id: SimpleNamespace(id=subnet_id, network_id="net-1"),
            ips=lambda **_: []),
        load_balancer=SimpleNamespace(load_balancers=lambda **_: [],
                                      create_load_balancer=create_load_balancer,
                                      get_load_balancer=lambda _id: lb,
                                      get_listener=None, get_pool=None))

    class FakeConnections(Connections):
        def get(self, scope: Scope) -> Any:
            return conn

    service = LoadBalancerService(FakeConnections(OpenStackSettings(timeout=10)))
    result = asyncio.run(service.create(Scope(namespace="ns"), "uid-1",
                                        {"subnetID": "sub-1", "provider": "ovn"}))
    assert (created["vip_subnet_id"], created["vip_network_id"], created["provider"]) \
        == ("sub-1", "net-1", "ovn")
    assert (result.state, result.desired["provider"]) == ("ACTIVE", "ovn")
