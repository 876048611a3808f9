"""Placeholder until the capi provider lands (issue 14): refuses to start, with the reason."""

from __future__ import annotations

from ...config import KubeconfigConfig, ManagementClusterConfig
from ..kaas import KaasProvider


def capi_kaas_provider(settings: ManagementClusterConfig,
                       kubeconfigs: KubeconfigConfig) -> KaasProvider:
    raise ValueError("providers.kaas.type capi is not available yet")
