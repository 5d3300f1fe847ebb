# MLflow for one environment: a Postgres backend store (required by the model registry), an
# encrypted artifact bucket, and the tracking server behind a cluster-internal Service.
# `deploy_mlflow = false` leaves the environment without its own server.

locals {
  enabled = var.deploy_mlflow ? 1 : 0
  tags    = merge(var.tags, { component = "mlflow" })
}

resource "terraform_data" "database" {
  count = local.enabled

  input = {
    engine           = "postgres"
    engine_version   = "16"
    name             = "mlflow-${var.environment}"
    instance_type    = var.database.instance_type
    storage_gb       = var.database.storage_gb
    multi_az         = var.database.multi_az
    backup_retention = var.database.backup_retention
    deletion_protect = var.database.deletion_protect
    encrypted        = true
    publicly_exposed = false
    tags             = local.tags
  }
}

resource "terraform_data" "artifact_bucket" {
  count = local.enabled

  input = {
    name             = var.artifact_bucket
    versioning       = true
    encrypted        = true
    publicly_exposed = false
    tags             = local.tags
  }
}

resource "terraform_data" "tracking_server" {
  count = local.enabled

  input = {
    cluster        = var.cluster_name
    namespace      = var.namespace
    image          = "ghcr.io/mlflow/mlflow:v${var.mlflow_version}"
    replicas       = var.replicas
    backend_store  = "postgresql://mlflow@${terraform_data.database[0].output.name}/mlflow"
    artifact_root  = "s3://${terraform_data.artifact_bucket[0].output.name}/artifacts"
    serve_artifact = true
    tags           = local.tags
  }
}
