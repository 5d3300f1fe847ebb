# The dev environment of the churn platform: its cluster, MLflow and Airflow, from the
# shared modules. Only terraform.tfvars differs between environments.

terraform {
  required_version = ">= 1.5.0"

  # One state per environment. A real account configures a remote backend here (S3 + DynamoDB
  # lock, GCS, azurerm); the example keeps a local one so plans run offline.
  backend "local" {}
}

locals {
  tags = merge(var.extra_tags, {
    team        = var.team
    owner       = var.team
    cost_center = var.cost_center
    environment = var.environment
    managed_by  = "sluice"
  })
  mlflow_tracking_uri = module.mlflow.tracking_uri != null ? module.mlflow.tracking_uri : var.external_mlflow_tracking_uri
}

module "cluster" {
  source = "../../modules/cluster"

  environment        = var.environment
  name               = "ml-${var.environment}"
  region             = var.region
  kubernetes_version = var.kubernetes_version
  budget             = var.budget
  node_pools         = var.node_pools
  namespaces         = ["mlflow", "airflow", var.workload_namespace]
  tags               = local.tags
}

module "mlflow" {
  source = "../../modules/mlflow"

  deploy_mlflow   = var.deploy_mlflow
  environment     = var.environment
  cluster_name    = module.cluster.cluster_name
  replicas        = var.mlflow_replicas
  database        = var.mlflow_database
  artifact_bucket = "churn-mlflow-artifacts-${var.environment}"
  tags            = local.tags
}

module "airflow" {
  source = "../../modules/airflow"

  deploy_airflow         = var.deploy_airflow
  environment            = var.environment
  cluster_name           = module.cluster.cluster_name
  worker_image           = var.airflow_worker_image
  database_instance_type = var.airflow_database_instance_type
  dag_bundle = {
    repo_url         = var.dag_repo_url
    tracking_ref     = var.dag_tracking_ref
    subdir           = "platform/dags"
    refresh_interval = var.dag_refresh_seconds
  }
  variables = merge(
    {
      platform_environment = var.environment
      churn_scoring_alias  = var.scoring_alias
    },
    local.mlflow_tracking_uri == null ? {} : { mlflow_tracking_uri = local.mlflow_tracking_uri },
  )
  tags = local.tags
}
