"""The audit log: one parseable JSON line per event, with the metadata that answers "who did
what", and nothing a client could use to leak secrets into it or forge lines."""

from __future__ import annotations

import io
import json
import re
import select
import stat
import uuid
from pathlib import Path

import pytest

from central_api.auth.audit import (
    MAX_USER_AGENT,
    AuditEvent,
    AuditLog,
    clean,
    kube_verb,
    safe_query_keys,
)

SECRET = "s3cr3t-t0ken-value"


def event(**overrides: object) -> AuditEvent:
    values: dict[str, object] = dict(
        user="alice", groups=("devs", "system:authenticated"), source_ip="10.0.0.7",
        user_agent="kubectl/v1.33.0", verb="create", api_group="tenancy.scs.community",
        resource="tenants", namespace="", name="acme", path="/apis/x", response_code=201,
        latency_ms=12.3456, decision="allow", reason="RBAC: allowed by ClusterRoleBinding")
    values.update(overrides)
    return AuditEvent(**values)  # type: ignore[arg-type]


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def write(*events: AuditEvent) -> list[dict[str, object]]:
    stream = io.StringIO()
    with AuditLog(stream=stream, stderr=False) as log:
        for item in events:
            log.record(item)
    return lines(stream)


def test_line_is_compact_json_with_every_field() -> None:
    stream = io.StringIO()
    with AuditLog(stream=stream, stderr=False) as log:
        log.record(event(query_keys=("limit",)))
    raw = stream.getvalue()
    assert raw.count("\n") == 1 and ", " not in raw and '": ' not in raw
    [line] = lines(stream)
    assert line == {
        "auditID": line["auditID"], "timestamp": line["timestamp"], "user": "alice",
        "groups": ["devs", "system:authenticated"], "sourceIP": "10.0.0.7",
        "userAgent": "kubectl/v1.33.0", "verb": "create", "apiGroup": "tenancy.scs.community",
        "resource": "tenants", "subresource": "", "namespace": "", "name": "acme",
        "path": "/apis/x", "queryKeys": ["limit"], "code": 201, "latencyMs": 12.346,
        "decision": "allow", "reason": "RBAC: allowed by ClusterRoleBinding",
    }
    assert uuid.UUID(str(line["auditID"])).version == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["timestamp"]))


def test_each_event_gets_its_own_id() -> None:
    first, second = write(event(), event())
    assert first["auditID"] != second["auditID"]


def test_query_values_and_unsafe_names_never_reach_the_log() -> None:
    query = f"token={SECRET}&access_token={SECRET}&limit=5&labelSelector=app%3D{SECRET}"
    keys = safe_query_keys(query)
    assert keys == ("labelSelector", "limit")
    [line] = write(event(query_keys=keys, path=f"/api/v1/pods?token={SECRET}"))
    assert line["queryKeys"] == ["labelSelector", "limit"]
    assert line["path"] == "/api/v1/pods"


def test_unsafe_query_keys_passed_directly_are_dropped() -> None:
    [line] = write(event(query_keys=("token", "watch", SECRET)))
    assert line["queryKeys"] == ["watch"]


def test_event_has_no_place_for_bodies() -> None:
    with pytest.raises(TypeError):
        AuditEvent(user="a", verb="get", body={"password": SECRET})  # type: ignore[call-arg]


HOSTILE = ("kubectl\n{\"user\":\"root\",\"verb\":\"delete\"}\r\n\x1b[31mred\x1b[0m"
           "\u2028\u202eevil\x00\x7f\x9b")


def test_hostile_strings_cannot_forge_lines_or_escape_the_terminal() -> None:
    stream = io.StringIO()
    with AuditLog(stream=stream, stderr=False) as log:
        log.record(event(user_agent=HOSTILE, user=HOSTILE, name=HOSTILE, reason=HOSTILE,
                         groups=(HOSTILE,), namespace=HOSTILE, source_ip=HOSTILE))
    raw = stream.getvalue()
    assert raw.count("\n") == 1
    assert "\x1b" not in raw and "\\u001b" not in raw and "\r" not in raw
    assert "\\u2028" not in raw and "\\u202e" not in raw and "\\u0000" not in raw
    [line] = lines(stream)
    assert line["userAgent"] == 'kubectl{"user":"root","verb":"delete"}[31mred[0mevil'
    assert all(not re.search(r"[\x00-\x1f\x7f-\x9f]", str(v)) for v in line.values())


def test_long_user_agent_is_truncated() -> None:
    [line] = write(event(user_agent="A" * 10_000))
    assert len(str(line["userAgent"])) <= MAX_USER_AGENT + 3


def test_clean_keeps_ordinary_unicode() -> None:
    assert clean("Zoë — 東京") == "Zoë — 東京"


@pytest.mark.parametrize(("method", "has_name", "watch", "verb"), [
    ("GET", True, False, "get"), ("GET", False, False, "list"), ("GET", False, True, "watch"),
    ("GET", True, True, "watch"), ("POST", False, False, "create"),
    ("PUT", True, False, "update"), ("PATCH", True, False, "patch"),
    ("DELETE", True, False, "delete"), ("DELETE", False, False, "deletecollection"),
])
def test_kube_verb(method: str, has_name: bool, watch: bool, verb: str) -> None:
    assert kube_verb(method, has_name, watch) == verb


def test_file_sink_is_private_and_rotates(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.log"
    with AuditLog(path, stderr=False, max_bytes=2000, backup_count=3) as log:
        for index in range(40):
            log.record(event(name=f"object-{index}"))
    files = sorted(path.parent.iterdir())
    assert path in files and len(files) == 4  # current + three backups
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        assert file.stat().st_size <= 2000
        for raw in file.read_text().splitlines():
            assert json.loads(raw)["user"] == "alice"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    newest = [json.loads(raw)["name"] for raw in path.read_text().splitlines()]
    assert newest[-1] == "object-39"


def test_existing_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text("")
    path.chmod(0o644)
    with AuditLog(path, stderr=False) as log:
        log.record(event())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_stderr_sink(capsys: pytest.CaptureFixture[str]) -> None:
    with AuditLog() as log:
        log.record(event())
    assert json.loads(capsys.readouterr().err)["user"] == "alice"


class _Writes(io.StringIO):
    """A stream that remembers what each flush handed on (one ``write`` of a pipe)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []
        self._mark = 0

    def flush(self) -> None:
        self.flushed.append(self.getvalue()[self._mark:])
        self._mark = len(self.getvalue())


def test_stream_writes_stay_within_pipe_buf_and_split_no_line() -> None:
    """Several workers share stderr: a pipe write of at most PIPE_BUF bytes is atomic."""
    stream = _Writes()
    with AuditLog(stream=stream, stderr=False) as log:
        for _ in range(200):
            log.record(event())
    writes = [w for w in stream.flushed if w]
    assert len(writes) > 1
    assert all(len(w) <= select.PIPE_BUF and w.endswith("\n") for w in writes)
    lines = "".join(writes).splitlines()
    assert len(lines) == 200 and all(json.loads(line)["user"] == "alice" for line in lines)


def test_full_queue_drops_instead_of_blocking() -> None:
    stream = io.StringIO()
    log = AuditLog(stream=stream, stderr=False, queue_size=1)
    log._listener.stop()  # type: ignore[union-attr]  # simulate a stalled writer
    log.record(event())
    log.record(event())
    assert log.dropped == 1
    log._listener = None  # already stopped
    log.record(event())
    assert log.dropped == 2


def test_close_is_idempotent() -> None:
    log = AuditLog(stream=io.StringIO(), stderr=False)
    log.close()
    log.close()
