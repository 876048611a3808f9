variable "namespace" {
  description = "The tenant's namespace (a tenant's first namespace has the tenant's name)."
  type        = string
}

variable "kubeconfig" {
  description = "Path of the tenant admin's kubeconfig; null: SCS_KUBECONFIG or KUBECONFIG."
  type        = string
  default     = null
}

variable "context" {
  description = "Context of that kubeconfig; null: its current context."
  type        = string
  default     = null
}

variable "server_flavor" {
  description = "SCS flavor of the server."
  type        = string
  default     = "SCS-2V-4"
}

variable "workers" {
  description = "Worker nodes of the cluster's pool."
  type        = number
  default     = 2
}
