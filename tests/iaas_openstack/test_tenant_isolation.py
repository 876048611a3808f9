"""Tenant isolation down to OpenStack: two tenants onboarded through the Central API into the
harness Keystone, their objects checked with each tenant's own credentials."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import openstack
import pytest
import yaml

from tests.iaas_openstack.conftest import Central, obj, running_central
from tests.openstack import OpenStackCloud
from tests.polling import poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def onboarding(cloud: OpenStackCloud, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Central]:
    """``scs serve`` with both the Keystone identity backend and the OpenStack provider."""
    with running_central(cloud, tmp_path_factory.mktemp("onboarding"), identity={
            "type": "keystone", "authURL": cloud.auth_url, "username": "admin",
            "password": cloud.state["admin_password"], "userDomain": "Default",
            "systemScope": True, "region": "RegionOne"},
            provider={"allowPrivateImageSources": True}) as started:
        yield started


def onboard(central: Central) -> tuple[str, dict[str, Any], Any]:
    """A Ready tenant: (name = namespace, its Tenant object, an SDK connection with the
    application credential onboarding stored in the namespace)."""
    name = f"t{uuid.uuid4().hex[:8]}"
    central.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"displayName": f"Tenant {name}", "admins": [f"admin@{name}.example"]}}))
    central.kubectl("wait", "--for=condition=Ready", f"tenant/{name}", "--timeout=180s",
                    timeout=200)
    tenant = json.loads(central.kubectl("get", "tenant", name, "-o", "json").stdout)
    secret = json.loads(central.kubectl("-n", name, "get", "secret", "openstack-credentials",
                                        "-o", "json").stdout)
    clouds = yaml.safe_load(base64.b64decode(secret["data"]["clouds.yaml"]))
    entry = clouds["clouds"][name]
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **entry)
    return name, tenant, conn


def test_onboarded_credentials_reach_only_their_own_project(onboarding: Central) -> None:
    name_a, tenant_a, as_a = onboard(onboarding)
    _, _, as_b = onboard(onboarding)
    project_a = tenant_a["status"]["projectID"]
    assert as_a.current_project_id == project_a
    net = as_a.network.create_network(name=f"direct-{name_a}")
    try:
        assert as_a.network.get_network(net.id).project_id == project_a
        assert as_b.network.find_network(net.id, ignore_missing=True) is None
        assert net.id not in {n.id for n in as_b.network.networks()}
    finally:
        as_a.network.delete_network(net.id)


def test_iaas_objects_of_a_tenant_land_in_its_project(onboarding: Central,
                                                      image_files: tuple[str, bytes]) -> None:
    name_a, tenant_a, as_a = onboard(onboarding)
    _, _, as_b = onboard(onboarding)
    project_a = tenant_a["status"]["projectID"]
    onboarding.apply(name_a, obj("Network", "private", {"description": "tenant a"}),
                     obj("Image", "private", {"source": {"url": f"{image_files[0]}/disk.raw"},
                                              "diskFormat": "raw"}))
    onboarding.wait_ready(name_a, "networks", "private")
    onboarding.wait_ready(name_a, "images", "private", timeout=240)
    network_id = onboarding.backend_id(name_a, "networks", "private")
    image_id = onboarding.backend_id(name_a, "images", "private")
    try:
        found = poll(lambda: as_a.network.find_network(network_id, ignore_missing=True),
                     10, 1.0, "the network with tenant A's credentials")
        assert found.project_id == project_a
        assert as_b.network.find_network(network_id, ignore_missing=True) is None
        image = as_a.image.get_image(image_id)
        assert (image.owner, image.visibility) == (project_a, "private")
        assert as_b.image.find_image(image_id, ignore_missing=True) is None
        assert image_id not in {i.id for i in as_b.image.images()}
    finally:
        onboarding.kubectl("-n", name_a, "delete", "networks,images", "--all",
                           "--timeout=120s")
