output "cluster_name" {
  description = "Cluster of this environment."
  value       = module.cluster.cluster_name
}

output "cluster_endpoint" {
  description = "Private API endpoint of the cluster."
  value       = module.cluster.endpoint
}

output "node_pools" {
  description = "Instance type of every node pool."
  value       = module.cluster.node_pools
}

output "mlflow_tracking_uri" {
  description = "MLflow server the environment's DAGs and services use."
  value       = local.mlflow_tracking_uri
}

output "airflow_api_url" {
  description = "Airflow API server, or null when Airflow is not deployed here."
  value       = module.airflow.api_url
}

output "tags" {
  description = "Tags carried by every resource."
  value       = local.tags
}
