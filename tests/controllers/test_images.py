"""The Image kind on the sandbox: what users see through kubectl and the API, validation
that refuses bad or immutable changes without storing anything, and Servers that boot a
tenant's Image through ``imageRef``. The real import into Glance is tested in
tests/iaas_openstack/test_images.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controllers.conftest import IAAS, Cluster, condition, eventually, obj

pytestmark = pytest.mark.slow

URL = "https://images.example.com/debian-12-arm64.qcow2"


def image(name: str, **spec: Any) -> dict[str, Any]:
    return obj("Image", name, {"source": {"url": URL}, **spec})


def boot(name: str, image_name: str, architecture: str = "amd64") -> dict[str, Any]:
    return obj("Server", name, {"flavor": "SCS-1V-2", "imageRef": {"name": image_name},
                                "architecture": architecture, "networks": [{"name": "net"}]})


def refused(cluster: Cluster, ns: str, item: dict[str, Any], name: str = "") -> dict[str, Any]:
    """The Status of a write the API must refuse with 422."""
    plural = {"Image": "images", "Server": "servers"}[item["kind"]]
    if name:
        response = cluster.http.put(f"{IAAS}/namespaces/{ns}/{plural}/{name}", json=item)
    else:
        response = cluster.http.post(f"{IAAS}/namespaces/{ns}/{plural}", json=item)
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status" and body["reason"] == "Invalid", body
    return body


def fields(status: dict[str, Any]) -> set[str]:
    return {cause["field"] for cause in status["details"]["causes"]}


def test_an_image_becomes_ready_and_kubectl_shows_it(cluster: Cluster) -> None:
    ns = cluster.create_namespace("img")
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=f"""
apiVersion: iaas.scs.community/v1alpha1
kind: Image
metadata: {{name: debian}}
spec:
  source: {{url: "{URL}"}}
  architecture: arm64
  osDistro: debian
  osVersion: "12"
