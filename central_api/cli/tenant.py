"""``scs tenant``: onboard a customer with one command and watch it become usable.

``onboard`` creates the Tenant through the API (the SDK with the current kubeconfig, like
kubectl; see connection.py) and then watches its conditions — one per onboarding step —
until ``Ready``, so the operator sees which step is running or why it is stuck instead of a
silent wait. ``show`` prints the same conditions and the Keystone IDs.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ..client import AlreadyExists, Client, is_ready
from ..client.resources import ApiResource
from ..controllers.tenants import STEPS
from ..kinds.tenancy import TENANT, TenantQuotas
from .connection import ContextOption, KubeconfigOption, follow, run

tenant_app = typer.Typer(help="Onboard and inspect tenants (customers).",
                         no_args_is_help=True)
out = Console()
err = Console(stderr=True)
TENANTS = ApiResource.of(TENANT).as_dicts()
AGENT = "scs-tenant"


# -- commands ----------------------------------------------------------------------------------
@tenant_app.command("onboard")
def onboard(
    name: Annotated[str | None, typer.Argument(help="Tenant name (a DNS label).")] = None,
    display_name: Annotated[str | None, typer.Option(help="Customer name.")] = None,
    admin: Annotated[list[str] | None, typer.Option(
        help="Admin user name or e-mail (repeatable).")] = None,
    contact: Annotated[str | None, typer.Option(help="Contact e-mail.")] = None,
    quota: Annotated[list[str] | None, typer.Option(
        help="Quota as KEY=N, e.g. cores=8 (repeatable): "
             f"{', '.join(TenantQuotas.model_fields)}.")] = None,
    idp_issuer: Annotated[str, typer.Option(
        help="The customer's own OIDC issuer (https); its users log in as <tenant>:<name> "
             "and the admins are then its user names.")] = "",
    idp_client_id: Annotated[str, typer.Option(
        help="OAuth client ID registered at that IdP for SCS.")] = "",
    wait: Annotated[bool, typer.Option(help="Follow the onboarding until Ready.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Ready.")] = 300.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = "",
) -> None:
    """Create a Tenant and follow its onboarding until Ready (prompts for what is missing)."""
    try:
        tenant = tenant_object(
            name or _ask("Tenant name"), display_name or _ask("Display name"),
            admin or _ask_list("Admins (comma-separated user names or e-mails)"),
            contact if contact is not None else _ask("Contact e-mail", default=""),
            parse_quotas(quota or []), federation(idp_issuer, idp_client_id))
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    run(kubeconfig, context, AGENT, lambda client: _onboard(client, tenant, wait, timeout))


@tenant_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = "",
) -> None:
    """Print a tenant's onboarding conditions and its Keystone IDs."""
    run(kubeconfig, context, AGENT, lambda client: _show(client, name))


# -- building the Tenant -----------------------------------------------------------------------
def tenant_object(name: str, display_name: str, admins: list[str], contact: str,
                  quotas: dict[str, int],
                  idp: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"displayName": display_name, "admins": admins}
    if contact:
        spec["contact"] = contact
    if quotas:
        spec["quotas"] = quotas
    if idp:
        spec["federation"] = idp
    return {"apiVersion": TENANT.api_version, "kind": TENANT.kind, "metadata": {"name": name},
            "spec": spec}


def parse_quotas(items: list[str]) -> dict[str, int]:
    """``["cores=8", "ramMiB=16384"]`` → dict; unknown keys and non-numbers are errors."""
    quotas: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in TenantQuotas.model_fields or not value.isdigit():
            raise ValueError(f"--quota {item!r}: expected KEY=N with KEY one of "
                             f"{', '.join(TenantQuotas.model_fields)}")
        quotas[key] = int(value)
    return quotas


def federation(issuer: str, client_id: str) -> dict[str, str] | None:
    """``spec.federation`` from the two options: both or neither (the server checks the
    rest, e.g. that the issuer is https)."""
    if bool(issuer) != bool(client_id):
        raise ValueError("--idp-issuer and --idp-client-id go together")
    return {"issuerURL": issuer, "clientID": client_id} if issuer else None


def _interactive() -> bool:
    return sys.stdin.isatty()


def _ask(label: str, default: str | None = None) -> str:
    """Prompt on a terminal; without one a missing value is an error (scripts must say it)."""
    if not _interactive():
        if default is not None:
            return default
        raise ValueError(f"missing {label.lower()} (pass it as an option; stdin is no "
                         "terminal)")
    return str(typer.prompt(label, default=default))


def _ask_list(label: str) -> list[str]:
    return [part.strip() for part in _ask(label).split(",") if part.strip()]


# -- talking to the API ------------------------------------------------------------------------
def _onboard(client: Client, tenant: dict[str, Any], wait: bool, timeout: float) -> int:
    name = tenant["metadata"]["name"]
    try:
        client.create(tenant, kind=TENANTS)
        out.print(f"tenant {name} created")
    except AlreadyExists:
        out.print(f"tenant {name} exists; following its onboarding")
    return follow_onboarding(client, name, timeout) if wait else 0


def _show(client: Client, name: str) -> int:
    tenant = client.find(TENANTS, name)
    if tenant is None:
        err.print(f"[red]tenant {escape(name)} not found[/red]")
        return 1
    out.print(render(tenant))
    return 0


def follow_onboarding(client: Client, name: str, timeout: float) -> int:
    """Redraw the conditions at each change until Ready (0), or until the timeout (1, with
    the last view kept)."""
    def seen(tenant: dict[str, Any] | None) -> tuple[bool, str] | None:
        if tenant is None:
            return False, f"tenant {name} disappeared"
        live.update(render(tenant), refresh=True)
        return (True, "Ready") if is_ready(tenant) else None

    with Live(console=out, auto_refresh=False, transient=False) as live:
        verdict = follow(client, TENANTS, name, "", timeout, seen)
    if verdict is None:
        err.print(f"[yellow]tenant {escape(name)} not Ready after {timeout:g}s[/yellow]")
        return 1
    done, message = verdict
    if not done:
        err.print(f"[red]{escape(message)}[/red]")
    return 0 if done else 1


# -- display -----------------------------------------------------------------------------------
MARKS = {"True": "[green]✓[/green]", "False": "[red]✗[/red]", "Unknown": "[yellow]…[/yellow]"}


def render(tenant: dict[str, Any]) -> Table:
    status = tenant.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    table = Table(title=f"Tenant {tenant['metadata']['name']} "
                        f"({(tenant.get('spec') or {}).get('displayName', '')})",
                  caption=_caption(status), caption_justify="left")
    table.add_column("")
    table.add_column("Step")
    table.add_column("Reason")
    table.add_column("Message", overflow="fold")
    extra = [t for t in conditions if t not in (*STEPS, "Ready")]
    for type_ in (*STEPS, *extra, "Ready"):
        found = conditions.get(type_)
        mark = MARKS.get(found["status"], "?") if found else "[dim]·[/dim]"
        table.add_row(mark, type_, (found or {}).get("reason", "pending"),
                      (found or {}).get("message", ""))
    return table


def _caption(status: dict[str, Any]) -> str:
    identity = status.get("identity") or "-"
    if "simulated" in identity:
        identity += " — SIMULATED: these IDs exist only in the Central API"
    return (f"identity: {identity}\ndomain: {status.get('domainID') or '-'}   project: "
            f"{status.get('projectID') or '-'}   namespaces: "
            f"{', '.join(status.get('namespaces') or []) or '-'}")

