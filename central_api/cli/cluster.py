"""``scs cluster``: Kubernetes clusters (KaaS) from the command line, through the API.

Every command talks to the Central API through the SDK with the current kubeconfig, like
kubectl (and ``scs tenant``; see connection.py). ``create``, ``upgrade`` and ``delete`` watch
the cluster until it is Ready (or gone) unless ``--no-wait``: on a terminal a live table of its
conditions, otherwise one line per change, so a CI log shows which phase took how long.
``kubeconfig`` writes the cluster's kubeconfig: by default one that signs in with the caller's
own OIDC login (no secret inside), with ``--admin`` one holding a short-lived admin
certificate.

Exit codes: 0 done, 1 refused or failed (one line: the server's message with the fields at
fault), 2 wrong usage, 3 still not done when ``--timeout`` ran out.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from ..client import ALL_NAMESPACES, ApiError, Client, NotFound
from ..client.resources import ApiResource
from ..kinds.kaas import CLUSTER
from ..kinds.kaas_access import ADMIN_KUBECONFIG, KUBECONFIG
from .connection import (
    FAILED,
    OK,
    USAGE,
    ContextOption,
    KubeconfigOption,
    Verdict,
    fail,
    follow,
    run,
)
from .tenant import MARKS

cluster_app = typer.Typer(help="Create, follow, reach, upgrade and delete Kubernetes clusters.",
                          no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)
CLUSTERS = ApiResource.of(CLUSTER).as_dicts()
AGENT = "scs-cluster"
TIMED_OUT = 3
CONDITIONS = ("ControlPlaneReady", "NodePoolsReady", "Ready")
TERMINAL_REASONS = frozenset({"InvalidRequest", "BackendError", "NotFound"})
"""Ready=False reasons waiting cannot cure: the backend refused the spec or broke."""
POOL_KEYS = {"name": "name", "flavor": "flavor", "replicas": "replicas", "min": "min",
             "max": "max", "arch": "architecture", "architecture": "architecture",
             "disk": "rootDiskGiB", "rootDiskGiB": "rootDiskGiB"}

NameArgument = Annotated[str, typer.Argument(help="Cluster name.")]
NamespaceOption = Annotated[str, typer.Option(
    "--namespace", "-n", help="Namespace (default: the context's, else default).")]
WaitOption = Annotated[bool, typer.Option(help="Follow the cluster until it is done.")]
TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait with --wait.")]


# -- commands ----------------------------------------------------------------------------------
@cluster_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Cluster name (a DNS label).")],
    version: Annotated[str, typer.Option(help="Kubernetes version, a minor (1.34) or patch "
                                              "(1.34.7) the ClusterProfile offers.")],
    pool: Annotated[list[str] | None, typer.Option(
        help="Node pool (repeatable): name=N,flavor=F and replicas=R or min=A,max=B; "
             "optional arch=arm64, disk=GiB.")] = None,
    control_plane_replicas: Annotated[int, typer.Option(help="1, or 3 for HA.")] = 1,
    oidc_issuer: Annotated[str, typer.Option(help="OIDC issuer the cluster trusts "
                                                  "(default: the tenant's IdP).")] = "",
    oidc_client_id: Annotated[str, typer.Option(help="Client ID with --oidc-issuer.")] = "",
    namespace: NamespaceOption = "",
    wait: WaitOption = True,
    timeout: TimeoutOption = 1800.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = "",
) -> None:
    """Create a cluster and follow it until Ready."""
    try:
        spec = cluster_spec(version, pool or [], control_plane_replicas, oidc_issuer,
                            oidc_client_id)
    except ValueError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(USAGE) from None
    run(kubeconfig, context, AGENT,
        lambda client: _create(client, name, namespace, spec, wait, timeout))


@cluster_app.command("list")
def list_(
    namespace: NamespaceOption = "",
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A",
                                                 help="Clusters of every namespace.")] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = "",
) -> None:
    """List clusters with their version, readiness, phase and nodes."""
    run(kubeconfig, context, AGENT, lambda client: _list(
        client, ALL_NAMESPACES if all_namespaces else in_namespace(client, namespace)))


@cluster_app.command("show")
def show(
    name: NameArgument,
    namespace: NamespaceOption = "",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = "",
) -> None:
    """Show a cluster's conditions, node pools and endpoint."""
    run(kubeconfig, context, AGENT, lambda client: _show(client, namespace, name))


