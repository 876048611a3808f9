"""Resource kinds: each declared once, everything else derived from the declaration."""

from __future__ import annotations

from .kind import ResourceType


def builtin_kinds() -> list[ResourceType]:
    """Every kind this server serves without a CRD."""
    from .apiextensions import CRD
    from .coordination import LEASE
    from .core import NAMESPACE, SECRET, SERVICE_ACCOUNT
    from .iaas import IAAS_KINDS
    from .iam import IAM_KINDS
    from .kaas import KAAS_KINDS
    from .metering import METERING_KINDS
    from .rbac import RBAC_KINDS
    from .status import STATUS_KINDS
    from .tenancy import TENANT

    return [NAMESPACE, SECRET, SERVICE_ACCOUNT, TENANT, CRD, LEASE, *RBAC_KINDS,
            *IAAS_KINDS, *IAM_KINDS, *KAAS_KINDS, *STATUS_KINDS,
            *METERING_KINDS]
