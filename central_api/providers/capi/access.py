"""How to reach a CAPI cluster: its endpoint and CA, and on request a short-lived admin.

The endpoint is ``spec.controlPlaneEndpoint``, the CA the ``tls.crt`` of the ``<name>-ca``
Secret that Cluster API (kubeadm) keeps for every cluster. An admin credential is a client
certificate signed here with that CA's key (``tls.key``), valid for the seconds asked for: the
long-lived ``<name>-kubeconfig`` Secret (a certificate valid for a year) is never read, so
it can neither leave the management cluster nor be stored anywhere. The certificate's
subject names the user (``scs:<user>``) so the cluster's audit log shows who it was; its
organization is ``capi.adminGroup``, by default kubeadm's ``kubeadm:cluster-admins`` (bound to
cluster-admin): unlike ``system:masters``, which bypasses RBAC, the operator can revoke every
such certificate at once by removing that binding (Kubernetes cannot revoke a certificate).
"""

from __future__ import annotations

import asyncio
import base64

from ..base import BackendResource, Conflict, InvalidRequest, NotFound, Scope
from ..certificates import client_certificate
from ..kaas import AdminRequest, ClusterAccess
from . import mapping, status
from .management import Management

USER_PREFIX = "scs:"


async def cluster_access(management: Management, scope: Scope, backend: BackendResource,
                         admin: AdminRequest | None) -> ClusterAccess:
    kube = await management.kube()
    namespace = management.namespace(scope)
    found = await kube.get(mapping.CAPI, mapping.CLUSTERS, namespace, backend.id)
    labels = ((found or {}).get("metadata") or {}).get("labels") or {}
    if found is None or labels.get(mapping.OWNER_LABEL) != backend.owner_uid:
        raise NotFound(f"the cluster {backend.id} is not in the management cluster")
    server = status.endpoint(found)
    if not server:
        raise Conflict(f"the cluster {backend.id} has no API endpoint yet")
    secret = await kube.get("v1", "secrets", namespace, f"{backend.id}-ca")
    data = (secret or {}).get("data") or {}
    if "tls.crt" not in data:
        raise Conflict(f"the CA of cluster {backend.id} is not there yet")
    ca = base64.b64decode(data["tls.crt"])
    if admin is None:
        return ClusterAccess(server, ca)
    if "tls.key" not in data:
        raise InvalidRequest(f"the CA of cluster {backend.id} has no key to sign with")
    signed = await asyncio.to_thread(
        client_certificate, ca, base64.b64decode(data["tls.key"]), USER_PREFIX + admin.user,
        management.settings.admin_group, admin.seconds)
    return ClusterAccess(server, ca, client_certificate=signed.certificate,
                         client_key=signed.key, expires=signed.not_after)
