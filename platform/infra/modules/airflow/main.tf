# Airflow for one environment: a Postgres metadata database and the Helm release (scheduler,
# dag-processor, API server) with the KubernetesExecutor, reading DAGs from a git DAG bundle.
# `deploy_airflow = false` leaves the environment without its own Airflow.

locals {
  enabled = var.deploy_airflow ? 1 : 0
  tags    = merge(var.tags, { component = "airflow" })
}

resource "terraform_data" "metadata_database" {
  count = local.enabled

  input = {
    engine           = "postgres"
    engine_version   = "16"
    name             = "airflow-${var.environment}"
    instance_type    = var.database_instance_type
    encrypted        = true
    publicly_exposed = false
    tags             = local.tags
  }
}

resource "terraform_data" "release" {
  count = local.enabled

  input = {
    cluster          = var.cluster_name
    namespace        = var.namespace
    chart            = "apache-airflow/airflow"
    airflow_version  = var.airflow_version
    executor         = var.executor
    worker_image     = var.worker_image
    load_examples    = false
    metadata_db      = terraform_data.metadata_database[0].output.name
    dag_bundle       = var.dag_bundle
    variables        = var.variables
    publicly_exposed = false
    tags             = local.tags
  }
}
