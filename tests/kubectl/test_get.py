"""``kubectl get``: output formats, selectors, paging, all namespaces and watch."""

from __future__ import annotations

import pytest
import yaml

from .conftest import Kubectl, Lines, manifest

pytestmark = pytest.mark.slow


@pytest.fixture
def colored(kubectl: Kubectl, namespace: str) -> str:
    """Five labelled secrets (red, green, blue, black, white) in the test's namespace."""
    kubectl.apply(manifest("secrets.yaml", namespace=namespace))
    return namespace


def names(kubectl: Kubectl, *args: str) -> list[str]:
    out = kubectl.ok("get", *args, "-o", "name").stdout
    return sorted(line.split("/", 1)[1] for line in out.split())


def test_get_wide_adds_priority_columns(kubectl: Kubectl, name: str) -> None:
    kubectl.apply(manifest("tenant.yaml", name=name, display="Wide Corp"))
    header = kubectl.ok("get", "tenant", name).stdout.splitlines()[0].split()
    assert header == ["NAME", "DISPLAY", "NAME", "READY", "AGE"]
    wide = kubectl.ok("get", "tenant", name, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "DISPLAY", "NAME", "READY", "CONTACT", "DOMAIN",
                               "IDENTITY", "AGE"]
    assert "ops@example.com" in wide[1]
    assert "ops@example.com" not in kubectl.ok("get", "tenant", name).stdout


def test_get_yaml_and_json_show_the_stored_object(kubectl: Kubectl, name: str) -> None:
    kubectl.apply(manifest("tenant.yaml", name=name, display="Format Corp"))
    as_yaml = yaml.safe_load(kubectl.ok("get", "tn", name, "-o", "yaml").stdout)
    as_json = kubectl.json("get", "tn", name)
    for obj in (as_yaml, as_json):
        assert obj["apiVersion"] == "tenancy.scs.community/v1alpha1"
        assert obj["kind"] == "Tenant"
        assert obj["metadata"]["name"] == name
        assert obj["spec"]["displayName"] == "Format Corp"
        assert obj["spec"]["enabledServices"] == ["iaas", "iam"], "defaults are applied"
    assert as_yaml["metadata"]["uid"] == as_json["metadata"]["uid"]
    listed = kubectl.json("get", "tn", "-l", f"suite={name}")
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == [name]


def test_get_filters_by_label_selector(kubectl: Kubectl, colored: str) -> None:
    ns = ["-n", colored, "secrets"]
    assert names(kubectl, *ns, "-l", "color=red") == ["red"]
    assert names(kubectl, *ns, "-l", "color!=red") == ["black", "blue", "green", "white"]
    assert names(kubectl, *ns, "-l", "color in (red,blue)") == ["blue", "red"]
    assert names(kubectl, *ns, "-l", "color notin (red,blue)") == ["black", "green", "white"]
    assert names(kubectl, *ns, "-l", "shiny") == ["blue", "red"]
    assert names(kubectl, *ns, "-l", "!shiny") == ["black", "green", "white"]
    assert names(kubectl, *ns, "-l", "size=small,shiny=yes") == ["red"]
    none = kubectl.ok("get", *ns, "-l", "color=purple")
    assert none.stdout == "" and f"No resources found in {colored} namespace." in none.stderr


def test_get_filters_by_field_selector(kubectl: Kubectl, colored: str) -> None:
    assert names(kubectl, "-n", colored, "secrets",
                 "--field-selector", "metadata.name=green") == ["green"]
    assert names(kubectl, "-n", colored, "secrets",
                 "--field-selector", "metadata.name!=green") == ["black", "blue", "red", "white"]
    bad = kubectl.fails("get", "-n", colored, "secrets", "--field-selector", "spec.nope=1")
    assert "field label not supported" in bad.stderr or "not supported" in bad.stderr


def test_get_with_chunk_size_pages_through_all_objects(kubectl: Kubectl, colored: str) -> None:
    result = kubectl.ok("get", "-n", colored, "secrets", "--chunk-size=2", "-o", "name", "-v=6")
    assert sorted(result.stdout.split()) == [f"secret/{c}" for c in
                                             ("black", "blue", "green", "red", "white")]
    pages = [line for line in result.stderr.splitlines() if "/secrets?" in line]
    assert len(pages) == 3, pages
    assert all("limit=2" in page for page in pages)
    assert all("continue=" in page for page in pages[1:])


def test_get_all_namespaces_lists_secrets_everywhere(kubectl: Kubectl, name: str) -> None:
    for suffix in ("a", "b"):
        kubectl.ok("create", "namespace", f"{name}-{suffix}")
        kubectl.ok("-n", f"{name}-{suffix}", "create", "secret", "generic", f"s-{suffix}",
                   "--from-literal=k=v")
    out = kubectl.ok("get", "secrets", "-A").stdout.splitlines()
    assert out[0].split()[:2] == ["NAMESPACE", "NAME"]
    rows = {tuple(line.split()[:2]) for line in out[1:]}
    assert {(f"{name}-a", "s-a"), (f"{name}-b", "s-b")} <= rows
    listed = kubectl.json("get", "secrets", "--all-namespaces")
    found = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]}
    assert {(f"{name}-a", "s-a"), (f"{name}-b", "s-b")} <= found


def test_get_watch_prints_an_event_line_per_change(kubectl: Kubectl, name: str) -> None:
    kubectl.apply(manifest("tenant.yaml", name=name, display="Watched Corp"))
    proc = kubectl.popen("get", "tenant", name, "-w", "--output-watch-events")
    try:
        lines = Lines(proc.stdout)
        first = lines.wait_for(name)
        assert first.split()[:2] == ["ADDED", name]
        kubectl.ok("patch", "tenant", name, "--type=merge",
                   "-p", '{"spec":{"displayName":"Seen"}}')
        changed = lines.wait_for("Seen")
        assert changed.split()[:3] == ["MODIFIED", name, "Seen"]
        kubectl.ok("delete", "tenant", name)
        assert lines.wait_for("DELETED").split()[:2] == ["DELETED", name]
    finally:
        proc.kill()
        proc.wait()
