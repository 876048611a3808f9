"""Credentials through Terraform: a Secret's values and a ServiceAccount's token are
sensitive (never shown in plans or `terraform show`), stringData is write-only, data sources
read objects and credential subresources, namespaced objects import by namespace/name."""

from __future__ import annotations

import base64

import pytest

from central_api.client import Client
from central_api.kinds.core import Secret
from tests.integration.conftest import unique
from tests.terraform.conftest import WorkspaceFactory

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-value-never-shown"


def config(secret: str, account: str) -> str:
    return f'''
resource "scs_secret" "db" {{
  metadata    = {{ name = "{secret}", namespace = "default" }}
  string_data = {{ password = "{PASSWORD}" }}
}}

resource "scs_service_account" "ops" {{
  metadata = {{ name = "{account}", namespace = "default" }}
}}

data "scs_secret" "db" {{
  metadata = {{ name = scs_secret.db.metadata.name, namespace = "default" }}
}}

data "scs_service_account_token" "ops" {{
  metadata = {{ name = scs_service_account.ops.metadata.name, namespace = "default" }}
  spec     = {{ expiration_seconds = 600 }}
}}

resource "scs_component" "compute" {{
  metadata = {{ name = "{secret}" }}
  spec     = {{ display_name = "Compute" }}
}}

output "secret_keys" {{ value = nonsensitive(keys(data.scs_secret.db.data)) }}
output "token_parts" {{
  value = nonsensitive(length(split(".", data.scs_service_account_token.ops.status.token)))
}}
'''


def test_secret_and_token_stay_sensitive(workspace: WorkspaceFactory, admin: Client) -> None:
    secret, account = unique("tf-db"), unique("tf-ops")
    ws = workspace().write(config(secret, account))

    applied = ws.apply()
    assert PASSWORD not in applied.output, "plans never show a sensitive value"
    assert "scs_component.compute: Creation complete after" in applied.stdout
    assert "reports no Ready" not in applied.output, "a Component is known not to report one"
    stored = admin.get(Secret, secret, "default")
    assert base64.b64decode(stored.data["password"]).decode() == PASSWORD
    assert ws.output("secret_keys") == ["password"]
    assert ws.output("token_parts") == 3, "a JWT came back through the data source"
    state = ws.state("scs_secret.db")
    assert state["string_data"] == {"password": PASSWORD}, "write-only: kept from config"
    ws.assert_no_changes()
    shown = ws.run("show").stdout
    assert PASSWORD not in shown and "(sensitive value)" in shown

    ws.run("state", "rm", "scs_secret.db")
    ws.import_("scs_secret.db", f"default/{secret}")
    assert ws.state("scs_secret.db")["data"]["password"] == stored.data["password"]
