environment = "production"
team        = "ml-platform"
cost_center = "cc-4021"
region      = "eu-west-1"
budget      = "large"

extra_tags = {
  data_classification = "confidential"
}

node_pools = [
  { name = "general", instance_type = "m5.xlarge", min_size = 3, max_size = 6 },
  { name = "training", instance_type = "m5.2xlarge", min_size = 0, max_size = 4 },
]

workload_namespace = "ml-prod"

deploy_mlflow   = true
mlflow_replicas = 2
mlflow_database = {
  instance_type    = "db.m5.large"
  storage_gb       = 200
  multi_az         = true
  backup_retention = 30
  deletion_protect = true
}

deploy_airflow                 = true
airflow_worker_image           = "127.0.0.1:5000/trainer:3f9c2ab"
airflow_database_instance_type = "db.m5.large"
dag_repo_url                   = "https://git.example.com/ml/churn-platform.git"
dag_tracking_ref               = "main"
dag_refresh_seconds            = 60
scoring_alias                  = "production"
