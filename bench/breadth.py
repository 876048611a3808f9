"""Benchmark ``breadth`` (issue 21, item 6): 500 CRDs installed, discovery and OpenAPI.

One ``scs serve`` (``controllers: external``, as benchmarks 1-4). First every discovery and
OpenAPI endpoint kubectl reads is asked once (so anything built lazily exists), the RSS
taken, and each endpoint timed; then ``crds`` CustomResourceDefinitions are installed
(8 connections) and each waited for until Established, and the same measured again:

- RSS delta per CRD;
- p50/p99 of each endpoint over ``rounds`` requests on one keep-alive connection, sent as
  kubectl sends them (``Accept-Encoding: gzip``; the aggregated discovery and protobuf
  OpenAPI media types), the first request after the installation apart (the one that finds
  nothing cached), and the server's CPU per request;
- the time one more CRD takes to be served once ``crds`` exist: from its POST to a 200 on
  its list, and to its group/version in discovery; then the first request of each endpoint
  (what that one change costs the next client).

The CRDs are realistic in shape: the five upstream CRDs of ``tests/kaas/upstream/`` (Cluster
API, cluster stacks, Gardener: large schemas, several versions) and, for the rest, the
exported SCS kinds (``scs crds``) renamed into 5 kinds per group, every fourth with a second
(served, non-storage) version, their spec padded to 20-100 properties with descriptions,
printer columns, short names and categories.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from .common import REPO, Conn, connect, cpu_seconds, rss_mib, start_server, stop_server, summary

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
UPSTREAM = REPO / "tests" / "kaas" / "upstream"
UPSTREAM_CRDS = ("cluster.x-k8s.io_clusters.yaml", "cluster.x-k8s.io_clusterclasses.yaml",
                 "clusterstack.x-k8s.io_clusterstackreleases.yaml",
                 "shoots.core.gardener.cloud.crd.yaml",
                 "cloudprofiles.core.gardener.cloud.crd.yaml")
CONFIG = "controllers: external\n"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList," \
             "application/json"
PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
KINDS_PER_GROUP = 5
DOMAINS = ("acme.io", "example.com", "corp.internal", "cloud.example.net", "dev.example.org")
INSTALL_CONNECTIONS = 8
SIZES = {False: (500, 30), True: (50, 10)}
"""quick -> (CRDs installed, timed requests per endpoint, at least)."""
MIN_SECONDS, MAX_ROUNDS = 1.0, 2000
"""Cheap endpoints are asked until a second has passed: the CPU clock ticks in 10 ms."""


# -- the CRDs ---------------------------------------------------------------------------------
def crd_set(count: int, seed: int = 21) -> list[dict[str, Any]]:
    """``count`` CRDs: the upstream ones first (when there is room), then synthetic ones."""
    upstream = upstream_crds()[:max(0, count // 50)]
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    templates = _templates()
    synthetic = [synthetic_crd(i, templates[i % len(templates)], rng)
                 for i in range(count - len(upstream))]
    return upstream + synthetic


def upstream_crds() -> list[dict[str, Any]]:
    out = []
    for name in UPSTREAM_CRDS:
        for doc in yaml.safe_load_all((UPSTREAM / name).read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                out.append(doc)
    return out


def _templates() -> list[dict[str, Any]]:
    from central_api.kinds import builtin_kinds
    from central_api.kinds.crd_export import exportable, to_crd

    return [to_crd(rt) for rt in exportable(builtin_kinds())]


def synthetic_crd(i: int, template: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The template renamed into group ``i // KINDS_PER_GROUP``, its spec padded."""
    crd = copy.deepcopy(template)
    spec = crd["spec"]
    group_no = i // KINDS_PER_GROUP
    spec["group"] = f"team{group_no:03d}.{DOMAINS[group_no % len(DOMAINS)]}"
    kind = f"{spec['names']['kind']}{i:03d}"
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": kind.lower() + "s",
             "singular": kind.lower()}
    if i % 3 == 0:
        names["shortNames"] = [f"b{i:03d}"]
    if i % 2 == 0:
        names["categories"] = ["bench", f"team{group_no:03d}"]
    spec["names"] = names
    crd["metadata"] = {"name": f"{names['plural']}.{spec['group']}"}
    version = spec["versions"][0]
    version["name"] = "v1"
    schema = version["schema"]["openAPIV3Schema"]
    _pad(schema, rng.randint(20, 100), rng)
    version.setdefault("additionalPrinterColumns", []).insert(
        0, {"name": "Field0", "type": "string", "jsonPath": ".spec.field000"})
    if i % 4 == 0:
        older = copy.deepcopy(version)
        older.update(name="v1beta1", storage=False)
        spec["versions"] = [version, older]
    return crd


def _pad(schema: dict[str, Any], target: int, rng: random.Random) -> None:
    """Add spec fields until the schema declares ``target`` properties in all."""
    spec = schema["properties"].setdefault("spec", {"type": "object", "properties": {}})
    fields = spec.setdefault("properties", {})
    j = 0
    while count_properties(schema) < target:
        fields[f"field{j:03d}"] = _field(j, rng)
        j += 1


