# A tenant's web tier and a Kubernetes cluster, managed by the tenant's admin with the scs
# provider (docs/terraform.md). Install the provider first: `scs terraform install`.

terraform {
  required_version = ">= 1.11"
  required_providers {
    # Installed locally by `scs terraform install`: no registry is asked.
    scs = { source = "scs.community/scs/scs" }
  }
}

# Who Terraform is: a kubeconfig path (here from var.kubeconfig, else SCS_KUBECONFIG, else
# KUBECONFIG), or host + token (SCS_HOST, SCS_TOKEN). See docs/terraform.md.
provider "scs" {
  kubeconfig = var.kubeconfig
  context    = var.context
}

locals {
  namespace = var.namespace
}

# -- network -----------------------------------------------------------------------------------
resource "scs_network" "web" {
  metadata = { name = "web", namespace = local.namespace }
  spec     = { description = "Network of the web tier" }
}

resource "scs_subnet" "web_v4" {
  metadata = { name = "web-v4", namespace = local.namespace }
  spec = {
    network_ref     = { name = scs_network.web.metadata.name }
    cidr            = "10.20.0.0/24"
    dns_nameservers = ["9.9.9.9"]
  }
}

# -- a server on it ----------------------------------------------------------------------------
resource "scs_server" "web" {
  metadata = {
    name      = "web-1"
    namespace = local.namespace
    labels    = { tier = "web" }
  }
  spec = {
    flavor   = var.server_flavor
    image    = "ubuntu-24.04"
    networks = [{ name = scs_network.web.metadata.name }]
  }
  # apply waits until the server is Ready, at most this long
  timeouts   = { create = "10m", delete = "5m" }
  depends_on = [scs_subnet.web_v4]
}

# -- a Kubernetes cluster ----------------------------------------------------------------------
resource "scs_cluster" "demo" {
  metadata = { name = "demo", namespace = local.namespace }
  spec = {
    kubernetes_version = "1.34"
    node_pools = [{
      name     = "general"
      flavor   = "SCS-2V-4"
      replicas = var.workers # change it and apply: the pool is scaled in place
    }]
  }
  timeouts = { create = "30m", update = "30m", delete = "30m" }
}

# A short-lived cluster-admin kubeconfig, asked for anew on every plan and apply.
data "scs_cluster_adminkubeconfig" "demo" {
  metadata   = { name = scs_cluster.demo.metadata.name, namespace = local.namespace }
  spec       = { expiration_seconds = 3600 }
  depends_on = [scs_cluster.demo]
}
