"""Where the simulated cloud lives in the store: one resource prefix per record type.

Everything is under ``sandbox/...``, a resource name no API group can take (API resources are
``<group>/<plural>`` and groups contain dots), so the sandbox shares the API's store — and its
durability, backups and PostgreSQL HA — without ever appearing in the API.
"""

from __future__ import annotations

from ...store.base import Key

KINDS: dict[str, str] = {
    "Network": "networks", "Subnet": "subnets", "Router": "routers",
    "SecurityGroup": "securitygroups", "Keypair": "keypairs", "Volume": "volumes",
    "Image": "images", "Server": "servers", "FloatingIP": "floatingips",
    "LoadBalancer": "loadbalancers", "Cluster": "clusters",
}
"""Kind → plural of its records (``sandbox/<plural>``)."""

OWNERS = "sandbox/owners"
"""Index ``<plural>.<owner uid>`` → backend id: ``find`` is one key lookup."""
IPS = "sandbox/ips"
"""One record per allocated address, ``<subnet id>_<ip>`` (or ``external_<ip>`` in namespace
``""``); creating it is the atomic claim, so two servers can never get the same address."""
FAULTS = "sandbox/faults"
IDENTITY = "Identity"
"""The fault kind of the sandbox identity backend (a simulated Keystone, :mod:`.identity`)."""
QUOTAS = "sandbox/quotas"
TENANT_NAMESPACES = "sandbox/tenant-namespaces"
"""``<tenant>/<namespace>`` for every tenant namespace the cloud served: a tenant's quota
sums the usage of all of them."""


def resource(kind: str) -> str:
    try:
        return f"sandbox/{KINDS[kind]}"
    except KeyError:
        raise ValueError(f"the sandbox has no kind {kind!r} (kinds: {', '.join(KINDS)})") \
            from None


def record_key(kind: str, namespace: str, backend_id: str) -> Key:
    return Key(resource(kind), namespace, backend_id)


def owner_key(kind: str, namespace: str, owner_uid: str) -> Key:
    return Key(OWNERS, namespace, f"{KINDS[kind]}.{owner_uid}")
