environment = "staging"
team        = "ml-platform"
cost_center = "cc-4021"
region      = "eu-west-1"
budget      = "medium"

node_pools = [
  { name = "general", instance_type = "m5.large", min_size = 2, max_size = 4 },
  { name = "training", instance_type = "m5.xlarge", min_size = 0, max_size = 2 },
]

workload_namespace = "ml-staging"

deploy_mlflow   = true
mlflow_replicas = 1
mlflow_database = {
  instance_type    = "db.t3.small"
  storage_gb       = 50
  multi_az         = false
  backup_retention = 7
  deletion_protect = true
}

deploy_airflow                 = true
airflow_worker_image           = "127.0.0.1:5000/trainer:3f9c2ab"
airflow_database_instance_type = "db.t3.small"
dag_repo_url                   = "https://git.example.com/ml/churn-platform.git"
dag_tracking_ref               = "main"
dag_refresh_seconds            = 60
scoring_alias                  = "staging"
