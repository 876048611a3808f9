"""The Keystone identity provider: onboarding and IAM on a real OpenStack Keystone.

See :mod:`.identity` for the design, and ``docs/keystone-domain-manager-policy.yaml`` for the
policy Keystone releases before 2024.2 need for the SCS domain manager (scs-0302).
"""

from .identity import FEDERATION_PROTOCOL, SERVICE_TYPE_ALIASES, KeystoneIdentity

__all__ = ["FEDERATION_PROTOCOL", "SERVICE_TYPE_ALIASES", "KeystoneIdentity"]
