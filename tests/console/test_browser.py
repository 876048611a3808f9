"""The web console in a real browser (Debian's chromium via playwright-core) against a real
``scs serve`` and the real OpenID provider: what a tenant admin does, what another tenant
must not see, and the local token login. Screenshots: test-artifacts/console/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import ConsoleEnv, run_scenario, started_env

pytestmark = pytest.mark.slow
IAAS = "/apis/iaas.scs.community/v1alpha1"


def assert_clean(report: dict[str, Any]) -> None:
    """The scenario finished, no page had a serious or critical accessibility violation,
    and the browser blocked nothing under the console's Content-Security-Policy."""
    assert report["ok"], f"{report['error']}\nsteps: {report['steps']}"
    serious = [v for v in report["a11y"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    assert report["csp"] == [], report["csp"]
    assert report["pages"], "no page was scanned"


def test_tenant_admin_creates_a_server_and_sees_it_turn_ready(console_env: ConsoleEnv
                                                                ) -> None:
    report = run_scenario("tenantAdmin", console_env, namespace="acme-web")
    assert_clean(report)
    steps = report["steps"]
    assert steps[0] == "logged in as alice@acme.example"
    assert "while logged in: token in sessionStorage true, 0 localStorage keys" in steps
    assert "namespace acme-web created" in steps
    assert ("field errors: f-metadata_name (beside its input), f-spec_networks" in steps), steps
    assert "network web created" in steps
    assert "server web-1 Ready without reload: true" in steps
    assert "server list shows 1 row(s)" in steps
    offered = next(s for s in steps if s.startswith("namespaces offered"))
    assert "acme" in offered.split(": ")[1].split(","), offered
    assert "label tier=web saved" in steps
    assert "selector tier=web: 1 row(s)" in steps
    assert "selector tier=db: 0 row(s)" in steps
    assert "server web-1 gone from the list" in steps
    assert steps[-1] == ("after logout: 0 token keys in sessionStorage, 0 token values, "
                         "0 localStorage keys")


def test_member_of_another_tenant_sees_nothing_of_acme(console_env: ConsoleEnv) -> None:
    run_scenario("tenantAdmin", console_env, namespace="acme-shop")  # something to hide
    report = run_scenario("otherTenant", console_env, namespace="acme-shop")
    assert_clean(report)
    steps = report["steps"]
    assert steps[0] == "logged in as carol@globex.example"
    foreign = next(s for s in steps if s.startswith("acme's servers"))
    assert foreign.startswith("acme's servers: 0 row(s), alert: ") and "forbidden" in foreign
    assert "page mentions acme: false" in steps
    offered = next(s for s in steps if s.startswith("namespaces offered"))
    assert "acme" not in offered and "globex" in offered


def test_bootstrap_admin_signs_in_with_a_pasted_token(console_env: ConsoleEnv) -> None:
    report = run_scenario("tokenLogin", console_env)
    assert_clean(report)
    assert report["steps"][0].startswith("logged in as ")
    assert "tenants listed: 2" in report["steps"]
    assert report["steps"][-1].startswith("after logout: 0 token keys")


def test_viewer_gets_no_create_edit_or_delete_buttons(console_env: ConsoleEnv) -> None:
    with console_env.admin() as admin:
        made = admin.post(f"{IAAS}/namespaces/acme/networks", json={
            "apiVersion": "iaas.scs.community/v1alpha1", "kind": "Network",
            "metadata": {"name": "shared"}})
        assert made.status_code == 201, made.text
        bound = admin.post("/apis/rbac.authorization.k8s.io/v1/namespaces/acme/rolebindings",
                           json={"metadata": {"name": "bob-views"},
                                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                             "kind": "ClusterRole", "name": "viewer"},
                                 "subjects": [{"kind": "User", "name": "bob@acme.example"}]})
        assert bound.status_code == 201, bound.text
    report = run_scenario("viewer", console_env, network="shared")
    assert_clean(report)
    assert "networks listed: 1" in report["steps"]
    assert "create offered: false" in report["steps"]
    assert "actions offered: none" in report["steps"]


def test_an_expired_login_is_refreshed_without_signing_in_again(tmp_path: Path) -> None:
    with started_env(tmp_path, id_token_ttl=10) as env:
        report = run_scenario("refresh", env, waitSeconds=12)
    assert_clean(report)
    assert "alerts after expiry: none" in report["steps"]
    assert "new ID token: true" in report["steps"]
    assert "refresh token after logout: 400 invalid_grant" in report["steps"]
