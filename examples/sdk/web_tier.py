"""A network, a subnet and N servers in a namespace, each waited for until Ready, then
removed again (deletion waits for the backend): ``python web_tier.py --namespace acme``."""

from __future__ import annotations

import argparse

from central_api.client import Client
from central_api.kinds.common import LocalRef
from central_api.kinds.iaas import Network, Server, ServerSpec, Subnet, SubnetSpec


def build(client: Client, namespace: str, servers: int) -> list[Server]:
    """Apply the tier (idempotent: running it twice changes nothing) and wait for it."""
    meta = {"namespace": namespace, "labels": {"app": "web-tier"}}
    client.apply(Network(metadata={"name": "web", **meta}), field_manager="web-tier")
    client.apply(Subnet(metadata={"name": "web-v4", **meta}, spec=SubnetSpec(
        networkRef=LocalRef(name="web"), cidr="10.30.0.0/24")), field_manager="web-tier")
    for i in range(1, servers + 1):
        client.apply(Server(metadata={"name": f"web-{i}", **meta}, spec=ServerSpec(
            flavor="SCS-2V-4", image="ubuntu-24.04", networks=[LocalRef(name="web")])),
            field_manager="web-tier")
    listed = client.list(Server, namespace, label_selector="app=web-tier")
    return [client.wait_ready(server, timeout=120) for server in listed.items]


def remove(client: Client, namespace: str) -> None:
    for server in client.list(Server, namespace, label_selector="app=web-tier").items:
        client.delete(Server, server.metadata.name, namespace, wait=True, timeout=120)
    client.delete(Subnet, "web-v4", namespace, wait=True)
    client.delete(Network, "web", namespace, wait=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", default=None, help="default: the context's")
    parser.add_argument("--servers", type=int, default=2)
    args = parser.parse_args()
    with Client() as client:
        namespace = args.namespace or client.config.namespace
        for server in build(client, namespace, args.servers):
            print(f"{server.metadata.name}: {server.status.flavor} {server.status.addresses}")
        remove(client, namespace)
        print(f"web tier in {namespace} removed")


if __name__ == "__main__":
    main()
