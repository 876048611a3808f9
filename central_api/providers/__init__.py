"""Backend adapters (layer 5). :func:`build_provider` picks one from the configuration."""

from __future__ import annotations

from ..config import ProviderConfig
from ..store.base import Store
from .base import Provider
from .kaas import KaasProvider


def build_provider(config: ProviderConfig, store: Store | None) -> Provider:
    """The configured provider; the sandbox keeps its simulated cloud in ``store``."""
    if config.type == "sandbox":
        from ..store import open_store
        from .sandbox import SandboxSettings, sandbox_provider

        if config.store:
            store = open_store(config.store)
        if store is None:
            raise ValueError("the sandbox provider needs a store (providers.iaas.store)")
        return sandbox_provider(store, SandboxSettings(speed=config.speed))
    if config.type == "openstack":
        from .openstack import OpenStackSettings, openstack_provider

        return openstack_provider(OpenStackSettings(
            clouds_yaml=config.clouds_yaml, cloud=config.cloud,
            external_network=config.external_network,
            allow_private_image_sources=config.allow_private_image_sources))
    raise ValueError(f"no provider of type {config.type!r}")


def build_kaas_provider(config: ProviderConfig, store: Store | None) -> KaasProvider:
    """The configured KaaS backend: the sandbox keeps its simulated clusters in ``store``;
    Cluster API and Gardener are driven through their management cluster's API."""
    if config.type == "capi":
        from .capi import capi_kaas_provider

        return capi_kaas_provider(config.capi, config.kubeconfigs)
    if config.type == "gardener":
        from .gardener import gardener_kaas_provider

        return gardener_kaas_provider(config.gardener, config.kubeconfigs)
    from ..store import open_store
    from .sandbox import SandboxSettings, sandbox_kaas_provider

    if config.store:
        store = open_store(config.store)
    if store is None:
        raise ValueError("the sandbox KaaS provider needs a store (providers.kaas.store)")
    return sandbox_kaas_provider(store, SandboxSettings(speed=config.speed))
