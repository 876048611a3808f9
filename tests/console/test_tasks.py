"""The console's task pages in a real browser (Debian's chromium via playwright-core)
against the real ``scs serve`` and OpenID provider of the console suite (conftest.py):
tenant onboarding followed live, the tenant overview's quota bars, the server and cluster
pages (the kubeconfig download), the status page and usage charts from metering, each
for the user it is meant for. Screenshots: test-artifacts/console/tasks-<scenario>/."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from tests.console.conftest import ARTIFACTS, TENANCY, ConsoleEnv, ensure_built, run_node
from tests.polling import poll
from tests.security.support import bind, create_service_account, request_token, sa_subject
from tests.server import ScsServer

pytestmark = pytest.mark.slow

IAAS = "/apis/iaas.scs.community/v1alpha1/namespaces/acme"
KAAS = "/apis/kaas.scs.community/v1alpha1/namespaces/acme"
STATUS = "/apis/status.scs.community/v1alpha1"
OIDC = {"issuerURL": "https://idp.example.test/realms/acme", "clientID": "acme-kubernetes"}
METERED = "metering.scs.community/kind=Server,metering.scs.community/object=app-1"
ONBOARDING_STEPS = ["NamespaceReady", "DomainReady", "AdminsReady", "QuotasApplied",
                    "CredentialsReady", "Ready"]


def run_tasks(name: str, env: ConsoleEnv | ScsServer, **extra: Any) -> dict[str, Any]:
    """Run one scenario of tasks.mjs (as conftest.run_scenario runs scenarios.mjs), against
    the suite's server and OpenID provider or a bare server (token login only)."""
    server, issuer = (env.server, env.provider.url) if isinstance(env, ConsoleEnv) else \
        (env, "https://no-issuer.invalid")
    return run_node("tasks.mjs", name, ARTIFACTS / f"tasks-{name}", {
        "baseUrl": server.url, "issuer": issuer, "adminToken": server.token, **extra},
        timeout=300)


