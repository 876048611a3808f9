"""The Terraform (and OpenTofu) provider ``scs`` of the SCS Central API.

Install and use
---------------
``scs terraform install`` writes the provider into ``~/.terraform.d/plugins`` (Terraform's
implicit local mirror: ``terraform init`` finds it with no registry and no internet;
``--dir DIR`` writes elsewhere, for ``terraform init -plugin-dir=DIR``). Configurations
name it by the source address ``scs.community/scs/scs``::

    terraform {
      required_providers {
        scs = { source = "scs.community/scs/scs" }
      }
    }
    provider "scs" {
      kubeconfig = "~/scs-data/admin.kubeconfig"   # or host + token (+ ca_file), or env
    }
    resource "scs_tenant" "acme" {
      metadata = {
        name        = "acme"
        annotations = { "tenancy.scs.community/confirm-deletion" = "acme" }  # destroyable
      }
      spec = { display_name = "ACME", admins = ["alice@acme.example"], quotas = { cores = 8 } }
      timeouts = { create = "5m" }          # create/update wait for Ready, delete until gone
    }
    resource "scs_network" "web" {
      metadata = { name = "web", namespace = scs_tenant.acme.metadata.name }
    }
    data "scs_cluster_adminkubeconfig" "demo" {
      metadata = { name = "demo", namespace = "acme" }
      spec     = { expiration_seconds = 3600 }
    }   # base64decode(data.scs_cluster_adminkubeconfig.demo.status.kubeconfig), sensitive

Every built-in kind that can be read is a data source and, if it can be written, a
resource, generated at run time from its declaration (:mod:`.kinds`): ``scs_`` + the kind
in snake case, attributes in snake case, ``metadata``/``spec``/... as *nested attributes*
(``spec = { ... }``, not blocks), ``status`` computed, ``id`` = ``namespace/name`` or
``name`` (what ``terraform import`` takes). Schema-less subtrees are JSON strings
(``jsonencode``). A Secret's ``data`` is base64 as in the API; ``string_data`` is plain and
write-only. ``wait_for_ready = false`` skips the wait for Ready.

Layout (one job each)
---------------------
``schema`` OpenAPI -> Terraform schema nodes · ``kinds`` the catalog walk, type names and
the resource/data source roots · ``types`` the plain data a provider start needs ·
``cache`` those types between provider starts · ``values`` API <-> Terraform values ·
``plan`` planning (unknowns, replacement) · ``resource`` CRUD/import/wait via the SDK ·
``datasource`` reads · ``diagnostics`` server errors -> Terraform diagnostics · ``config``
the provider block · ``servicer`` the tfplugin6 gRPC calls · ``serve`` the process (go-plugin
handshake, TLS) · ``install`` the local mirror.

The PyPI ``tf`` framework provides the protocol stubs, the msgpack codec, Diagnostics and
the servicer base class; its schema, plan and runner are overridden (no nested attributes,
no refined unknowns, a cached 1024-bit key) — see :mod:`.servicer` and :mod:`.serve`.

Testing with the real binary
----------------------------
``tests/terraform/harness.py`` (``Workspace``) and ``tests/terraform/conftest.py``
(fixtures ``terraform_home``, ``scs_server``, ``admin``, ``workspace``) run ``terraform``
isolated from the host; ``tests/terraform/test_tenant.py`` is the pattern to follow.
"""