@cluster_app.command("kubeconfig")
def kubeconfig_(
    name: NameArgument,
    admin: Annotated[bool, typer.Option(
        "--admin", help="A short-lived cluster-admin certificate instead of your OIDC login "
                        "(tenant admins only).")] = False,
    expiration: Annotated[str, typer.Option(
        help="With --admin: how long it is valid, e.g. 1h, 30m, 3600 (default: the "
             "operator's).")] = "",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file (mode 0600) instead of printing.")] = None,
    namespace: NamespaceOption = "",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = "",
) -> None:
    """Print (or write) a kubeconfig of the cluster."""
    try:
        seconds = parse_duration(expiration) if expiration else None
    except ValueError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(USAGE) from None
    if seconds is not None and not admin:
        err.print("[red]--expiration goes with --admin (an OIDC kubeconfig holds no "
                  "credential that could expire)[/red]")
        raise typer.Exit(USAGE)
    run(kubeconfig, context, AGENT,
        lambda client: _kubeconfig(client, namespace, name, admin, seconds, output))


@cluster_app.command("upgrade")
def upgrade(
    name: NameArgument,
    version: Annotated[str, typer.Option(help="The Kubernetes version to go to (one minor "
                                              "at a time).")],
    namespace: NamespaceOption = "",
    wait: WaitOption = True,
    timeout: TimeoutOption = 1800.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = "",
) -> None:
    """Change the cluster's Kubernetes version and follow the upgrade until Ready."""
    run(kubeconfig, context, AGENT,
        lambda client: _upgrade(client, namespace, name, version, wait, timeout))


@cluster_app.command("delete")
def delete(
    name: NameArgument,
    namespace: NamespaceOption = "",
    wait: WaitOption = True,
    timeout: TimeoutOption = 1800.0,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = "",
) -> None:
    """Delete a cluster and follow until the backend has removed it."""
    run(kubeconfig, context, AGENT,
        lambda client: _delete(client, namespace, name, wait, timeout))


# -- parsing -----------------------------------------------------------------------------------
def cluster_spec(version: str, pools: list[str], control_plane_replicas: int, issuer: str,
                 client_id: str) -> dict[str, Any]:
    """The Cluster spec the options describe; the server checks the rest (with field paths)."""
    spec: dict[str, Any] = {"kubernetesVersion": version,
                            "controlPlane": {"replicas": control_plane_replicas},
                            "nodePools": [parse_pool(p) for p in pools]}
    if bool(issuer) != bool(client_id):
        raise ValueError("--oidc-issuer and --oidc-client-id go together")
    if issuer:
        spec["oidc"] = {"issuerURL": issuer, "clientID": client_id}
    return spec


def parse_pool(text: str) -> dict[str, Any]:
    """``name=general,flavor=SCS-4V-8,replicas=3`` or ``...,min=1,max=5`` → a nodePools item."""
    pool: dict[str, Any] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        key, sep, value = item.partition("=")
        field = POOL_KEYS.get(key.strip())
        if not sep or field is None or not value:
            raise ValueError(f"--pool {text!r}: {item!r} is not KEY=VALUE with KEY one of "
                             f"{', '.join(POOL_KEYS)}")
        pool[field] = _pool_value(text, field, value.strip())
    if not pool.get("name") or not pool.get("flavor"):
        raise ValueError(f"--pool {text!r}: name=... and flavor=... are required")
    bounds = {k: pool.pop(k) for k in ("min", "max") if k in pool}
    if bounds:
        pool["autoscaling"] = bounds
    return pool


def _pool_value(text: str, field: str, value: str) -> str | int:
    if field not in ("replicas", "min", "max", "rootDiskGiB"):
        return value
    if not value.isdigit():
        raise ValueError(f"--pool {text!r}: {field} must be a whole number, got {value!r}")
    return int(value)


def parse_duration(text: str) -> int:
    """``1h``, ``30m``, ``1h30m``, ``90s`` or plain seconds → seconds."""
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"--expiration {text!r}: use e.g. 1h, 30m, 1h30m or seconds")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


# -- talking to the API ------------------------------------------------------------------------
def in_namespace(client: Client, namespace: str) -> str:
    """The namespace given, else the kubeconfig context's (as kubectl), else ``default``."""
    return namespace or client.config.namespace


def not_found(namespace: str, name: str) -> int:
    err.print(f"[red]cluster {escape(namespace)}/{escape(name)} not found[/red]")
    return FAILED


def _create(client: Client, name: str, namespace: str, spec: dict[str, Any], wait: bool,
            timeout: float) -> int:
    ns = in_namespace(client, namespace)
    try:
        client.create({"apiVersion": CLUSTER.api_version, "kind": CLUSTER.kind,
                       "metadata": {"name": name, "namespace": ns}, "spec": spec},
                      kind=CLUSTERS)
    except ApiError as exc:
        return fail(exc, f"cluster {name} not created")
    err.print(f"cluster {ns}/{name} created")
    return follow_cluster(client, ns, name, timeout, until_ready) if wait else OK


def _list(client: Client, namespace: str) -> int:
    """``namespace`` ALL_NAMESPACES (empty): every namespace."""
    items = client.list(CLUSTERS, namespace).items
    if not items:
        err.print(f"no clusters in {namespace or 'any namespace'}")
        return OK
    out.print(listing(items, show_namespace=not namespace))
    return OK


