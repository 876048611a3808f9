"""Which reconcilers run, decided once for both places that run them.

The API server (``controllers: in-process``) and ``scs controllers`` (a separate process
against the public API) must run exactly the same set for the same configuration, or a kind
would be reconciled in one deployment mode and silently ignored in the other.
"""

from __future__ import annotations

from typing import Any

from ..providers.base import Provider
from ..providers.identity import IdentityService
from ..providers.kaas import KaasProvider
from .client import Client
from .component_status import ComponentStatusReconciler
from .iaas import iaas_reconcilers
from .iam import IamReconciler, iam_reconcilers
from .kaas import ClusterReconciler
from .runtime import Reconciler
from .tenants import TenantReconciler


def all_reconcilers(client: Client, *, provider: Provider | None,
                    identity: IdentityService | None, identity_region: str = "",
                    identity_resync_seconds: float | None = None,
                    serves_iam: bool = False, kaas: KaasProvider | None = None,
                    serves_status: bool = False) -> list[Reconciler[Any]]:
    """IaaS against the provider, Clusters against the KaaS provider; onboarding (and IAM,
    where served) against the identity backend, resynced every ``identity_resync_seconds``
    (None: the manager's default); Components' status from their incidents where the
    status service is on. Nothing for a backend that is not configured."""
    reconcilers: list[Reconciler[Any]] = []
    if provider is not None:
        reconcilers += iaas_reconcilers(client, provider)
    if kaas is not None:
        reconcilers.append(ClusterReconciler(client, kaas))
    if identity is not None:
        onboarding: list[TenantReconciler | IamReconciler[Any]] = [
            TenantReconciler(client, identity, identity_region)]
        if serves_iam:
            onboarding += iam_reconcilers(client, identity)
        for reconciler in onboarding:
            reconciler.resync_seconds = identity_resync_seconds
        reconcilers += onboarding
    if serves_status:
        reconcilers.append(ComponentStatusReconciler(client))
    return reconcilers
