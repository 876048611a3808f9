"""A controller's ``Kind`` is the SDK's ``ApiResource`` without a model: the same paths (names
quoted, so a name can never address another resource) and objects as dicts."""

from __future__ import annotations

from central_api.client import ApiResource
from central_api.controllers.client import Kind
from central_api.controllers.typed import kind_of
from central_api.kinds.kaas import CLUSTER


def test_paths_are_the_sdks_with_names_quoted() -> None:
    secrets = Kind("", "v1", "secrets")

    assert secrets.path("acme", "a/../b") == "/api/v1/namespaces/acme/secrets/a%2F..%2Fb"
    assert kind_of(CLUSTER).path("acme", "c1", "kubeconfig") == \
        "/apis/kaas.scs.community/v1alpha1/namespaces/acme/clusters/c1/kubeconfig"
    assert kind_of(CLUSTER).path("acme", "c1") == ApiResource.of(CLUSTER).path("acme", "c1")


def test_a_declared_kind_travels_as_dicts() -> None:
    kind = kind_of(CLUSTER)

    assert isinstance(kind, ApiResource) and kind.model is None
    assert kind.api_version == "kaas.scs.community/v1alpha1"
    assert kind == Kind("kaas.scs.community", "v1alpha1", "clusters")