def _show(client: Client, namespace: str, name: str) -> int:
    ns = in_namespace(client, namespace)
    found = client.find(CLUSTERS, name, ns)
    if found is None:
        return not_found(ns, name)
    out.print(render(found))
    return OK


def _kubeconfig(client: Client, namespace: str, name: str, admin: bool, seconds: int | None,
                output: Path | None) -> int:
    ns = in_namespace(client, namespace)
    kind = "AdminKubeconfigRequest" if admin else "KubeconfigRequest"
    body: dict[str, Any] = {"apiVersion": CLUSTER.api_version, "kind": kind, "spec": {}}
    if seconds is not None:
        body["spec"]["expirationSeconds"] = seconds
    try:
        answer = client.create_subresource(CLUSTERS, name, ADMIN_KUBECONFIG if admin
                                           else KUBECONFIG, body, ns)
    except ApiError as exc:
        return fail(exc, f"no kubeconfig for cluster {ns}/{name}")
    text = base64.b64decode(answer["status"]["kubeconfig"]).decode()
    if output is None:
        sys.stdout.write(text)
    else:
        write_private(output, text)
        err.print(f"kubeconfig of cluster {ns}/{name} written to {output}")
    if admin:
        _tell_expiry(answer, seconds)
    return OK


def _tell_expiry(answer: dict[str, Any], asked: int | None) -> None:
    granted = (answer.get("spec") or {}).get("expirationSeconds")
    note = f" (shortened to the operator's maximum of {granted} s)" \
        if asked and granted and granted < asked else ""
    err.print(f"the admin certificate expires at "
              f"{answer['status'].get('expirationTimestamp')}{note}; keep it secret")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, also when the file already existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _upgrade(client: Client, namespace: str, name: str, version: str, wait: bool,
             timeout: float) -> int:
    """A merge patch of the version alone: a controller's concurrent status write cannot
    make it conflict, and nothing else of the spec is sent back."""
    return _change(client, namespace, name, lambda ns: client.patch(
        CLUSTERS, name, {"spec": {"kubernetesVersion": version}}, ns),
        f"upgrading to {version}", "not upgraded", until_ready if wait else None, timeout)


def _delete(client: Client, namespace: str, name: str, wait: bool, timeout: float) -> int:
    return _change(client, namespace, name, lambda ns: client.delete(CLUSTERS, name, ns),
                   "deleting", "not deleted", until_gone if wait else None, timeout)


def _change(client: Client, namespace: str, name: str, send: Callable[[str], object],
            doing: str, refused: str, judge: Judge | None, timeout: float) -> int:
    """Send a change of an existing cluster, then follow it until ``judge`` decides (None:
    do not wait)."""
    ns = in_namespace(client, namespace)
    try:
        send(ns)
    except NotFound:
        return not_found(ns, name)
    except ApiError as exc:
        return fail(exc, f"cluster {name} {refused}")
    err.print(f"cluster {ns}/{name}: {doing}")
    return OK if judge is None else follow_cluster(client, ns, name, timeout, judge)


# -- following ---------------------------------------------------------------------------------
Judge = Callable[[dict[str, Any] | None], "Verdict | None"]
"""None: keep waiting; (True, message): done; (False, message): failed."""


def until_ready(cluster: dict[str, Any] | None) -> Verdict | None:
    """Ready for the current generation; a refusal waiting cannot cure ends it early."""
    if cluster is None:
        return False, "the cluster disappeared"
    ready = condition(cluster, "Ready")
    if not ready or ready.get("observedGeneration") != cluster["metadata"].get("generation"):
        return None
    if ready["status"] == "True":
        status = cluster.get("status") or {}
        return True, f"Ready: Kubernetes {status.get('kubernetesVersion')} at " \
                     f"{status.get('apiEndpoint')}"
    if ready.get("reason") in TERMINAL_REASONS:
        return False, f"{ready['reason']}: {ready.get('message', '')}"
    return None


def until_gone(cluster: dict[str, Any] | None) -> Verdict | None:
    return (True, "deleted") if cluster is None else None


def follow_cluster(client: Client, namespace: str, name: str, timeout: float,
                   judge: Judge) -> int:
    """Show the cluster at each change until ``judge`` decides, or until the timeout (last
    view kept)."""
    progress = Progress()

    def seen(cluster: dict[str, Any] | None) -> Verdict | None:
        progress.update(cluster)
        return judge(cluster)

    try:
        verdict = follow(client, CLUSTERS, name, namespace, timeout, seen)
    finally:
        progress.stop()
    who = f"cluster {escape(namespace)}/{escape(name)}"
    if verdict is None:
        err.print(f"[yellow]{who}: not done after {timeout:g}s (it goes on; follow with: "
                  f"scs cluster show {escape(name)})[/yellow]")
        return TIMED_OUT
    done, message = verdict
    err.print(f"{who}: {escape(message)}" if done else f"[red]{who}: {escape(message)}[/red]")
    return OK if done else FAILED


