output "tracking_uri" {
  description = "In-cluster URL of the tracking server, or null when MLflow is not deployed here."
  value       = var.deploy_mlflow ? "http://mlflow.${var.namespace}.svc.cluster.local:5000" : null
}

output "artifact_bucket" {
  description = "Bucket holding run artifacts and model files, or null when not deployed."
  value       = var.deploy_mlflow ? terraform_data.artifact_bucket[0].output.name : null
}
