"""``scs usage``: a tenant's usage over a period — the pull path for billing.

By default it prints the tenant's UsageSummary (quantities by kind, flavor or type, and
unit); ``--records`` prints the usage records themselves (one per object, state and hour,
the open parts of running objects included). ``--csv`` and ``--json`` are for machines.
Records are those of the tenant's namespaces that overlap ``[from, to)``, each with its
full period (a summary counts only the overlap). Who may see them is the server's call:
the tenant's admins, members and viewers see their tenant, the cloud admin every tenant.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..client import ALL_NAMESPACES, Client, Forbidden
from ..client.resources import resolve
from ..kinds.metering import API_VERSION, TENANT_LABEL, USAGE_RECORD, USAGE_SUMMARY, parse_stamp
from .connection import ContextOption, KubeconfigOption, run

out = Console()
err = Console(stderr=True)
RECORD_FIELDS = ("seq", "tenant", "namespace", "kind", "name", "uid", "part", "flavor",
                 "volumeType", "sizeGiB", "count", "start", "end", "seconds", "hours", "open")
SUMMARY_FIELDS = ("kind", "flavor", "unit", "quantity")


def usage(
    tenant: Annotated[str, typer.Option(help="The tenant whose usage to show.")],
    from_: Annotated[str, typer.Option("--from", help="Period start: RFC 3339 or a date "
                                                      "(2026-01-01, UTC midnight).")],
    to: Annotated[str, typer.Option(help="Period end, exclusive.")],
    records: Annotated[bool, typer.Option("--records", help="The usage records instead of "
                                                            "the summary.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    namespace: Annotated[str, typer.Option(help="Only this namespace's records (default: "
                                                "all the tenant's).")] = "",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = "",
) -> None:
    """A tenant's usage from the Central API's metering, as a table, CSV or JSON."""
    if as_csv and as_json:
        err.print("[red]give at most one of --csv and --json[/red]")
        raise typer.Exit(2)
    try:
        start, end = parse_stamp(from_), parse_stamp(to)
    except ValueError:
        err.print("[red]--from and --to must be RFC 3339 times or dates (2026-01-31)[/red]")
        raise typer.Exit(2) from None

    def show(client: Client) -> int:
        if records:
            rows = fetch_records(client, tenant, namespace, start, end)
            emit(rows, RECORD_FIELDS, as_csv, as_json, "Usage records")
            return 0
        status = fetch_summary(client, tenant, from_, to)
        if as_json:
            typer.echo(json.dumps(status, indent=2))
        else:
            emit(status.get("items") or [], SUMMARY_FIELDS, as_csv, False,
                 f"Usage of {tenant} ({status.get('derived', 0)} records)")
        return 0

    run(kubeconfig, context, "scs-usage", show)


def fetch_summary(client: Client, tenant: str, start: str, end: str) -> dict[str, Any]:
    review = {"apiVersion": API_VERSION, "kind": USAGE_SUMMARY.kind,
              "spec": {"tenant": tenant, "from": start, "to": end}}
    answer = client.create(review, kind=resolve(USAGE_SUMMARY).as_dicts())
    return dict(answer.get("status") or {})


def fetch_records(client: Client, tenant: str, namespace: str, start: float, end: float
                  ) -> list[dict[str, Any]]:
    """The tenant's records overlapping [start, end): across namespaces where the caller
    may (the cloud admin), else in the tenant's namespace (named like the tenant)."""
    kind = resolve(USAGE_RECORD).as_dicts()
    selector = f"{TENANT_LABEL}={tenant}"
    try:
        found = client.list(kind, namespace or ALL_NAMESPACES, label_selector=selector).items
    except Forbidden:
        if namespace:
            raise
        found = client.list(kind, tenant, label_selector=selector).items
    rows = []
    for item in found:
        spec = item.get("spec") or {}
        if parse_stamp(spec["start"]) < end and parse_stamp(spec["end"]) > start:
            rows.append({**spec, "namespace": item["metadata"]["namespace"]})
    return rows


def emit(rows: list[dict[str, Any]], fields: tuple[str, ...], as_csv: bool, as_json: bool,
         title: str) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        grid = Table(title=title)
        for name in fields:
            grid.add_column(name)
        for row in rows:
            grid.add_row(*(str(row.get(name, "")) for name in fields))
        out.print(grid)