class Progress:
    """A live table on a terminal; elsewhere (CI logs, pipes) one line per change."""

    def __init__(self) -> None:
        self.live = Live(console=out, auto_refresh=False, transient=False) \
            if out.is_terminal else None
        if self.live is not None:
            self.live.start()
        self.last = ""

    def update(self, cluster: dict[str, Any] | None) -> None:
        if self.live is not None:
            if cluster is not None:
                self.live.update(render(cluster), refresh=True)
            return
        line = summary(cluster)
        if line != self.last:
            out.print(escape(line), soft_wrap=True)
            self.last = line

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


# -- display -----------------------------------------------------------------------------------
def condition(cluster: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for found in (cluster.get("status") or {}).get("conditions") or []:
        if found.get("type") == type_:
            return dict(found)
    return None


def summary(cluster: dict[str, Any] | None) -> str:
    """One line: phase, each condition's status and reason, nodes."""
    if cluster is None:
        return "gone"
    status = cluster.get("status") or {}
    marks = []
    for type_ in CONDITIONS:
        found = condition(cluster, type_)
        marks.append(f"{type_}={found['status']}({found.get('reason', '')})" if found
                     else f"{type_}=?")
    pools = ", ".join(f"{p['name']} {p.get('readyReplicas', 0)}/{p.get('desiredReplicas', 0)}"
                      for p in status.get("nodePools") or [])
    deleting = " deleting" if cluster["metadata"].get("deletionTimestamp") else ""
    return (f"{status.get('phase') or 'Pending'}{deleting}  {' '.join(marks)}"
            f"{'  nodes: ' + pools if pools else ''}")


def render(cluster: dict[str, Any]) -> Group:
    """Conditions, then node pools, with version, endpoint and provider in the caption."""
    meta, status = cluster["metadata"], cluster.get("status") or {}
    conditions = Table(title=f"Cluster {meta.get('namespace', '')}/{meta['name']}",
                       caption=_caption(cluster), caption_justify="left")
    for column in ("", "Condition", "Reason", "Message"):
        conditions.add_column(column, overflow="fold")
    known = {c.get("type") for c in status.get("conditions") or []}
    for type_ in (*CONDITIONS, *sorted(t for t in known if t and t not in CONDITIONS)):
        found = condition(cluster, type_)
        mark = MARKS.get(found["status"], "?") if found else "[dim]·[/dim]"
        conditions.add_row(mark, type_, escape((found or {}).get("reason", "pending")),
                           escape((found or {}).get("message", "")))
    pools = Table(title="Node pools")
    for column in ("Pool", "Flavor", "Ready", "Desired"):
        pools.add_column(column)
    flavors = {p["name"]: p.get("flavor", "") for p in cluster["spec"].get("nodePools") or []}
    for p in status.get("nodePools") or []:
        pools.add_row(p["name"], flavors.get(p["name"], ""), str(p.get("readyReplicas", 0)),
                      str(p.get("desiredReplicas", 0)))
    return Group(conditions, pools)


def _caption(cluster: dict[str, Any]) -> str:
    spec, status = cluster["spec"], cluster.get("status") or {}
    running = status.get("kubernetesVersion") or "-"
    provider = status.get("provider") or "-"
    if "simulated" in provider:
        provider += " — SIMULATED: no real cluster exists"
    return escape(f"version: {running} (spec {spec.get('kubernetesVersion')})   phase: "
                  f"{status.get('phase') or '-'}\nendpoint: {status.get('apiEndpoint') or '-'}"
                  f"\nprovider: {provider}   class: {status.get('clusterClass') or '-'}")


def listing(items: list[dict[str, Any]], show_namespace: bool) -> Table:
    table = Table()
    columns = (["Namespace"] if show_namespace else []) + [
        "Name", "Version", "Ready", "Phase", "Nodes", "Endpoint"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for item in items:
        status = item.get("status") or {}
        ready = condition(item, "Ready")
        pools = status.get("nodePools") or []
        nodes = f"{sum(p.get('readyReplicas', 0) for p in pools)}/" \
                f"{sum(p.get('desiredReplicas', 0) for p in pools)}"
        row = ([item["metadata"].get("namespace", "")] if show_namespace else []) + [
            item["metadata"]["name"], status.get("kubernetesVersion") or "-",
            ready["status"] if ready else "-", status.get("phase") or "-", nodes,
            status.get("apiEndpoint") or "-"]
        table.add_row(*(escape(str(v)) for v in row))
    return table