""")
    ready = cluster.wait_ready("images", ns, "debian")
    assert ready["spec"]["diskFormat"] == "qcow2", "the schema's default"
    assert ready["status"]["provider"] == "sandbox (simulated)"
    message = condition(ready, "Ready")["message"]  # type: ignore[index]
    assert "nothing was downloaded" in message, message

    table = cluster.kubectl("-n", ns, "get", "images").stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "ARCH", "FORMAT", "SIZE", "READY"], table
    assert row.split()[:3] == ["debian", "arm64", "qcow2"], table
    wide = cluster.kubectl("-n", ns, "get", "img", "debian", "-o", "wide").stdout
    assert URL in wide, wide
    explained = cluster.kubectl("explain", "images.spec.checksum").stdout
    assert "sha256" in explained, explained

    cluster.kubectl("-n", ns, "patch", "image", "debian", "--type", "merge",
                    "-p", '{"spec": {"minDiskGiB": 8}}')
    assert cluster.get("images", ns, "debian")["spec"]["minDiskGiB"] == 8  # type: ignore[index]
    cluster.kubectl("-n", ns, "delete", "image", "debian", "--timeout=30s")
    assert cluster.get("images", ns, "debian") is None


@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"source": {"url": "file:///etc/shadow"}}, "spec.source.url", "http or https"),
    ({"source": {"url": "ftp://images.example.com/x.img"}}, "spec.source.url", "http or https"),
    ({"source": {"url": "https://user:secret@images.example.com/x.img"}}, "spec.source.url",
     "must not contain credentials"),
    ({"source": {"url": URL}, "checksum": "md5:" + "0" * 32}, "spec.checksum", "sha256:"),
    ({"source": {"url": URL}, "checksum": "sha256:" + "g" * 64}, "spec.checksum", "sha256:"),
    ({"source": {"url": URL}, "diskFormat": "exe"}, "spec.diskFormat", "Unsupported value"),
    ({}, "spec.source", "Required value"),
])
def test_bad_images_are_refused_with_the_field_and_nothing_is_stored(
        cluster: Cluster, spec: dict[str, Any], field: str, words: str) -> None:
    ns = cluster.create_namespace("bad-img")
    status = refused(cluster, ns, obj("Image", "bad", spec))
    causes = [c for c in status["details"]["causes"] if c["field"] == field]
    assert causes and words in causes[0]["message"], status
    assert "secret" not in status["message"], "a refused URL's password is not echoed"
    assert cluster.list("images", ns) == []


def test_source_checksum_and_format_are_immutable_but_metadata_is_not(cluster: Cluster) -> None:
    ns = cluster.create_namespace("imm-img")
    created = cluster.create(ns, image("base", checksum="sha512:" + "a" * 128))
    cluster.wait_ready("images", ns, "base")  # the controller's own writes are done
    for change in ({"source": {"url": URL + "?v=2"}}, {"checksum": ""},
                   {"diskFormat": "raw"}):
        current = cluster.get("images", ns, "base") or {}
        changed = {**current, "spec": {**current["spec"], **change}}
        status = refused(cluster, ns, changed, "base")
        assert fields(status) == {f"spec.{next(iter(change))}"}, status
        assert "immutable" in status["message"], status
    stored = cluster.get("images", ns, "base")
    assert stored is not None and stored["spec"] == created["spec"]
    assert stored["metadata"]["generation"] == 1

    stored["spec"].update(architecture="arm64", minMemoryMiB=1024, osDistro="debian")
    response = cluster.http.put(f"{IAAS}/namespaces/{ns}/images/base", json=stored)
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["generation"] == 2


def test_a_server_boots_an_image_by_reference_and_checks_its_architecture(
        cluster: Cluster) -> None:
    ns = cluster.create_namespace("boot-img")
    cluster.network_with_subnet(ns)
    cluster.create(ns, boot("early", "custom"))  # before the Image exists

    def waiting() -> dict[str, Any] | None:
        found = condition(cluster.get("servers", ns, "early"), "ReferencesResolved")
        return found if found and found["reason"] == "ReferenceNotFound" else None
    assert "images 'custom' does not exist" in eventually(waiting)["message"]

    cluster.create(ns, image("custom"))
    cluster.wait_ready("images", ns, "custom")
    server = cluster.wait_ready("servers", ns, "early")
    assert server["status"]["addresses"], server["status"]
    record = next(r for r in cluster.inventory()["Server"]
                  if r["id"] == server["status"]["backendID"])
    assert record["desired"]["imageID"] == cluster.get(  # type: ignore[index]
        "images", ns, "custom")["status"]["backendID"]

    # Only booting needs the Image: without it the running server still reconciles.
    cluster.delete("images", ns, "custom")
    cluster.wait_gone("images", ns, "custom")
    cluster.kubectl("-n", ns, "patch", "server", "early", "--type", "merge",
                    "-p", '{"spec": {"haPolicy": "restart"}}')

    def reconciled() -> dict[str, Any] | None:
        current = cluster.get("servers", ns, "early") or {}
        return current if current["status"].get("observedGeneration") == 2 else None
    after = eventually(reconciled, what="the server's second generation reconciled")
    assert condition(after, "Ready")["status"] == "True", after["status"]  # type: ignore[index]

    cluster.create(ns, image("custom"))
    cluster.wait_ready("images", ns, "custom")
    cluster.create(ns, boot("wrong-arch", "custom", architecture="arm64"))

    def refused_arch() -> dict[str, Any] | None:
        found = condition(cluster.get("servers", ns, "wrong-arch"), "Ready")
        return found if found and found["reason"] == "InvalidRequest" else None
    message = eventually(refused_arch)["message"]
    assert "built for amd64" in message and "arm64" in message, message


@pytest.mark.parametrize("spec", [
    {"flavor": "SCS-1V-2", "networks": [{"name": "net"}]},
    {"flavor": "SCS-1V-2", "image": "debian-12", "imageRef": {"name": "custom"},
     "networks": [{"name": "net"}]},
])
def test_a_server_needs_exactly_one_of_image_and_image_ref(cluster: Cluster,
                                                           spec: dict[str, Any]) -> None:
    ns = cluster.create_namespace("one-img")
    status = refused(cluster, ns, obj("Server", "s", spec))
    assert fields(status) == {"spec.image"}, status
    assert "exactly one of image or imageRef" in status["message"], status
