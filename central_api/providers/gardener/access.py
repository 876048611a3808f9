"""Reaching a Shoot's API server: endpoint and CA for everyone, admin credentials on request.

- Without an admin request only the endpoint and CA are needed, and no credential is minted
  for them: the CA is the ``<shoot>.ca-cluster`` ConfigMap (key ``ca.crt``) in the project
  namespace and the endpoint the ``external`` advertised address, the two that Gardener's
  own kubeconfig subresources read. (The ``viewerkubeconfig`` subresource would mint a
  read-only credential just to throw it away.)
- With an :class:`~..kaas.AdminRequest`, Gardener's ``shoots/adminkubeconfig`` subresource
  mints a short-lived client certificate: the answer's ``status.kubeconfig`` (base64) is
  parsed for its current context's server, CA and credential, and
  ``status.expirationTimestamp`` says how long it lasts (the Garden may cap the request).
  Nothing of it is logged or kept.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from typing import Any

import yaml

from ..base import NotFound, ProviderError
from ..kaas import AdminRequest, ClusterAccess
from ..kube import KubeClient
from .mapping import API, AUTH_API, endpoint


class ClusterNotReady(ProviderError):
    """The Shoot has no endpoint or CA yet (it is still being created): try again later."""

    reason = "ClusterNotReady"


async def access(kube: KubeClient, namespace: str, name: str,
                 admin: AdminRequest | None) -> ClusterAccess:
    if admin is not None:
        return await admin_access(kube, namespace, name, admin.seconds)
    live = await kube.get(API, "shoots", namespace, name)
    if live is None:
        raise NotFound(f"Shoot {namespace}/{name} does not exist")
    server = endpoint(live)
    ca = await kube.get("v1", "configmaps", namespace, f"{name}.ca-cluster")
    pem = str(((ca or {}).get("data") or {}).get("ca.crt") or "")
    if not server or not pem:
        raise ClusterNotReady(f"Shoot {name} has no API endpoint and CA yet")
    return ClusterAccess(server=server, certificate_authority=pem.encode())


async def admin_access(kube: KubeClient, namespace: str, name: str,
                       seconds: int) -> ClusterAccess:
    answer = await kube.create(API, "shoots", namespace, {
        "apiVersion": AUTH_API, "kind": "AdminKubeconfigRequest",
        "spec": {"expirationSeconds": seconds}}, subresource="adminkubeconfig", name=name)
    status = answer.get("status") or {}
    found = parse_kubeconfig(str(status.get("kubeconfig") or ""))
    expires = str(status.get("expirationTimestamp") or "")
    if not expires:
        raise ProviderError("the Garden's AdminKubeconfigRequest answer has no "
                            "expirationTimestamp")
    return ClusterAccess(**found, expires=dt.datetime.fromisoformat(
        expires.replace("Z", "+00:00")))


def parse_kubeconfig(encoded: str) -> dict[str, Any]:
    """Server, CA and credential of the current context of a base64 kubeconfig; the error
    names what is missing, never a value."""
    try:
        config = yaml.safe_load(base64.b64decode(encoded, validate=True))
        context = _named(config, "contexts", config["current-context"])["context"]
        cluster = _named(config, "clusters", context["cluster"])["cluster"]
        user = _named(config, "users", context["user"])["user"]
        return {"server": str(cluster["server"]),
                "certificate_authority": _data(cluster, "certificate-authority-data"),
                "client_certificate": _data(user, "client-certificate-data"),
                "client_key": _data(user, "client-key-data"),
                "token": str(user.get("token") or "")}
    except KeyError as exc:  # a key name, never a value
        raise ProviderError(f"the Garden answered a kubeconfig without {exc.args[0]}"
                            ) from None
    except (binascii.Error, yaml.YAMLError, TypeError, AttributeError) as exc:
        # only the type: a YAML error would quote the document, credentials included
        raise ProviderError(f"the Garden answered an unreadable kubeconfig "
                            f"({type(exc).__name__})") from None


def _named(config: Mapping[str, Any], section: str, name: str) -> Mapping[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return dict(entry)
    raise KeyError(f"{section}/{name}")


def _data(entry: Mapping[str, Any], key: str) -> bytes:
    value = entry.get(key)
    return base64.b64decode(value, validate=True) if value else b""
