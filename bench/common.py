"""Shared helpers: servers, a tiny keep-alive HTTP/1.1 client, percentiles, RSS, wrk.

The HTTP client is hand-rolled on purpose: the benchmarks run on the same two cores as the
server, so the load generator must cost as little CPU as possible (httpx costs several times
more per request than pre-built request bytes on an asyncio stream).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests/ holds the server and PostgreSQL harnesses
    sys.path.insert(0, str(REPO))

from tests.pg import PostgresServer  # noqa: E402
from tests.server import ScsServer, free_port  # noqa: E402

__all__ = ["REPO", "Conn", "PostgresServer", "ScsServer", "free_port", "percentile",
           "raise_fd_limit", "rss_mib", "hwm_mib", "cpu_seconds", "ensure_wrk", "run_wrk",
           "summary", "start_server", "ssl_context", "RssSampler", "write_config"]

NETWORKS = "/apis/iaas.scs.community/v1alpha1/namespaces/{ns}/networks"
SERVERS = "/apis/iaas.scs.community/v1alpha1/namespaces/{ns}/servers"
SUBNETS = "/apis/iaas.scs.community/v1alpha1/namespaces/{ns}/subnets"
NAMESPACES = "/api/v1/namespaces"


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return float(ordered[rank - 1])


def summary(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds."""
    return {"count": len(latencies_s),
            "p50_ms": round(percentile(latencies_s, 50) * 1000, 3),
            "p99_ms": round(percentile(latencies_s, 99) * 1000, 3),
            "max_ms": round(max(latencies_s, default=0.0) * 1000, 3)}


def _status_kib(pid: int, field_name: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def rss_mib(pid: int) -> float:
    return round(_status_kib(pid, "VmRSS") / 1024, 1)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used so far.

    Why: on a machine shared with other work, req/s and latencies move with everyone else's
    load; the CPU the server spends per request barely does, so it is the number to compare
    across changes (and, for the read path, with the baseline app)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hwm_mib(pid: int) -> float:
    """Peak resident set size of the process so far."""
    return round(_status_kib(pid, "VmHWM") / 1024, 1)


class RssSampler:
    """Samples a process' RSS in the background (asyncio task) to find the peak."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every, self.peak = pid, every, 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mib(self.pid))
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> float:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.peak = max(self.peak, rss_mib(self.pid))
        return self.peak


def write_config(directory: Path, text: str) -> Path:
    path = directory / "bench-config.yaml"
    path.write_text(text)
    return path


def start_server(data_dir: Path | None = None, store: str = "", config: str = "",
                 timeout: float = 120, args: tuple[str, ...] = ()) -> ScsServer:
    """``scs serve`` with TLS on 127.0.0.1, as the tests start it (``args``: more options)."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="scs-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    extra: list[str] = list(args)
    if config:
        extra += ["--config", str(write_config(data_dir, config))]
    server = ScsServer(data_dir=data_dir, store=store, extra_args=extra)
    server.start(timeout=timeout)
    return server


def stop_server(server: ScsServer, remove: bool = True) -> None:
    server.stop()
    if remove:
        shutil.rmtree(server.data_dir, ignore_errors=True)


def ssl_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


# -- a minimal keep-alive HTTP/1.1 client ---------------------------------------------------
@dataclass
class Conn:
    """One keep-alive HTTPS connection; requests are sequential on it."""

    host: str
    port: int
    context: ssl.SSLContext | None
    token: str
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    _buf: bytearray = field(default_factory=bytearray)

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.context, limit=1 << 22)
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def build(self, method: str, path: str, body: bytes | None = None,
              content_type: str = "application/json") -> bytes:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {self.token}\r\nUser-Agent: scs-bench\r\n"
                "Accept: application/json\r\n")
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + (body or b"")

    async def send_raw(self, request: bytes) -> tuple[int, bytes]:
        assert self.writer is not None and self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = -1
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                data = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(data[:-2])
            return status, b"".join(parts)
        body = await self.reader.readexactly(length) if length > 0 else b""
        return status, body

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        raw = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        return await self.send_raw(self.build(method, path, raw))

    async def json(self, method: str, path: str, body: Any = None,
                   expect: Sequence[int] = (200, 201)) -> Any:
        status, raw = await self.request(method, path, body)
        if status not in expect:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {raw[:500]!r}")
        return json.loads(raw) if raw else None


async def connect(server: ScsServer) -> Conn:
    return await Conn("127.0.0.1", server.port, ssl_context(server.ca_file),
                      server.token).open()


async def wait_ready(conn: Conn, path: str, timeout: float) -> dict[str, Any]:
    """Poll an object until its Ready condition is True."""
    deadline = time.monotonic() + timeout
    while True:
        obj: dict[str, Any] = await conn.json("GET", path)
        for cond in obj.get("status", {}).get("conditions", []) or []:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                return obj
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} not Ready after {timeout}s: {obj.get('status')}")
        await asyncio.sleep(0.1)


# -- wrk --------------------------------------------------------------------------------------
REPORT_LUA = r"""
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def ensure_wrk() -> str:
    """The ``wrk`` binary; installs the Debian package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing the Debian package", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(apt, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(apt, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk could not be installed")
    return found


def run_wrk(url: str, token: str, seconds: float, connections: int, script: str,
            workdir: Path, threads: int = 1) -> dict[str, Any]:
    """Run wrk with ``script`` (plus the JSON report) and return its numbers."""
    lua = workdir / f"wrk-{time.monotonic_ns()}.lua"
    lua.write_text(script + "\n" + REPORT_LUA)
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []  # "": anonymous
    args = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, int(seconds))}s",
            "--timeout", "10s", *auth, "-H", "Accept: application/json", "-s", str(lua), url]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60,
                          check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("WRKJSON "):
            result: dict[str, Any] = json.loads(line[8:])
            result["req_per_s"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
            return result
    raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stdout}\n{proc.stderr}")