def _field(j: int, rng: random.Random) -> dict[str, Any]:
    text = (f"Field {j} of the benchmark kind: what it configures, its default and the "
            "values it accepts, as a real operator's CRD documents every field.")
    choice = rng.randrange(4) if j else 0
    if choice == 0:
        return {"type": "string", "description": text, "maxLength": 253}
    if choice == 1:
        return {"type": "integer", "format": "int32", "minimum": 0, "maximum": 65535,
                "description": text}
    if choice == 2:
        return {"type": "array", "items": {"type": "string"}, "description": text}
    return {"type": "object", "description": text, "properties": {
        "name": {"type": "string", "description": "Name of the referenced object."},
        "enabled": {"type": "boolean", "default": True}}}


def count_properties(node: Any) -> int:
    if isinstance(node, list):
        return sum(count_properties(v) for v in node)
    if not isinstance(node, dict):
        return 0
    own = len(node["properties"]) if isinstance(node.get("properties"), dict) else 0
    return own + sum(count_properties(v) for v in node.values())


# -- the endpoints ----------------------------------------------------------------------------
def endpoints(group: str, version: str) -> dict[str, tuple[str, str]]:
    """name -> (path, Accept) of what kubectl reads, ``group/version`` being one CRD's."""
    return {
        "/api": ("/api", "application/json"),
        "/apis": ("/apis", "application/json"),
        "/apis/<crd group>/<v>": (f"/apis/{group}/{version}", "application/json"),
        "/apis/iaas.scs.community/v1alpha1": ("/apis/iaas.scs.community/v1alpha1",
                                              "application/json"),
        "/api aggregated": ("/api", AGGREGATED),
        "/apis aggregated": ("/apis", AGGREGATED),
        "/openapi/v2 json": ("/openapi/v2", "application/json"),
        "/openapi/v2 protobuf": ("/openapi/v2", PROTOBUF),
        "/openapi/v3": ("/openapi/v3", "application/json"),
        "/openapi/v3/apis/<crd group>/<v>": (f"/openapi/v3/apis/{group}/{version}",
                                             "application/json"),
        "/openapi/v3/api/v1": ("/openapi/v3/api/v1", "application/json"),
    }


def _request(conn: Conn, path: str, accept: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {conn.host}:{conn.port}\r\n"
            f"Authorization: Bearer {conn.token}\r\nUser-Agent: scs-bench\r\n"
            f"Accept: {accept}\r\nAccept-Encoding: gzip\r\n\r\n").encode()


async def _timed(conn: Conn, raw: bytes) -> tuple[float, int]:
    started = time.perf_counter()
    status, body = await asyncio.wait_for(conn.send_raw(raw), 120)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"{raw.splitlines()[0]!r}: HTTP {status}: {body[:300]!r}")
    return elapsed, len(body)


async def measure(conn: Conn, pid: int, targets: dict[str, tuple[str, str]],
                  rounds: int) -> dict[str, Any]:
    """Per endpoint: the first request (nothing cached yet), then ``rounds`` or more."""
    out: dict[str, Any] = {}
    for name, (path, accept) in targets.items():
        raw = _request(conn, path, accept)
        first, size = await _timed(conn, raw)
        cpu = cpu_seconds(pid)
        times: list[float] = []
        while len(times) < rounds or (sum(times) < MIN_SECONDS and len(times) < MAX_ROUNDS):
            times.append((await _timed(conn, raw))[0])
        cpu = cpu_seconds(pid) - cpu
        out[name] = {"first_ms": round(first * 1000, 2), **summary(times),
                     "cpu_us_per_request": round(cpu * 1e6 / len(times), 1), "bytes": size}
    return out


# -- installing -------------------------------------------------------------------------------
async def install(conns: list[Conn], crds: list[dict[str, Any]]) -> list[float]:
    """Create every CRD (a CRD write is answered once this server serves it) and check it
    is Established; the seconds each create took."""
    queue = list(reversed(crds))
    took: list[float] = []

    async def worker(conn: Conn) -> None:
        while queue:
            crd = queue.pop()
            started = time.perf_counter()
            created = await conn.json("POST", CRDS, orjson.dumps(crd), expect=(201,))
            took.append(time.perf_counter() - started)
            if not _established(created):
                created = await _wait_established(conn, crd["metadata"]["name"])

    await asyncio.gather(*(worker(c) for c in conns))
    return took


def _established(crd: dict[str, Any]) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


