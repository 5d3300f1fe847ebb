variable "environment" {
  description = "Environment the cluster serves: dev, staging or production."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "production"], var.environment)
    error_message = "The environment must be dev, staging or production."
  }
}

variable "name" {
  description = "Cluster name, unique within the region."
  type        = string
}

variable "region" {
  description = "Cloud region the cluster runs in."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane."
  type        = string
  default     = "1.32"
}

variable "budget" {
  description = "Budget tier (small, medium, large); policies/terraform/instance_types.rego allows instance types per tier."
  type        = string

  validation {
    condition     = contains(["small", "medium", "large"], var.budget)
    error_message = "The budget must be small, medium or large."
  }
}

variable "node_pools" {
  description = "Worker node pools: name, instance type and autoscaling bounds."
  type = list(object({
    name          = string
    instance_type = string
    min_size      = number
    max_size      = number
    gpu           = optional(bool, false)
  }))

  validation {
    condition     = alltrue([for pool in var.node_pools : pool.min_size >= 0 && pool.min_size <= pool.max_size])
    error_message = "Every node pool needs 0 <= min_size <= max_size."
  }
}

variable "namespaces" {
  description = "Namespaces created for the platform's tools and workloads."
  type        = list(string)
}

variable "tags" {
  description = "Tags every resource carries; must include owner, team, cost_center and environment."
  type        = map(string)
}
