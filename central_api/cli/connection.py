"""How ``scs`` commands reach the Central API: through the Python SDK (docs/sdk.md), once.

Every command that talks to the API runs its work with a :class:`~central_api.client.Client`
opened from the kubeconfig kubectl would use (or ``--kubeconfig``/``--context``), so
credentials (tokens, client certificates, ``scs login``'s exec plugin), TLS, retries and the
server's refusals are handled in one place, the same way for every command. What goes wrong
ends as one line on stderr and exit code 1, never a traceback: the server's message with the
field paths of a 422, a kubeconfig that cannot be used, an API that cannot be reached.

The user agent and field manager name the command (``scs-cluster``), so the audit log and
``managedFields`` tell which command wrote what.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from ..client import ApiError, Client, ClientError, Unauthorized, WaitTimeout, load_kubeconfig
from ..client.resources import KindRef

OK, FAILED, USAGE = 0, 1, 2
err = Console(stderr=True, soft_wrap=True)  # an error line stays one line

KubeconfigOption = Annotated[Path | None, typer.Option(
    help="Kubeconfig (default: $KUBECONFIG or ~/.kube/config).")]
ContextOption = Annotated[str, typer.Option(help="Kubeconfig context (default: current).")]

Obj = dict[str, Any]
Verdict = tuple[bool, str]
"""(done, message): True when the wait succeeded, False when it cannot succeed any more."""


def connect(kubeconfig: Path | None, context: str, command: str) -> Client:
    """An SDK client as the kubeconfig's identity, naming ``command`` to the server."""
    config = load_kubeconfig(kubeconfig, context)
    config.user_agent = config.field_manager = command
    return Client(config)


def run(kubeconfig: Path | None, context: str, command: str,
        work: Callable[[Client], int]) -> NoReturn:
    """Exit with the code of ``work`` run with a client; what the SDK raises is one line."""
    try:
        with connect(kubeconfig, context, command) as client:
            code = work(client)
    except (ApiError, ClientError, httpx.HTTPError) as exc:
        code = fail(exc)
    raise typer.Exit(code)


def failure(exc: Exception, doing: str = "") -> str:
    """One line for what went wrong; a refusal's field paths are in it (the server's
    message names them; causes it leaves out are appended)."""
    if isinstance(exc, ApiError):
        text = exc.message
        extra = [f"{c.field}: {c.message}" for c in exc.causes
                 if c.field and c.field not in text]
        if extra:
            text = "; ".join([text, *extra])
        if isinstance(exc, Unauthorized):
            text += " (is the kubeconfig's credential still valid? scs login renews it)"
    elif isinstance(exc, httpx.HTTPError):
        text = f"cannot reach the Central API: {exc or type(exc).__name__}"
    else:
        text = str(exc) or type(exc).__name__
    return f"{doing}: {text}" if doing else text


def fail(exc: Exception, doing: str = "") -> int:
    err.print(f"[red]{escape(failure(exc, doing))}[/red]")
    return FAILED


def follow(client: Client, kind: KindRef, name: str, namespace: str, timeout: float,
           seen: Callable[[Obj | None], Verdict | None]) -> Verdict | None:
    """Watch the object (None while it does not exist) and show each state to ``seen``
    until it gives a verdict; None when ``timeout`` seconds passed first (a state seen after
    the deadline does not count, so a short timeout means what it says)."""
    deadline = time.monotonic() + timeout
    decided: list[Verdict] = []

    def decide(obj: Obj | None) -> bool:
        verdict = seen(obj)
        if verdict is not None and time.monotonic() <= deadline:
            decided.append(verdict)
        return verdict is not None or time.monotonic() > deadline

    try:
        client.wait_for(kind, name, decide, namespace, timeout=timeout)
    except WaitTimeout:
        return None
    return decided[0] if decided else None
