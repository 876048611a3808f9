"""A CustomResourceDefinition applied with kubectl becomes a usable kind."""

from __future__ import annotations

import json

import pytest

from .conftest import MANIFESTS, Kubectl, eventually, manifest

pytestmark = pytest.mark.slow

CRD = "widgets.e2e.scs.community"


@pytest.fixture(scope="module")
def widgets(kubectl: Kubectl) -> str:
    """The Widget CRD, applied once per server and established."""
    kubectl.ok("apply", "-f", str(MANIFESTS / "widget-crd.yaml"))
    kubectl.ok("wait", "--for", "condition=established", f"crd/{CRD}", "--timeout=30s")
    return CRD


def widget(kubectl: Kubectl, namespace: str, name: str, spec: dict[str, object]) -> str:
    return manifest("widget.yaml", name=name, namespace=namespace, spec=json.dumps(spec))


def test_crd_becomes_established_and_its_kind_is_served(kubectl: Kubectl, widgets: str) -> None:
    crd = kubectl.json("get", "crd", widgets)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"

    def served() -> bool:
        out = kubectl.run("api-resources", "--api-group=e2e.scs.community").stdout
        return "widgets" in out
    eventually(served, message="widgets never appeared in api-resources")
    row = next(line.split() for line in kubectl.ok("api-resources").stdout.splitlines()
               if line.startswith("widgets "))
    assert row == ["widgets", "wdg", "e2e.scs.community/v1", "true", "Widget"]
    explained = kubectl.ok("explain", "widget.spec").stdout
    assert "What the widget should look like." in explained
    assert "Paint colour." in explained


def test_custom_resource_gets_defaults_and_printer_columns(
        kubectl: Kubectl, widgets: str, namespace: str) -> None:
    kubectl.apply(widget(kubectl, namespace, "w1", {"color": "red"}))
    out = kubectl.ok("-n", namespace, "get", "wdg").stdout.splitlines()
    assert out[0].split() == ["NAME", "COLOR", "MIN", "AGE"]
    assert out[1].split()[:3] == ["w1", "red", "1"]
    wide = kubectl.ok("-n", namespace, "get", "widgets", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "COLOR", "MIN", "MAX", "AGE"]
    assert wide[1].split()[:4] == ["w1", "red", "1", "3"]
    obj = kubectl.json("-n", namespace, "get", "widget", "w1")
    assert obj["spec"] == {"color": "red", "minReplicas": 1, "maxReplicas": 3}

    kubectl.ok("-n", namespace, "patch", "widget", "w1", "--subresource=status",
               "--type=merge", "-p", '{"status":{"phase":"Running"}}')
    obj = kubectl.json("-n", namespace, "get", "widget", "w1")
    assert obj["status"] == {"phase": "Running"}
    assert obj["metadata"]["generation"] == 1


def test_custom_resource_validation_enum_and_cel(
        kubectl: Kubectl, widgets: str, namespace: str) -> None:
    enum = kubectl.fails("apply", "-f", "-",
                         input=widget(kubectl, namespace, "purple", {"color": "purple"}))
    assert "is invalid" in enum.stderr
    assert "spec.color" in enum.stderr and "Unsupported value" in enum.stderr

    cel = kubectl.fails("create", "-f", "-", input=widget(
        kubectl, namespace, "inverted", {"color": "blue", "minReplicas": 5, "maxReplicas": 2}))
    assert "is invalid" in cel.stderr
    assert "minReplicas must not exceed maxReplicas" in cel.stderr
    for refused in ("purple", "inverted"):
        assert "NotFound" in kubectl.fails("-n", namespace, "get", "widget", refused).stderr


def test_unknown_fields_are_refused_by_apply_and_dropped_without_validation(
        kubectl: Kubectl, widgets: str, namespace: str) -> None:
    doc = widget(kubectl, namespace, "w2", {"color": "green", "bogus": True})
    strict = kubectl.fails("apply", "-f", "-", "-v=6", input=doc)
    assert "fieldValidation=Strict" in strict.stderr, "the server validates, not kubectl"
    assert 'unknown field "spec.bogus"' in strict.stderr
    assert "NotFound" in kubectl.fails("-n", namespace, "get", "widget", "w2").stderr

    lax = kubectl.ok("apply", "--validate=false", "-f", "-", "-v=6", input=doc)
    assert "fieldValidation=Ignore" in lax.stderr
    assert "unknown field" not in lax.stderr, "dropped silently, without a warning"
    obj = kubectl.json("-n", namespace, "get", "widget", "w2")
    assert obj["spec"] == {"color": "green", "minReplicas": 1, "maxReplicas": 3}
