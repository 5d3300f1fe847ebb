output "cluster_name" {
  description = "Name of the cluster."
  value       = terraform_data.control_plane.output.name
}

output "endpoint" {
  description = "Private API endpoint of the cluster."
  value       = "https://${terraform_data.control_plane.output.name}.${var.region}.k8s.internal"
}

output "node_pools" {
  description = "Instance type of every node pool, by name."
  value       = { for name, pool in terraform_data.node_pool : name => pool.output.instance_type }
}

output "namespaces" {
  description = "Namespaces created in the cluster."
  value       = sort(keys(terraform_data.namespace))
}
