"""Benchmark ``console`` (issue 17, item 6): the web console in a real browser.

Debian's chromium, headless, driven by playwright-core (``bench/browser/measure.mjs``), against
a real ``scs serve`` (embedded SQLite store, controllers external as in the API benchmarks)
serving a console built from the current sources. Measured in the page:

- **first load** of a Volume list (20 rows) on localhost, cold cache (a fresh browser
  profile) and warm (a new tab of the same profile): navigation start to the first table
  row in the DOM, and the bytes transferred by type (JavaScript, CSS; gzip);
- a list of ``objects`` Volumes in one namespace: time to first rows, then scrolling all of
  it one screenful per animation frame (frame times from requestAnimationFrame, long tasks
  from PerformanceObserver);
- **watch updates under load**: ``rate`` status changes per second for ``seconds`` (every
  tenth to a row on screen, the rest anywhere in the list) while the list is open: long
  tasks and frame times meanwhile, and write-to-row-updated latency of the on-screen rows;
- the **bundle-size budget** (:data:`BUDGET`, also a unit test of the build output).

A signed-in session is simulated by putting the bootstrap admin's token into the tab's
sessionStorage before the page loads (where the token login keeps it), so "first load" is
what a signed-in user's reload or opened link costs: HTML, JS, CSS, config, discovery,
SelfSubjectReview, access reviews, namespaces and the list.

Screenshots for docs/console.md (not a measurement)::

    .venv/bin/python -m bench.console --screenshots docs/images
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import NAMESPACES, REPO, Conn, connect, percentile, start_server, stop_server

CONSOLE = REPO / "console"
HERE = Path(__file__).resolve().parent / "browser"
NODE_TESTS = REPO / "tests" / "console"
CHROMIUM = "/usr/bin/chromium"
VOLUMES = "/apis/iaas.scs.community/v1alpha1/namespaces/{ns}/volumes"
SMALL, BIG = "first-load", "big-list"
PROBES = 12
"""On-screen rows that get every tenth write (the page shows about 16)."""


@dataclass(frozen=True)
class Budget:
    """What the built console must stay under (gzip -9 bytes, as the server sends it)."""

    first_load_gz: int = 120_000
    """JavaScript and CSS that index.html loads (the entry chunk, its CSS and preloads)."""
    total_gz: int = 250_000
    """Everything under assets/ (lazy chunks too: OIDC client, YAML, task pages)."""


BUDGET = Budget()


def bundle_sizes(dist: Path) -> dict[str, int]:
    """Raw and gzip sizes of a built console: what index.html loads first, and all assets."""
    index = (dist / "index.html").read_text()
    first = sorted(set(re.findall(r'(?:src|href)="/console/(assets/[^"]+\.(?:js|css))"', index)))
    sizes = {"first_load_raw": 0, "first_load_gz": 0, "first_load_js_gz": 0,
             "first_load_css_gz": 0, "total_raw": 0, "total_gz": 0, "files": 0}
    for path in sorted((dist / "assets").iterdir()):
        body = path.read_bytes()
        packed = len(gzip.compress(body, 9, mtime=0))
        sizes["total_raw"] += len(body)
        sizes["total_gz"] += packed
        sizes["files"] += 1
        if f"assets/{path.name}" in first:
            sizes["first_load_raw"] += len(body)
            sizes["first_load_gz"] += packed
            sizes[f"first_load_{path.suffix[1:]}_gz"] += packed
    return sizes


def _npm(args: list[str], cwd: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed (apt-get install -y nodejs npm)")
    done = subprocess.run([npm, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"npm {' '.join(args)} in {cwd} failed:\n{done.stdout}\n{done.stderr}")


def build(out: Path) -> Path:
    """The console built from the current sources into ``out`` (its own directory, so a
    rebuild of console/dist by someone else during the run changes nothing measured)."""
    if not (CONSOLE / "node_modules" / ".package-lock.json").exists():
        _npm(["ci", "--no-audit", "--no-fund", "--loglevel=error"], CONSOLE)
    if not (NODE_TESTS / "node_modules" / "playwright-core").exists():
        _npm(["ci", "--no-audit", "--no-fund", "--loglevel=error"], NODE_TESTS)
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    _npm(["exec", "--", "vite", "build", "--outDir", str(out), "--emptyOutDir",
          "--logLevel", "error"], CONSOLE)
    return out


def spki_pin(cert: Path) -> str:
    """The certificate's public key hash for chromium's --ignore-certificate-errors-spki-list:
    the browser then trusts the test CA's server certificate as valid, so responses are
    cached as usual (Chromium does not cache what it fetched past a certificate error,
    which is what Playwright's ignoreHTTPSErrors would be, and the warm numbers would lie)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def volume(name: str) -> dict[str, Any]:
    return {"apiVersion": "iaas.scs.community/v1alpha1", "kind": "Volume",
            "metadata": {"name": name}, "spec": {"sizeGiB": 10}}


async def _create(conns: list[Conn], ns: str, names: list[str]) -> None:
    """POST the Volumes over all connections at once (a few seconds for 10,000)."""
    async def worker(conn: Conn, mine: list[str]) -> None:
        for name in mine:
            await conn.json("POST", VOLUMES.format(ns=ns), volume(name))
    await asyncio.gather(*(worker(c, names[i::len(conns)]) for i, c in enumerate(conns)))


def _merge_patch(conn: Conn, path: str, body: dict[str, Any]) -> bytes:
    return conn.build("PATCH", path, json.dumps(body).encode(),
                      content_type="application/merge-patch+json")


async def _write_load(conns: list[Conn], names: list[str], probes: list[str], rate: float,
                      seconds: float) -> list[dict[str, Any]]:
    """``rate`` status writes per second for ``seconds``, paced by a schedule (a write that
    falls behind goes out late, and the achieved rate says so). Every tenth write goes to an
    on-screen row (``probes``), with a value the page can be seen to show."""
    total = int(rate * seconds)
    rng = random.Random(17)  # noqa: S311 - picks rows to change, not a secret
    others = [n for n in names if n not in set(probes)]
    plan = [(i, probes[(i // 10) % len(probes)] if i % 10 == 0 else rng.choice(others))
            for i in range(total)]
    writes: list[dict[str, Any]] = []
    start = time.monotonic()

    async def worker(conn: Conn, mine: list[tuple[int, str]]) -> None:
        for i, name in mine:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.time() * 1000
            status, body = await conn.send_raw(_merge_patch(
                conn, f"{VOLUMES.format(ns=BIG)}/{name}/status",
                {"status": {"attachedTo": f"w{i}"}}))
            if status != 200:
                raise RuntimeError(f"status write {name}: HTTP {status}: {body[:300]!r}")
            writes.append({"i": i, "name": name, "sent_ms": sent, "acked_ms": time.time() * 1000})
    await asyncio.gather(*(worker(c, plan[k::len(conns)]) for k, c in enumerate(conns)))
    return writes


def _stats(values: list[float]) -> dict[str, float]:
    """count, p50, p99 and max of milliseconds measured in the page."""
    return {"count": len(values), "p50": round(percentile(values, 50), 1),
            "p99": round(percentile(values, 99), 1), "max": round(max(values, default=0), 1)}


async def _populate_lists(server: Any, objects: int) -> tuple[list[str], float]:
    """20 Volumes for the first load, ``objects`` for the big list; their names and the
    seconds the big one took."""
    conns = [await connect(server) for _ in range(8)]
    try:
        for ns in (SMALL, BIG):
            await conns[0].json("POST", NAMESPACES, {"metadata": {"name": ns}})
        await _create(conns, SMALL, [f"vol-{i:02d}" for i in range(20)])
        names = [f"vol-{i:05d}" for i in range(objects)]
        began = time.monotonic()
        await _create(conns, BIG, names)
        return names, time.monotonic() - began
    finally:
        for conn in conns:
            conn.close()


async def _measure(server: Any, objects: int, rate: float, seconds: float, runs: int,
                   work: Path) -> dict[str, Any]:
    """Runs measure.mjs and, when it says the big list is on screen and watched, the write
    load; its result with the writes made."""
    names, load_s = await _populate_lists(server, objects)
    conns: list[Conn] = []
    params = {"baseUrl": server.url, "token": server.token, "chromium": CHROMIUM,
              "small": SMALL, "big": BIG, "runs": runs,
              "spki": spki_pin(server.data_dir / "tls" / "server.crt")}
    node = await asyncio.create_subprocess_exec(
        "node", str(HERE / "measure.mjs"), json.dumps(params), cwd=HERE,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=(work / "node.log").open("wb"), limit=1 << 26)
    assert node.stdin is not None and node.stdout is not None
    writes: list[dict[str, Any]] = []
    probes: list[str] = []
    result: dict[str, Any] = {}
    try:
        while True:
            line = await asyncio.wait_for(node.stdout.readline(), 900)
            if not line:
                raise RuntimeError(f"the browser script ended early (see {work}/node.log)")
            message = json.loads(line)
            if message.get("phase") == "watch-ready":
                probes = [n for n in message["visible"] if n in set(names)][:PROBES]
                if not probes:
                    raise RuntimeError(f"no rows on screen to watch: {message}")
                node.stdin.write(b"go\n")
                await node.stdin.drain()
            elif message.get("phase") == "watching":
                conns = [await connect(server) for _ in range(8)]
                writes = await _write_load(conns, names, probes, rate, seconds)
                await asyncio.sleep(3)  # grace: the page catches up, then is asked
                node.stdin.write(b"stop\n")
                await node.stdin.drain()
            else:
                result = message
                break
    finally:
        if node.returncode is None:
            try:
                await asyncio.wait_for(node.wait(), 30)
            except TimeoutError:
                node.kill()
                await node.wait()
        for conn in conns:
            conn.close()
    if not result.get("ok"):
        raise RuntimeError(f"browser: {result.get('error')}\nerrors: {result.get('errors')}")
    result.update(load_seconds=round(load_s, 1), probes=probes, writes=writes)
    return result


def _watch_summary(result: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    watch, writes = result["watch"], result["writes"]
    by_value = {f"w{w['i']}": w for w in writes}
    probe_writes = [w for w in writes if w["name"] in set(result["probes"])]
    shown = [watch["seen"][f"w{w['i']}"] - w["sent_ms"] for w in probe_writes
             if f"w{w['i']}" in watch["seen"]]
    last: dict[str, int] = {}
    for w in sorted(writes, key=lambda w: w["i"]):
        last[w["name"]] = w["i"]
    written = [name for name in result["probes"] if name in last]
    current = sum(1 for name in written if watch["cells"].get(name) == f"w{last[name]}")
    caught_up = [watch["seen"][f"w{i}"] - by_value[f"w{i}"]["sent_ms"]
                 for name, i in last.items() if name in result["probes"]
                 and f"w{i}" in watch["seen"]]
    span = (max(w["sent_ms"] for w in writes) - min(w["sent_ms"] for w in writes)) / 1000
    return {"writes": len(writes), "rate": round(len(writes) / span, 1) if span else 0,
            "target_rate": rate, "seconds": seconds, "probe_writes": len(probe_writes),
            "probe_values_shown": len(shown), "latency_ms": _stats(shown),
            "last_value_latency_ms": _stats(caught_up),
            "probes_current": current, "probes": len(written),
            "longtasks": _stats([d for _, d in watch["longtasks"]]),
            "frames_ms": _stats(watch["frames"])}


def bench_console(objects: int, rate: float, seconds: float, runs: int, report: Any,
                  work: Path) -> None:
    """The benchmark (see the module docstring): build, serve, measure in chromium, report."""
    dist = build(work / "dist")
    sizes = bundle_sizes(dist)
    server = start_server(config=f"controllers: external\nconsole: {{distDir: '{dist}'}}\n")
    try:
        result = asyncio.run(_measure(server, objects, rate, seconds, runs, work))
    finally:
        stop_server(server)
    scroll = result["scroll"]
    details = {"bundle": sizes, "budget": BUDGET.__dict__, "cold": result["cold"],
               "warm": result["warm"], "big": result["big"],
               "load_seconds": result["load_seconds"],
               "scroll": {**{k: v for k, v in scroll.items() if k != "deltas"},
                          "frames_ms": _stats(scroll["deltas"])},
               "wheel": {**{k: v for k, v in result["wheel"].items() if k != "deltas"},
                         "frames_ms": _stats(result["wheel"]["deltas"])},
               "watch": _watch_summary(result, rate, seconds), "page_errors": result["errors"]}
    report.details["console"] = details
    _report(report, objects, rate, sizes, result, details)


def _report(report: Any, objects: int, rate: float, sizes: dict[str, int],
            result: dict[str, Any], details: dict[str, Any]) -> None:
    """The table rows, with the targets of issue 17 item 6 where it names one."""
    cold = [r["firstRowMs"] for r in result["cold"]]
    warm = [r["firstRowMs"] for r in result["warm"]]
    scroll, watch, big = result["scroll"], details["watch"], result["big"]
    label = "console"
    report.add(label, "bundle: first-load JS+CSS kB gzip", round(sizes["first_load_gz"] / 1000, 1),
               target=f"<= {BUDGET.first_load_gz // 1000} kB",
               met=sizes["first_load_gz"] <= BUDGET.first_load_gz)
    report.add(label, "bundle: all assets kB gzip", round(sizes["total_gz"] / 1000, 1),
               target=f"<= {BUDGET.total_gz // 1000} kB",
               met=sizes["total_gz"] <= BUDGET.total_gz)
    report.add(label, "first load, cold cache: to list rows ms (median)",
               round(percentile(cold, 50), 1), target="< 1000 ms",
               met=percentile(cold, 50) < 1000)
    report.add(label, "first load, cold cache: worst of runs ms", round(max(cold), 1))
    report.add(label, "first load, warm cache: to list rows ms (median)",
               round(percentile(warm, 50), 1), target="< 1000 ms",
               met=percentile(warm, 50) < 1000)
    for name in ("cold", "warm"):
        measured = result[name][0]["bytes"]
        js, css = measured.get("js", {}), measured.get("css", {})
        report.add(label, f"first load, {name}: JS+CSS kB transferred "
                   f"({js.get('requests', 0) + css.get('requests', 0)} files)",
                   round((js.get("transfer", 0) + css.get("transfer", 0)) / 1000, 1))
    report.add(label, f"{objects:,} rows: first rows ms", round(big["firstRowMs"], 1))
    listed = next((a for a in big.get("slowestApi", []) if a["path"].endswith("/volumes")), None)
    if listed:  # how much of it was the list request (server and transfer), how much the page
        report.add(label, f"{objects:,} rows: of which the Table list request ms "
                   f"({listed['bytes'] / 1e6:.1f} MB)", listed["endMs"] - listed["startMs"])
        report.add(label, f"{objects:,} rows: of which the page after the list arrived ms "
                   "(parse, sort, render)", round(big["firstRowMs"] - listed["endMs"], 1))
    wheel = result["wheel"]
    report.add(label, f"{objects:,} rows: wheel pace (100 px/frame), frame p99 ms",
               details["wheel"]["frames_ms"]["p99"])
    report.add(label, f"{objects:,} rows: wheel pace, longest task ms",
               round(max((d for _, d in wheel["longtasks"]), default=0), 1),
               target="<= 100 ms", met=max((d for _, d in wheel["longtasks"]), default=0) <= 100)
    report.add(label, f"{objects:,} rows: scroll all, one screenful/frame, frame p99 ms",
               details["scroll"]["frames_ms"]["p99"])
    report.add(label, f"{objects:,} rows: scroll all, longest task ms",
               round(max((d for _, d in scroll["longtasks"]), default=0), 1),
               target="<= 100 ms",
               met=max((d for _, d in scroll["longtasks"]), default=0) <= 100)
    report.add(label, f"{objects:,} rows: scrolled to the last row", scroll["lastRow"],
               target=f"vol-{objects - 1:05d}", met=scroll["lastRow"] == f"vol-{objects - 1:05d}")
    report.add(label, f"watch {rate:g}/s: write rate achieved", watch["rate"])
    report.add(label, f"watch {rate:g}/s: longest task ms", watch["longtasks"]["max"],
               target="<= 100 ms", met=watch["longtasks"]["max"] <= 100)
    report.add(label, f"watch {rate:g}/s: frame p99 ms", watch["frames_ms"]["p99"])
    report.add(label, f"watch {rate:g}/s: write to row shown p50 ms", watch["latency_ms"]["p50"])
    report.add(label, f"watch {rate:g}/s: write to row shown p99 ms", watch["latency_ms"]["p99"],
               target="<= 1000 ms", met=0 < watch["latency_ms"]["p99"] <= 1000)
    report.add(label, f"watch {rate:g}/s: on-screen rows showing their last write",
               f"{watch['probes_current']}/{watch['probes']}",
               target="all", met=watch["probes_current"] == watch["probes"])


# -- screenshots for docs/console.md ----------------------------------------------------------
TENANCY = "/apis/tenancy.scs.community/v1alpha1"
IAAS = "/apis/iaas.scs.community/v1alpha1/namespaces/acme"
KAAS = "/apis/kaas.scs.community/v1alpha1/namespaces/acme"
STATUS = "/apis/status.scs.community/v1alpha1"


def _ready(http: Any, path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conditions = http.get(path).json().get("status", {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return True
        time.sleep(0.3)
    return False


def _post(http: Any, path: str, body: dict[str, Any]) -> None:
    response = http.post(path, json=body)
    if response.status_code not in (200, 201, 409):
        raise RuntimeError(f"POST {path}: HTTP {response.status_code}: {response.text[:300]}")


def _populate(http: Any) -> str:
    """A tenant (acme) with a Server, a Cluster and a status incident to show; returns the
    cluster's name, or "" when it did not become Ready in time (its page is then skipped)."""
    v1 = "iaas.scs.community/v1alpha1"
    _post(http, f"{TENANCY}/tenants", {
        "apiVersion": "tenancy.scs.community/v1alpha1", "kind": "Tenant",
        "metadata": {"name": "acme"},
        "spec": {"displayName": "Acme", "contact": "ops@acme.example",
                 "admins": ["alice@acme.example"],
                 "quotas": {"namespaces": 5, "instances": 10, "cores": 32, "ramMiB": 65536}}})
    if not _ready(http, f"{TENANCY}/tenants/acme", 90):
        raise RuntimeError("tenant acme did not become Ready")
    _post(http, f"{IAAS}/networks", {"apiVersion": v1, "kind": "Network",
                                     "metadata": {"name": "web"}, "spec": {}})
    _post(http, f"{IAAS}/subnets", {"apiVersion": v1, "kind": "Subnet",
                                    "metadata": {"name": "web"},
                                    "spec": {"networkRef": {"name": "web"},
                                             "cidr": "10.0.0.0/24"}})
    for name in ("web-1", "web-2", "db-1"):
        _post(http, f"{IAAS}/servers", {
            "apiVersion": v1, "kind": "Server",
            "metadata": {"name": name, "labels": {"tier": name.split("-")[0]}},
            "spec": {"flavor": "SCS-2V-4", "image": "ubuntu-24.04",
                     "networks": [{"name": "web"}]}})
    _post(http, f"{KAAS}/clusters", {
        "apiVersion": "kaas.scs.community/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "demo"},
        "spec": {"kubernetesVersion": "1.33",
                 "nodePools": [{"name": "general", "flavor": "SCS-2V-4", "replicas": 2}]}})
    _post(http, f"{STATUS}/components", {
        "apiVersion": "status.scs.community/v1alpha1", "kind": "Component",
        "metadata": {"name": "object-storage"},
        "spec": {"displayName": "Object storage", "labels": {"region": "region-1"}}})
    _post(http, f"{STATUS}/impacttypes", {"apiVersion": "status.scs.community/v1alpha1",
                                          "kind": "ImpactType", "metadata": {"name": "degraded"},
                                          "spec": {"displayName": "Degraded"}})
    _post(http, f"{STATUS}/severities", {"apiVersion": "status.scs.community/v1alpha1",
                                         "kind": "Severity", "metadata": {"name": "minor"},
                                         "spec": {"value": 50}})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _post(http, f"{STATUS}/incidents", {
        "apiVersion": "status.scs.community/v1alpha1", "kind": "Incident",
        "metadata": {"name": "slow-uploads"},
        "spec": {"displayName": "Slow uploads", "description": "Uploads take longer than usual.",
                 "beganAt": now, "endedAt": None,
                 "affects": [{"component": "object-storage", "impactType": "degraded",
                              "severity": 50}],
                 "updates": [{"order": 0, "displayName": "Investigating", "createdAt": now}]}})
    if not _ready(http, f"{IAAS}/servers/web-1", 90):
        raise RuntimeError("server web-1 did not become Ready")
    return "demo" if _ready(http, f"{KAAS}/clusters/demo", 90) else ""


def take_screenshots(out: Path) -> int:
    """The user guide's screenshots: a server with the sandbox providers (fast), a tenant
    with objects, and bench/browser/screenshots.mjs signed in with the admin token."""
    import ssl
    import tempfile

    import httpx

    from tests.server import ScsServer

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scs-console-shots-"))
    dist = build(work / "dist")
    (work / "data").mkdir()
    server = ScsServer(data_dir=work / "data", config={
        "providers": {"iaas": {"type": "sandbox", "speed": 5},
                      "kaas": {"type": "sandbox", "speed": 5}},
        "console": {"distDir": str(dist)}})
    try:
        server.start(timeout=120)
        with httpx.Client(base_url=server.url, timeout=30,
                          verify=ssl.create_default_context(cafile=str(server.ca_file)),
                          headers={"Authorization": f"Bearer {server.token}"}) as http:
            cluster = _populate(http)
        params = {"baseUrl": server.url, "token": server.token, "chromium": CHROMIUM,
                  "spki": spki_pin(server.data_dir / "tls" / "server.crt"), "out": str(out),
                  "namespace": "acme", "tenant": "acme", "server": "web-1",
                  "cluster": cluster}
        done = subprocess.run(["node", str(HERE / "screenshots.mjs"), json.dumps(params)],
                              cwd=HERE, capture_output=True, text=True, timeout=600,
                              check=False)
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    lines = done.stdout.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {"ok": False, "error": ""}
    shots: list[str] = result.get("shots", [])
    total = sum((out / name).stat().st_size for name in shots)
    print(f"{len(shots)} screenshots, {total / 1e6:.2f} MB in {out}")
    if not result["ok"]:
        print(f"failed: {result['error']}\n{done.stderr[-2000:]}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--screenshots", metavar="DIR", type=Path,
                        help="take the user guide's screenshots into DIR instead")
    args = parser.parse_args(argv)
    if args.screenshots:
        return take_screenshots(args.screenshots)
    from . import run
    return run.main(["--only", "console"])


if __name__ == "__main__":
    sys.exit(main())
