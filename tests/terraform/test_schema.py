"""The provider's schemas, plans and values without terraform: every built-in kind maps,
immutable fields force replacement, credentials are sensitive, a new kind needs no code."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
from tf.gen import tfplugin_pb2 as pb
from tf.types import Unknown

from central_api.kinds import builtin_kinds
from central_api.kinds.common import Resource, Spec
from central_api.kinds.kind import declare
from central_api.terraform import cache
from central_api.terraform.config import provider_schema, resolve
from central_api.terraform.kinds import actions, served_kinds, type_names
from central_api.terraform.plan import parse_duration, plan
from central_api.terraform.schema import Node, tf_name
from central_api.terraform.servicer import ScsServicer, decode, schema_pb
from central_api.terraform.values import api_path, settle, to_api, to_tf

KINDS = {k.type_name: k for k in served_kinds()}


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider caches its types under XDG_CACHE_HOME: never the real home's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

ACTIONS = {a.type_name: a for a in actions()}


def node_at(root: Node, *path: str) -> Node:
    node = root
    for step in path:
        node = node.element if step == "[]" and node.element is not None else node.child(step)
    return node


def resource(type_name: str) -> Node:
    root = KINDS[type_name].resource
    assert root is not None, f"{type_name} is a resource"
    return root


def test_every_built_in_kind_maps_to_a_schema_terraform_takes() -> None:
    servicer = ScsServicer(None)
    answer = servicer.GetProviderSchema(None, None)
    readable = {(rt.group, rt.kind) for rt in builtin_kinds() if "get" in rt.verbs}
    assert len(answer.data_source_schemas) == len(readable) + len(ACTIONS)
    for name, kind in KINDS.items():
        assert name.startswith("scs_") and name == name.lower()
        schema_pb(kind.data)
        if kind.resource is not None:
            attributes = [a.name for a in answer.resource_schemas[name].block.attributes]
            assert attributes[:2] == ["id", "metadata"] and "timeouts" in attributes
    for expected in ("scs_tenant", "scs_server", "scs_network", "scs_cluster",
                     "scs_role_binding", "scs_service_account", "scs_user"):
        assert expected in answer.resource_schemas


def test_kinds_that_report_ready_are_waited_for() -> None:
    assert KINDS["scs_tenant"].waits and KINDS["scs_server"].waits
    assert KINDS["scs_cluster"].waits and KINDS["scs_user"].waits
    assert not KINDS["scs_component"].waits, "its conditions are its incidents'"
    assert not KINDS["scs_secret"].waits and not KINDS["scs_role_binding"].waits


def test_read_only_kinds_are_data_sources_only() -> None:
    assert KINDS["scs_usage_record"].resource is None
    assert "scs_usage_record" not in ScsServicer(None).resources
    assert "scs_usage_summary" not in KINDS, "create-only: nothing to read"


def test_nested_attributes_follow_the_schema() -> None:
    server = resource("scs_server")
    spec = node_at(server, "spec")
    assert spec.type == "object" and spec.nested
    networks = node_at(spec, "networks")
    assert networks.type == "list" and networks.element is not None
    assert networks.element.type == "object", "a list of objects is a LIST nested attribute"
    assert node_at(spec, "flavor").description.startswith("Flavor")
    quotas = node_at(resource("scs_tenant"), "spec", "quotas")
    assert node_at(quotas, "ram_mib").api_name == "ramMiB"
    assert node_at(quotas, "floating_ips").api_name == "floatingIPs"
    assert node_at(resource("scs_tenant"), "status").computed


def test_server_side_defaults_are_optional_and_computed() -> None:
    image = node_at(resource("scs_image"), "spec")
    disk_format = node_at(image, "disk_format")
    assert (disk_format.optional, disk_format.computed) == (True, True)
    assert "One of:" in disk_format.description, "enums are named in the description"
    source = node_at(image, "source")
    assert (source.required, source.computed) == (True, False)


def test_immutable_fields_require_replacement() -> None:
    image = node_at(resource("scs_image"), "spec")
    assert all(node_at(image, f).replace for f in ("source", "checksum", "disk_format"))
    assert not node_at(image, "architecture").replace
    assert node_at(resource("scs_cluster"), "spec", "networking").replace
    for type_name in ("scs_tenant", "scs_server"):
        metadata = node_at(resource(type_name), "metadata")
        assert node_at(metadata, "name").replace
    assert node_at(resource("scs_server"), "metadata", "namespace").replace


def test_credentials_are_sensitive() -> None:
    secret = resource("scs_secret")
    assert node_at(secret, "data").sensitive and node_at(secret, "string_data").sensitive
    assert node_at(secret, "string_data").write_only
    assert not node_at(resource("scs_service_account"),
                       "automount_service_account_token").sensitive
    admin = ACTIONS["scs_cluster_adminkubeconfig"].data
    assert node_at(admin, "status", "kubeconfig").sensitive
    assert node_at(ACTIONS["scs_cluster_kubeconfig"].data, "status", "kubeconfig").sensitive
    assert node_at(ACTIONS["scs_service_account_token"].data, "status", "token").sensitive
    assert provider_schema().child("token").sensitive


def test_a_kind_added_later_appears_without_provider_code() -> None:
    class WidgetSpec(Spec):
        size: int = 1

    class Widget(Resource):
        spec: WidgetSpec

    widget = declare("example.com/v1", "Widget", Widget)
    kinds = {k.type_name: k for k in served_kinds([*builtin_kinds(), widget])}
    assert kinds["scs_widget"].resource is not None
    assert node_at(kinds["scs_widget"].data, "spec", "size").computed


def test_kinds_of_one_name_in_two_groups_are_named_by_group() -> None:
    network = next(rt for rt in builtin_kinds() if rt.kind == "Network")
    other = dataclasses.replace(network, group="example.com")
    names = type_names([*builtin_kinds(), other])
    assert names[("iaas.scs.community", "Network")] == "scs_iaas_network"
    assert names[("example.com", "Network")] == "scs_example_network"
    assert names[("tenancy.scs.community", "Tenant")] == "scs_tenant"


def test_names_in_snake_case() -> None:
    assert [tf_name(n) for n in ("displayName", "floatingIPs", "ramMiB", "domainID")] == \
        ["display_name", "floating_ips", "ram_mib", "domain_id"]


def test_create_plan_leaves_what_the_server_fills_unknown() -> None:
    root = resource("scs_tenant")
    proposed = to_tf(root, {"metadata": {"name": "acme"}, "spec": {"displayName": "A"}})
    planned, replace = plan(root, None, proposed)
    assert planned is not None and replace == []
    assert planned["id"] == "acme", "known from the configuration"
    assert planned["status"] is Unknown
    assert planned["metadata"]["uid"] is Unknown and planned["metadata"]["labels"] is None
    assert planned["spec"]["contact"] is Unknown, "defaulted by the server"
    assert planned["spec"]["display_name"] == "A"


def test_update_plan_changes_nothing_unless_the_server_side_changes() -> None:
    root = resource("scs_tenant")
    prior = to_tf(root, {"metadata": {"name": "acme", "resourceVersion": "7"},
                         "spec": {"displayName": "A"}, "status": {"identity": "x"}})
    prior["id"] = "acme"
    same, _ = plan(root, prior, {**prior, "timeouts": {"create": "1m", "update": None,
                                                       "delete": None}})
    assert same is not None and same["status"] == prior["status"]
    changed = json.loads(json.dumps(prior))
    changed["spec"]["display_name"] = "B"
    planned, replace = plan(root, prior, changed)
    assert planned is not None and replace == []
    assert planned["status"] is Unknown and planned["metadata"]["resource_version"] is Unknown
    assert planned["metadata"]["name"] == "acme" and planned["id"] == "acme"


def test_changing_an_immutable_field_or_the_name_plans_a_replacement() -> None:
    root = resource("scs_image")
    prior = to_tf(root, {"metadata": {"name": "img", "namespace": "acme"},
                         "spec": {"source": {"url": "https://a/x.img"}, "diskFormat": "raw"}})
    moved = json.loads(json.dumps(prior))
    moved["spec"]["source"]["url"] = "https://b/x.img"
    moved["spec"]["architecture"] = "arm64"
    assert plan(root, prior, moved)[1] == [["spec", "source"]]
    renamed = json.loads(json.dumps(prior))
    renamed["metadata"]["name"] = "img2"
    assert plan(root, prior, renamed)[1] == [["metadata", "name"]]


def test_values_round_trip_and_settle_on_what_means_the_same() -> None:
    root = resource("scs_server")
    obj = {"metadata": {"name": "web", "namespace": "acme"},
           "spec": {"flavor": "SCS-2V-4", "image": "ubuntu", "networks": [{"name": "n"}]}}
    state = to_tf(root, obj)
    assert state["spec"]["networks"][0]["name"] == "n"
    assert to_api(root, state)["spec"]["networks"] == [{"name": "n"}]
    spec = node_at(root, "spec")
    held = {**state["spec"], "networks": None}
    assert settle(spec, {**state["spec"], "networks": []}, held)["networks"] is None
    crd = resource("scs_custom_resource_definition")
    conversion = node_at(crd, "spec", "conversion")
    assert conversion.type == "json"
    assert settle(conversion, '{"a":1,"b":2}', '{"b": 2, "a": 1}') == '{"b": 2, "a": 1}'


def test_api_field_paths_become_attribute_paths() -> None:
    root = resource("scs_tenant")
    assert api_path(root, "spec.quotas.cores") == ["spec", "quotas", "cores"]
    assert api_path(root, "spec.quotas.ramMiB") == ["spec", "quotas", "ram_mib"]
    server = resource("scs_server")
    assert api_path(server, "spec.networks[0].name") == ["spec", "networks", (0,), "name"]


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("10 minutes")


def test_provider_configuration_sources(tmp_path: Path) -> None:
    assert resolve({}, {}) is None, "nothing configured: no silent ~/.kube/config"
    with pytest.raises(Exception, match="no token"):
        resolve({"host": "https://127.0.0.1:1"}, {})
    explicit = resolve({}, {"SCS_HOST": "https://127.0.0.1:1", "SCS_TOKEN": "t"})
    assert explicit is not None and explicit.server == "https://127.0.0.1:1"
    with pytest.raises(Exception, match="kubeconfig|No such|not"):
        resolve({"kubeconfig": str(tmp_path / "missing")}, {})


def test_the_cache_holds_the_same_types() -> None:
    built = cache.load()
    assert cache.cache_file().exists()
    assert cache.load() == built
    assert built[0] == served_kinds()


def test_the_provider_binary_refuses_to_run_outside_terraform() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_PLUGIN_MAGIC_COOKIE"}
    done = subprocess.run([sys.executable, "-m", "central_api.terraform"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "scs terraform install" in done.stderr


def test_refined_unknowns_from_terraform_decode_as_unknown() -> None:
    packed = msgpack.packb({"a": msgpack.ExtType(12, b"\x81\x01\xc3"),
                            "b": msgpack.ExtType(0, b"\x00"), "c": "x"})
    assert decode(pb.DynamicValue(msgpack=packed)) == {"a": Unknown, "b": Unknown, "c": "x"}


def test_a_timeout_that_is_no_duration_is_refused_at_validation() -> None:
    config = {"timeouts": {"create": "ten minutes", "update": None, "delete": "5m"}}
    request = pb.ValidateResourceConfig.Request(
        type_name="scs_tenant", config=pb.DynamicValue(msgpack=msgpack.packb(config)))
    answer = ScsServicer(None).ValidateResourceConfig(request, None)
    assert [d.summary for d in answer.diagnostics] == ["Invalid timeouts.create"]
    assert "not a duration" in answer.diagnostics[0].detail