async def _wait_established(conn: Conn, name: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd: dict[str, Any] = await conn.json("GET", f"{CRDS}/{name}")
        if _established(crd):
            return crd
        await asyncio.sleep(0.05)
    raise RuntimeError(f"CRD {name} not Established after {timeout}s")


async def time_to_serve(conn: Conn, crd: dict[str, Any]) -> dict[str, float]:
    """Seconds from one more CRD's POST to its answer, to a 200 on its list, and to its
    group/version in discovery."""
    spec = crd["spec"]
    gv = f"/apis/{spec['group']}/{spec['versions'][0]['name']}"
    plural = spec["names"]["plural"]
    started = time.perf_counter()
    await conn.json("POST", CRDS, orjson.dumps(crd), expect=(201,))
    answered = time.perf_counter() - started
    listed = await _poll(conn, f"{gv}/{plural}", started)
    discovered = await _poll(conn, gv, started)
    return {"create_answered_ms": round(answered * 1000, 2),
            "list_served_ms": round(listed * 1000, 2),
            "discovery_served_ms": round(discovered * 1000, 2)}


async def _poll(conn: Conn, path: str, since: float, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = await conn.request("GET", path)
        if status == 200:
            return time.perf_counter() - since
        await asyncio.sleep(0.005)
    raise RuntimeError(f"{path} not served {timeout}s after its CRD was created")


# -- the run ----------------------------------------------------------------------------------
async def _run(pid: int, server: Any, count: int, rounds: int) -> dict[str, Any]:
    crds = crd_set(count + 1)
    extra = crds.pop()
    probe = crds[-1]["spec"]
    targets = endpoints(probe["group"], probe["versions"][0]["name"])
    before_targets = {k: v for k, v in targets.items() if "<crd group>" not in k}
    conns = [await connect(server) for _ in range(INSTALL_CONNECTIONS)]
    try:
        await measure(conns[0], pid, before_targets, 1)  # warm: build whatever is lazy
        rss_before = rss_mib(pid)
        before = await measure(conns[0], pid, before_targets, rounds)
        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        took = await install(conns, crds)
        install_s = time.perf_counter() - started
        install_cpu = cpu_seconds(pid) - cpu
        after = await measure(conns[0], pid, targets, rounds)
        rss_after = rss_mib(pid)
        serve = await time_to_serve(conns[0], extra)
        changed = {name: round((await _timed(conns[0], _request(conns[0], *target)))[0] * 1000, 2)
                   for name, target in targets.items()}
    finally:
        for conn in conns:
            conn.close()
    return {"crds": count, "schema_bytes": sum(len(orjson.dumps(c)) for c in crds),
            "properties": summary([float(count_properties(c)) for c in crds]),
            "rss_before_mib": rss_before, "rss_after_mib": rss_after,
            "rss_per_crd_kib": round((rss_after - rss_before) * 1024 / count, 1),
            "install_seconds": round(install_s, 2),
            "install_cpu_ms_per_crd": round(install_cpu * 1000 / count, 2),
            "create": summary(took), "before": before, "after": after, "one_more": serve,
            "first_ms_after_one_more": changed}


def bench_breadth(quick: bool, report: Any, work: Path) -> None:
    crds, rounds = SIZES[quick]
    server = start_server(config=CONFIG)
    try:
        pid = server.proc.pid if server.proc else 0
        result = asyncio.run(_run(pid, server, crds, rounds))
    finally:
        stop_server(server)
    report.details["breadth"] = result
    _report(result, report)


def _report(result: dict[str, Any], report: Any) -> None:
    name = f"breadth {result['crds']} CRDs"
    delta = result["rss_after_mib"] - result["rss_before_mib"]
    full = result["crds"] >= 500
    report.add(name, "server RSS MiB before / after", f"{result['rss_before_mib']} / "
               f"{result['rss_after_mib']}")
    report.add(name, "RSS added MiB", round(delta, 1), target="< 200 MB" if full else "",
               met=delta * 1.048576 < 200 if full else None)
    report.add(name, "RSS per CRD KiB", result["rss_per_crd_kib"])
    report.add(name, "install: CPU ms per CRD", result["install_cpu_ms_per_crd"])
    report.add(name, "install: create p50 / p99 ms",
               f"{result['create']['p50_ms']} / {result['create']['p99_ms']}")
    for endpoint, after in result["after"].items():
        before = result["before"].get(endpoint)
        worst = max(after["p99_ms"], after["first_ms"])
        report.add(name, f"{endpoint} p50 / p99 / first ms",
                   f"{after['p50_ms']} / {after['p99_ms']} / {after['first_ms']}",
                   baseline=f"{before['p50_ms']} / {before['p99_ms']}" if before else "",
                   target="< 100 ms", met=worst < 100)
        report.add(name, f"{endpoint} CPU µs per request (bytes)",
                   f"{after['cpu_us_per_request']} ({after['bytes']})",
                   baseline=f"{before['cpu_us_per_request']} ({before['bytes']})"
                   if before else "")
    for endpoint, first in result["first_ms_after_one_more"].items():
        report.add(name, f"{endpoint} first ms after one more CRD", first)
    serve = result["one_more"]
    report.add(name, "one more CRD: created / list served / in discovery ms",
               f"{serve['create_answered_ms']} / {serve['list_served_ms']} / "
               f"{serve['discovery_served_ms']}")
