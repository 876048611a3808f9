"""The Image kind against the harness's Glance: a web-download import of a file served on
127.0.0.1, verified with openstacksdk; a Server booted from it by ``imageRef``; imports that
fail, imports Glance refuses to start, data that does not match its checksum, and sources on
private addresses."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from central_api.providers.openstack.ownership import owner_tag
from tests.iaas_openstack.conftest import RESYNC_SECONDS, Central, obj, running_central
from tests.openstack import OpenStackCloud
from tests.openstack.configs import IMPORT_HOSTS
from tests.polling import poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def central(cloud: OpenStackCloud, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Central]:
    """The Central API allowed to import from 127.0.0.1, where the test serves its files."""
    with running_central(cloud, tmp_path_factory.mktemp("central"),
                         provider={"allowPrivateImageSources": True}) as started:
        yield started


def image(name: str, url: str, **spec: Any) -> dict[str, Any]:
    return obj("Image", name, {"source": {"url": url}, "diskFormat": "raw", **spec})


def owned_images(conn: Any, owner_uid: str) -> list[Any]:
    return list(conn.image.images(tag=owner_tag(owner_uid)))


def test_glance_imports_the_image_and_a_server_boots_it(central: Central, conn: Any,
                                                        image_files: tuple[str, bytes]) -> None:
    base, data = image_files
    sha512 = hashlib.sha512(data).hexdigest()
    ns = central.namespace()
    central.apply(ns, image("custom", f"{base}/disk.raw", checksum=f"sha512:{sha512}",
                            osDistro="debian", osVersion="12", minMemoryMiB=512))
    central.wait_ready(ns, "images", "custom", timeout=240)

    status = (central.get(ns, "images", "custom") or {})["status"]
    glance = conn.image.get_image(status["backendID"])
    assert (glance.status, glance.visibility, glance.disk_format) == ("active", "private", "raw")
    assert glance.size == len(data) == status["sizeBytes"]
    assert (glance.hash_algo, glance.hash_value) == ("sha512", sha512)
    assert status["checksum"] == f"sha512:{sha512}"
    assert owner_tag(central.uid(ns, "images", "custom")) in glance.tags
    assert (glance.os_distro, glance.os_version, glance.min_ram) == ("debian", "12", 512)
    assert glance.properties["hw_architecture"] == "x86_64"

    central.kubectl("-n", ns, "patch", "image", "custom", "--type", "merge",
                    "-p", '{"spec": {"minDiskGiB": 1, "osVersion": "12.8"}}')
    central.wait_generation(ns, "images", "custom")
    glance = conn.image.get_image(glance.id)
    assert (glance.min_disk, glance.os_version) == (1, "12.8")

    refused = central.kubectl("-n", ns, "patch", "image", "custom", "--type", "merge", "-p",
                              '{"spec": {"source": {"url": "https://example.com/x"}}}',
                              check=False)
    assert refused.returncode != 0 and "spec.source: Invalid value" in refused.stderr, \
        refused.stderr
    assert "field is immutable" in refused.stderr

    central.apply(
        ns, obj("Network", "n", {}),
        obj("Subnet", "n-v4", {"networkRef": {"name": "n"}, "cidr": "10.23.0.0/24"}),
        obj("Server", "custom-1", {"flavor": "SCS-1V-2", "imageRef": {"name": "custom"},
                                   "networks": [{"name": "n"}]}))
    central.wait_ready(ns, "servers", "custom-1", timeout=300)
    server = conn.compute.get_server(central.backend_id(ns, "servers", "custom-1"))
    assert server.image.id == glance.id

    central.kubectl("-n", ns, "delete", "servers,images,subnets,networks", "--all",
                    "--timeout=300s", timeout=330)
    assert conn.image.find_image(glance.id, ignore_missing=True) is None


def test_failed_imports_and_wrong_checksums_end_in_clear_conditions(
        central: Central, conn: Any, image_files: tuple[str, bytes]) -> None:
    base, data = image_files
    ns = central.namespace()
    central.apply(
        ns, image("missing", f"{base}/no-such-file.raw"),
        image("tampered", f"{base}/disk.raw", checksum="sha512:" + "0" * 128),
        image("sha256", f"{base}/disk.raw",
              checksum="sha256:" + hashlib.sha256(data).hexdigest()))
    missing = central.wait_condition(ns, "images", "missing", "BackendError", timeout=180)
    assert "Glance could not import" in missing["message"], missing
    tampered = central.wait_condition(ns, "images", "tampered", "BackendError", timeout=180)
    assert "checksum mismatch" in tampered["message"], tampered
    # The cloud computes sha512 (Glance's default), so a sha256 digest cannot prove anything.
    unverified = central.wait_condition(ns, "images", "sha256", "BackendError", timeout=180)
    assert "cannot verify the sha256 checksum" in unverified["message"], unverified
    for name in ("tampered", "sha256"):  # deactivated: nobody in the project can boot them
        assert conn.image.get_image(central.backend_id(ns, "images", name)).status \
            == "deactivated"

    central.apply(ns, obj("Network", "n", {}))
    central.wait_ready(ns, "networks", "n")
    central.apply(ns, obj("Server", "s", {"flavor": "SCS-1V-2", "imageRef": {"name": "tampered"},
                                          "networks": [{"name": "n"}]}))
    waiting = central.wait_condition(ns, "servers", "s", "ReferenceNotReady")
    assert "images 'tampered' is not Ready" in waiting["message"], waiting

    uids = [central.uid(ns, "images", name) for name in ("missing", "tampered", "sha256")]
    central.kubectl("-n", ns, "delete", "servers,images,networks", "--all", "--timeout=120s",
                    timeout=150)
    assert [owned_images(conn, owner) for owner in uids] == [[], [], []], "leaked images"


def import_requests(cloud: OpenStackCloud, image_id: str) -> int:
    """How many import calls glance-api answered for ``image_id`` (its access log)."""
    log = (cloud.logs / "glance.log").read_text(errors="replace")
    return log.count(f"POST /v2/images/{image_id}/import ")


def test_an_import_glance_refuses_to_start_ends_in_a_clear_condition(
        central: Central, cloud: OpenStackCloud, conn: Any,
        image_files: tuple[str, bytes]) -> None:
    """Glance imports only from the hosts its ``[import_filtering_opts] allowed_hosts`` lists
    (here 127.0.0.1) and answers the import call for any other source with 400 "does not
    pass filtering", which openstacksdk returns without raising. The Image reports Glance's
    answer for good: no Creating forever, no new import call on every reconcile."""
    base, _ = image_files
    assert "127.0.0.2" not in IMPORT_HOSTS
    url = f"http://127.0.0.2:{urlsplit(base).port}/disk.raw"  # loopback, not allowed
    ns = central.namespace()
    central.apply(ns, image("filtered", url))
    refused = central.wait_condition(ns, "images", "filtered", "BackendError")
    assert refused["status"] == "False", refused
    assert f"Glance refused to import {url}: 400 Bad Request: URI for web-download does not " \
        f"pass filtering: {url}" in refused["message"], refused
    image_id = central.backend_id(ns, "images", "filtered")
    assert conn.image.get_image(image_id).status == "queued"
    assert import_requests(cloud, image_id) == 1

    time.sleep(3 * RESYNC_SECONDS)  # resyncs and status polls ask Glance nothing new
    assert import_requests(cloud, image_id) == 1
    assert central.ready_condition(ns, "images", "filtered") == refused

    owner = central.uid(ns, "images", "filtered")
    central.kubectl("-n", ns, "delete", "images", "--all", "--timeout=60s")
    assert owned_images(conn, owner) == [], "leaked image"


def test_sources_on_private_addresses_are_refused_by_default(
        cloud: OpenStackCloud, conn: Any, image_files: tuple[str, bytes], tmp_path: Path) -> None:
    base, _ = image_files
    with running_central(cloud, tmp_path) as strict:
        ns = strict.namespace()
        strict.apply(ns, image("internal", f"{base}/disk.raw"),
                     image("metadata", "http://169.254.169.254/latest/meta-data/"))
        for name, address in (("internal", "127.0.0.1"), ("metadata", "169.254.169.254")):
            found = strict.wait_condition(ns, "images", name, "InvalidRequest")
            assert f"resolves to {address}, which is not a public address" \
                in found["message"], found
            owner = strict.uid(ns, "images", name)
            assert owned_images(conn, owner) == [], "Glance must not have been asked"
        strict.kubectl("-n", ns, "delete", "images", "--all", "--timeout=60s")
        poll(lambda: strict.get(ns, "images", "internal") is None, 30, 1.0, "the delete")
