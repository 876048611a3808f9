"""Onboard a tenant and wait until it is usable: ``python onboard_tenant.py acme --admin
alice@acme.example``. Uses the kubeconfig kubectl would ($KUBECONFIG)."""

from __future__ import annotations

import argparse
import sys

from central_api.client import AlreadyExists, Client, Invalid, WaitTimeout
from central_api.kinds.tenancy import Tenant, TenantSpec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--display-name", default="")
    parser.add_argument("--admin", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    with Client() as client:
        tenant = Tenant(metadata={"name": args.name}, spec=TenantSpec(
            displayName=args.display_name or args.name, admins=args.admin))
        try:
            tenant = client.create(tenant)
        except AlreadyExists:
            tenant = client.get(Tenant, args.name)  # follow the one that exists
        except Invalid as exc:
            for cause in exc.causes:
                print(f"{cause.field}: {cause.message}", file=sys.stderr)
            return 1
        try:
            tenant = client.wait_ready(tenant, timeout=args.timeout)
        except WaitTimeout as exc:
            print(exc, file=sys.stderr)
            return 3
    print(f"{args.name} is Ready: namespaces {tenant.status.namespaces}, "
          f"identity {tenant.status.identity}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
