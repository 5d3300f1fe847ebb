output "api_url" {
  description = "In-cluster URL of the Airflow API server, or null when Airflow is not deployed here."
  value       = var.deploy_airflow ? "http://airflow-api-server.${var.namespace}.svc.cluster.local:8080" : null
}

output "dag_bundle" {
  description = "Where the environment's DAGs come from."
  value       = var.deploy_airflow ? var.dag_bundle : null
}
