"""The provider block: where the API is and who Terraform is there.

Either ``host`` + ``token`` (+ ``ca_file`` to trust a private CA: the provider never skips
TLS verification), or a ``kubeconfig`` path (+ ``context``), in this order; unset attributes
fall back to ``SCS_HOST``/``SCS_TOKEN``/``SCS_CA_FILE``, then ``SCS_KUBECONFIG``, then
``KUBECONFIG``. Nothing configured is an error that says so, rather than silently using
``~/.kube/config``, which may well be another cluster.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tf.types import Unknown
from tf.utils import Diagnostics

from .schema import Node, object_node

if TYPE_CHECKING:
    from ..client import Client, Config

FIELD_MANAGER = "terraform-provider-scs"


def provider_schema() -> Node:
    return object_node({
        "host": Node("string", "", "API server URL, e.g. https://scs.example:6443 (env "
                                   "SCS_HOST).", optional=True),
        "token": Node("string", "", "Bearer token: a ServiceAccount token or an OpenID "
                                    "Connect ID token (env SCS_TOKEN).", optional=True,
                      sensitive=True),
        "ca_file": Node("string", "", "PEM file of the CA that signed the server's "
                                      "certificate (env SCS_CA_FILE; default: the system "
                                      "trust store).", optional=True),
        "kubeconfig": Node("string", "", "Path of a kubeconfig (env SCS_KUBECONFIG, then "
                                         "KUBECONFIG), used when no host is set.",
                           optional=True),
        "context": Node("string", "", "Context of the kubeconfig (default: its current "
                                      "context).", optional=True),
    }, description="The SCS Central API.")


def configure(diags: Diagnostics, values: dict[str, Any]) -> Client | None:
    """A client for the configured identity, or None with the reason in ``diags``."""
    from ..client import Client, ClientError  # the SDK: imported when Terraform needs the API

    if any(v is Unknown for v in values.values()):
        diags.add_error("Provider configuration is not known yet",
                        detail="The scs provider's settings depend on values known only "
                               "after apply; configure it with known values.")
        return None
    try:
        config = resolve(values, os.environ)
    except ClientError as exc:
        diags.add_error("Cannot use the scs provider configuration", detail=str(exc))
        return None
    if config is None:
        diags.add_error(
            "The scs provider is not configured",
            detail="Set host and token (or SCS_HOST and SCS_TOKEN), or kubeconfig (or "
                   "SCS_KUBECONFIG or KUBECONFIG) in the provider block or the environment.")
        return None
    config.user_agent = FIELD_MANAGER
    config.field_manager = FIELD_MANAGER
    return Client(config)


def resolve(values: dict[str, Any], env: Any) -> Config | None:
    from ..client import ClientError, Config, load_kubeconfig

    def get(key: str, *names: str) -> str:
        given = values.get(key)
        if given:
            return str(given)
        return next((env[n] for n in names if env.get(n)), "")

    host, token = get("host", "SCS_HOST"), get("token", "SCS_TOKEN")
    if host:
        if not token:
            raise ClientError(f"host {host} is set but no token (token or SCS_TOKEN)")
        return Config.from_token(host, token, ca_file=get("ca_file", "SCS_CA_FILE") or None)
    kubeconfig = get("kubeconfig", "SCS_KUBECONFIG", "KUBECONFIG")
    if not kubeconfig:
        return None
    path = kubeconfig.split(os.pathsep)[0]
    return load_kubeconfig(os.path.expanduser(path), context=str(values.get("context") or ""))