def assert_clean(report: dict[str, Any]) -> None:
    """Finished; no serious or critical axe-core finding; nothing blocked by the CSP."""
    assert report["ok"], f"{report['error']}\nsteps: {report['steps']}"
    serious = [v for v in report["a11y"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    assert report["csp"] == [], report["csp"]
    assert not [s for s in report["steps"] if s.startswith("page error")], report["steps"]


def step(report: dict[str, Any], prefix: str) -> str:
    found = [s for s in report["steps"] if s.startswith(prefix)]
    assert found, f"no step {prefix!r} in {report['steps']}"
    return found[0][len(prefix):]


def created(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == type_), None)


@dataclass
class World:
    server: str = "app-1"
    cluster: str = "k1"
    component: str = "tasks-compute"
    incident: str = "tasks-slow"


def _iaas(client: httpx.Client, world: World) -> None:
    """A network, subnet and Ready Server in acme's namespace ``acme``."""
    version = "iaas.scs.community/v1alpha1"
    created(client, f"{IAAS}/networks", {"apiVersion": version, "kind": "Network",
                                         "metadata": {"name": "tasks"}})
    created(client, f"{IAAS}/subnets", {
        "apiVersion": version, "kind": "Subnet", "metadata": {"name": "tasks"},
        "spec": {"networkRef": {"name": "tasks"}, "cidr": "10.9.0.0/24"}})
    created(client, f"{IAAS}/servers", {
        "apiVersion": version, "kind": "Server", "metadata": {"name": world.server},
        "spec": {"flavor": "SCS-2V-4", "image": "ubuntu-24.04", "networks": [{"name": "tasks"}]}})


def _cluster(client: httpx.Client, world: World) -> None:
    created(client, f"{KAAS}/clusters", {
        "apiVersion": "kaas.scs.community/v1alpha1", "kind": "Cluster",
        "metadata": {"name": world.cluster},
        "spec": {"kubernetesVersion": "1.33", "oidc": OIDC,
                 "nodePools": [{"name": "general", "flavor": "SCS-2V-4", "replicas": 1}]}})


def _status(client: httpx.Client, world: World) -> None:
    """A component and an active incident with two updates (the severity bands are the
    server's defaults)."""
    version = "status.scs.community/v1alpha1"
    created(client, f"{STATUS}/impacttypes", {"apiVersion": version, "kind": "ImpactType",
                                              "metadata": {"name": "tasks-slow"},
                                              "spec": {"displayName": "Slow"}})
    created(client, f"{STATUS}/components", {"apiVersion": version, "kind": "Component",
                                             "metadata": {"name": world.component},
                                             "spec": {"displayName": "Compute, region 2"}})
    began = datetime.now(UTC) - timedelta(minutes=10)
    stamp = began.strftime("%Y-%m-%dT%H:%M:%SZ")
    created(client, f"{STATUS}/incidents", {
        "apiVersion": version, "kind": "Incident", "metadata": {"name": world.incident},
        "spec": {"displayName": "Servers start slowly", "beganAt": stamp,
                 "affects": [{"component": world.component, "impactType": "tasks-slow",
                              "severity": 40}],
                 "updates": [{"order": 0, "displayName": "Investigating", "createdAt": stamp,
                              "description": "We are looking into it."},
                             {"order": 1, "displayName": "Fix deployed",
                              "description": "Monitoring."}]}})


@pytest.fixture(scope="module")
def world(console_env: ConsoleEnv) -> Iterator[World]:
    """What the tenant admin alice (acme) looks at, made by the cloud admin through the API:
    a Server, a Cluster with OIDC (so its kubeconfig can be issued), status-page objects."""
    found = World()
    with console_env.admin() as client:
        _iaas(client, found)
        _cluster(client, found)
        _status(client, found)

        def ready() -> bool:
            server = client.get(f"{IAAS}/servers/{found.server}").json()
            cluster = client.get(f"{KAAS}/clusters/{found.cluster}").json()
            component = client.get(f"{STATUS}/components/{found.component}").json()
            up = condition(server, "Ready")
            plane = condition(cluster, "ControlPlaneReady")
            return bool(up and up["status"] == "True" and plane and plane["status"] == "True"
                        and cluster["status"].get("apiEndpoint")
                        and (component.get("status") or {}).get("severity") == 40)
        poll(ready, 90, 0.3, "server Ready, cluster reachable, component at severity 40")
        yield found


@pytest.fixture(scope="module")
def alice(console_env: ConsoleEnv, world: World) -> dict[str, Any]:
    """Alice's visit of every task page (one login), for the tests below."""
    with console_env.admin() as client:  # the accountant has metered the Server
        poll(lambda: client.get("/apis/metering.scs.community/v1alpha1/namespaces/acme/"
                                "usagerecords", params={"labelSelector": METERED}
                                ).json()["items"], 60, 0.5, "a usage record of app-1")
    return run_tasks("tenantTasks", console_env, user="alice", namespace="acme",
                     server=world.server, cluster=world.cluster, component=world.component,
                     incident=world.incident)


def test_cloud_admin_onboards_a_tenant_and_sees_its_steps_turn_ready_live(
        console_env: ConsoleEnv) -> None:
    report = run_tasks("onboarding", console_env, tenant="initech",
                       admin="dave@initech.example")
    try:
        assert_clean(report)
        links = step(report, "task links: ").split(", ")
        assert {"Tenant onboarding", "Tenant overview", "Status", "Usage"} <= set(links), links
        assert "spec.displayName" in step(report, "field error beside display name: ") or \
            "at least 1" in step(report, "field error beside display name: ")
        states: list[str] = report["data"]["onboardingStates"]
        assert states, report
        # the page showed the tenant before it was Ready, then Ready: live, by watch...
        assert report["data"]["readyHistory"].split(",")[0] in ("Unknown", "False"), report
        assert report["data"]["readyHistory"].split(",")[-1] == "True", report
        final = dict(s.split("=") for s in states[-1].split())
        assert [t for t in ONBOARDING_STEPS if final.get(t) != "True"] == [], states
        assert step(report, "ready without reload: ") == "true"  # ...and after, live
        assert step(report, "page says: ") == "The tenant is ready."
        with console_env.admin() as client:
            tenant = client.get(f"{TENANCY}/tenants/initech").json()
        assert tenant["spec"]["admins"] == ["dave@initech.example"]
        assert tenant["spec"]["quotas"] == {"namespaces": 3, "instances": 4}
    finally:
        _offboard(console_env, "initech")


def _offboard(env: ConsoleEnv, name: str) -> None:
    """Remove the tenant again (other tests of the suite count the tenants)."""
    with env.admin() as client:
        client.patch(f"{TENANCY}/tenants/{name}", json={"metadata": {"annotations": {
            "tenancy.scs.community/confirm-deletion": name}}},
            headers={"Content-Type": "application/merge-patch+json"})
        client.delete(f"{TENANCY}/tenants/{name}")
        poll(lambda: client.get(f"{TENANCY}/tenants/{name}").status_code == 404, 60, 0.3,
             f"tenant {name} deleted")


def test_tenant_admin_sees_quota_used_versus_limit(console_env: ConsoleEnv,
                                                   alice: dict[str, Any]) -> None:
    assert_clean(alice)
    assert step(alice, "logged in as ") == "alice@acme.example"
    links = step(alice, "task links: ").split(", ")
    assert "Tenant onboarding" not in links, links  # not for a tenant admin
    assert {"Tenant overview", "Servers", "Clusters", "Status", "Usage"} <= set(links), links
    assert step(alice, "overview url: ") == "/console/tasks/tenants/acme"
    with console_env.admin() as client:
        tenant = client.get(f"{TENANCY}/tenants/acme").json()
        namespaces = tenant["status"]["namespaces"]
        servers = sum(len(client.get(f"/apis/iaas.scs.community/v1alpha1/namespaces/{ns}/servers"
                                     ).json()["items"]) for ns in namespaces)
    quota = alice["data"]["quota"]
    assert quota["Namespaces"] == f"{len(namespaces)}/5", quota
    assert quota["Servers"] == f"{servers}/5", quota
    used_cores, limit = quota["vCPUs"].split("/")
    assert limit == "16" and int(used_cores) >= 6, quota  # app-1 (2) + k1's two nodes (4)
    assert quota["API objects"].split("/")[0] != "0", quota
    assert alice["data"]["people"][0] == 1, alice["data"]  # one admin


def test_server_page_shows_addresses_flavor_and_state_with_allowed_actions(
        alice: dict[str, Any]) -> None:
    assert_clean(alice)
    assert step(alice, "server flavor ") == "SCS-2V-4, image ubuntu-24.04"
    addresses = step(alice, "server addresses: ").split(",")
    assert addresses and all(a.startswith("10.9.0.") for a in addresses), addresses
    assert step(alice, "server power: ") not in ("", "–")
    assert step(alice, "server actions: ") == "Edit,Delete"  # a tenant admin may do both


def test_cluster_page_downloads_a_kubeconfig_naming_the_cluster(alice: dict[str, Any],
                                                                console_env: ConsoleEnv,
                                                                world: World) -> None:
    assert_clean(alice)
    assert "general|SCS-2V-4|1|" in step(alice, "pools: ")
    data = alice["data"]
    assert data["kubeconfigFile"] == f"acme-{world.cluster}.kubeconfig"
    assert data["kubeconfigUrl"].startswith("blob:"), data["kubeconfigUrl"]
    config = yaml.safe_load(data["kubeconfig"])
    assert config["kind"] == "Config"
    assert config["current-context"] == f"acme-{world.cluster}"
    with console_env.admin() as client:
        endpoint = client.get(f"{KAAS}/clusters/{world.cluster}").json()["status"]["apiEndpoint"]
    assert config["clusters"][0]["cluster"]["server"] == endpoint
    assert step(alice, "cluster endpoint: ") == endpoint
    assert base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    assert config["users"][0]["user"]["exec"]["command"] == "scs"
    assert step(alice, "kubeconfig in storage: ") == "false"
    # a tenant admin may also have the short-lived admin credential (a member may not)
    assert data["adminKubeconfigFile"] == f"acme-{world.cluster}-admin.kubeconfig"
    admin = yaml.safe_load(data["adminKubeconfig"])
    assert admin["clusters"][0]["cluster"]["server"] == endpoint
    assert set(admin["users"][0]["user"]) >= {"client-certificate-data", "client-key-data"}


def test_status_page_shows_component_severity_and_the_active_incident(
        alice: dict[str, Any], world: World) -> None:
    assert_clean(alice)
    assert step(alice, f"component {world.component} severity ") == "40"
    assert world.incident in step(alice, "active incidents: ").split(",")
    assert step(alice, "updates shown: ") == "2"


def instance_hours(report: dict[str, Any]) -> tuple[float, float]:
    """(the summary's Server instance-hours, the hourly chart's) as the page shows them."""
    rows, hourly = report["data"]["usageRows"], report["data"]["hourly"]
    assert [r[:3] for r in rows if r[2] == "instance-hours"] == [
        ["Server", "SCS-2V-4", "instance-hours"]], rows
    total = sum(r[3] for r in rows if r[2] == "instance-hours")
    return total, sum(q for _, flavor, q in hourly if flavor == "SCS-2V-4")


def test_usage_page_draws_a_chart_of_the_running_server(alice: dict[str, Any],
                                                        console_env: ConsoleEnv) -> None:
    assert_clean(alice)
    assert step(alice, "usage chart bars: ") == "true, total bars: true"
    assert step(alice, "usage unit shown: ") == "instance-hours"
    total, per_hour = instance_hours(alice)
    # about 1 instance-hour per hour a server ran: here seconds to minutes
    assert 0 < per_hour and 0 < total < 0.5, alice["data"]
    # a tenant admin's chart covers the namespaces the Tenant reports (records read just
    # after the summary, so at most a little more than the summary has of them)
    assert "acme" in step(alice, "usage covers: "), alice["steps"]
    assert per_hour <= total + 0.002, alice["data"]
    # the cloud admin's records cover every namespace: the chart and the totals agree
    admin = run_tasks("adminUsage", console_env, tenant="acme")
    assert_clean(admin)
    assert step(admin, "usage covers: ") == "From the usage records of all namespaces."
    total, per_hour = instance_hours(admin)
    assert 0 < total and abs(per_hour - total) < 0.002, admin["data"]
    # ...and, with all namespaces chosen, the servers page lists them across namespaces
    assert "acme/app-1" in step(admin, "servers everywhere: ").split(","), admin["steps"]


def test_another_tenants_admin_gets_nothing_of_acme(console_env: ConsoleEnv,
                                                    world: World) -> None:
    report = run_tasks("outsider", console_env, user="carol", namespace="acme",
                       server=world.server)
    assert_clean(report)
    assert "Tenant onboarding" not in step(report, "task links: ")
    assert "forbidden" in step(report, "foreign server: ").lower()
    assert "Only a cloud administrator" in step(report, "onboarding: ")


def test_task_pages_of_disabled_services_are_neither_linked_nor_shown(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server offering tenancy and IaaS only: no links to the cluster, status and usage
    pages, and those pages say the service is off instead of failing."""
    ensure_built()
    work = tmp_path_factory.mktemp("tasks-off")
    (work / "data").mkdir()
    server = ScsServer(data_dir=work / "data", config={"services": ["tenancy", "iaas"]})
    try:
        server.start()
        report = run_tasks("disabledServices", server)
    finally:
        server.cleanup()
    assert_clean(report)
    assert step(report, "task links: ") == "Tenant onboarding, Tenant overview, Servers"
    assert step(report, "clusters: ") == "The KaaS service is not enabled on this server."
    assert step(report, "status: ") == "The status service is not enabled on this server."
    assert step(report, "usage: ") == "The metering service is not enabled on this server."


def test_a_viewer_gets_the_pages_without_the_actions(console_env: ConsoleEnv,
                                                     world: World) -> None:
    """Buttons exist only where RBAC allows: a viewer of acme (a ServiceAccount's token,
    pasted) sees the server and cluster but may not edit, delete or take a kubeconfig."""
    with console_env.admin() as client:
        create_service_account(client, "acme", "tasks-viewer")
        bind(client, "viewer", sa_subject("acme", "tasks-viewer"), "acme")
        token = request_token(client, "acme", "tasks-viewer")
    report = run_tasks("viewer", console_env, token=token, namespace="acme",
                       server=world.server, cluster=world.cluster)
    assert_clean(report)
    assert step(report, "logged in as ") == "system:serviceaccount:acme:tasks-viewer"
    assert step(report, "server ready: ") == "true"
    assert step(report, "server actions: ") == ""
    assert step(report, "cluster buttons: ") == ""
    assert step(report, "access: ") == "You may not download kubeconfigs of this cluster."
