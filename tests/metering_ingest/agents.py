"""Debian's Ceilometer (19, Zed) run against the test OpenStack: the central polling agent
measures the cloud's images, volumes and floating IPs through its APIs (Keystone
credentials), sends the samples over the cloud's RabbitMQ to the notification agent, whose
pipeline publishes them with the HTTP publisher to the Central API's ``/webhooks/ceilometer``.

The HTTP publisher can only send basic credentials (from the URL): the password is the
ingest token. ``verify_ssl`` names the Central API's CA file.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import yaml

POLLING = "/usr/bin/ceilometer-polling"
NOTIFICATION = "/usr/bin/ceilometer-agent-notification"
CENTRAL_METERS = ["image.size", "volume.size", "ip.floating"]
"""Central pollsters whose backends the test OpenStack has (Glance, Cinder, Neutron)."""


@dataclass
class CeilometerAgents:
    """The two agents as child processes, configured in ``dir``."""

    dir: Path
    transport_url: str
    auth: dict[str, str]
    webhook: str
    """``https://127.0.0.1:PORT/webhooks/ceilometer`` of the Central API."""
    token: str
    ca_file: Path
    interval: int = 5
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def publisher_url(self) -> str:
        scheme, rest = self.webhook.split("://", 1)
        return (f"{scheme}://ceilometer:{quote(self.token, safe='')}@{rest}"
                f"?verify_ssl={quote(str(self.ca_file))}&timeout=10&max_retries=2")

    def write_configs(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "lock").mkdir(exist_ok=True)
        polling = {"sources": [{"name": "central", "interval": self.interval,
                                "meters": CENTRAL_METERS}]}
        pipeline = {"sources": [{"name": "meters", "meters": ["*"], "sinks": ["central-api"]}],
                    "sinks": [{"name": "central-api", "publishers": [self.publisher_url()]}]}
        (self.dir / "polling.yaml").write_text(yaml.safe_dump(polling))
        (self.dir / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
        conf = self.dir / "ceilometer.conf"
        conf.write_text(f"""
[DEFAULT]
debug = true
use_stderr = true
transport_url = {self.transport_url}
pipeline_cfg_file = {self.dir / 'pipeline.yaml'}
host = scs-ceilometer-test

[polling]
cfg_file = {self.dir / 'polling.yaml'}
pollsters_definitions_dirs = {self.dir / 'pollsters.d'}

[notification]
pipelines = meter
workers = 1

[publisher]
telemetry_secret = scs-test-signing

[oslo_concurrency]
lock_path = {self.dir / 'lock'}

[service_credentials]
auth_type = password
auth_url = {self.auth['auth_url']}
username = {self.auth['username']}
password = {self.auth['password']}
project_name = {self.auth['project_name']}
user_domain_id = default
project_domain_id = default
region_name = RegionOne
interface = public
""")
        return conf

    def start(self) -> None:
        conf = self.write_configs()
        for name, cmd in (("notification", [NOTIFICATION]),
                          ("polling", [POLLING, "--polling-namespaces", "central"])):
            log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
            self.procs.append(subprocess.Popen([*cmd, "--config-file", str(conf)],
                                               stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def log(self, name: str, lines: int = 60) -> str:
        path = self.dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
