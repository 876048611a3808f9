output "server_addresses" {
  description = "Addresses of the server on the web network."
  value       = scs_server.web.status.addresses
}

output "cluster_endpoint" {
  description = "URL of the cluster's API server."
  value       = scs_cluster.demo.status.api_endpoint
}

output "kubeconfig" {
  description = "The cluster-admin kubeconfig (terraform output -raw kubeconfig > demo.kubeconfig)."
  value       = base64decode(data.scs_cluster_adminkubeconfig.demo.status.kubeconfig)
  sensitive   = true
}
