environment = "dev"
team        = "ml-platform"
cost_center = "cc-4021"
region      = "eu-west-1"
budget      = "small"

node_pools = [
  { name = "general", instance_type = "t3.large", min_size = 1, max_size = 3 },
]

workload_namespace = "ml-dev"

deploy_mlflow   = true
mlflow_replicas = 1
mlflow_database = {
  instance_type    = "db.t3.micro"
  storage_gb       = 20
  multi_az         = false
  backup_retention = 1
  deletion_protect = false
}

deploy_airflow                 = true
airflow_worker_image           = "127.0.0.1:5000/trainer:3f9c2ab"
airflow_database_instance_type = "db.t3.micro"
dag_repo_url                   = "https://git.example.com/ml/churn-platform.git"
dag_tracking_ref               = "main"
dag_refresh_seconds            = 30
scoring_alias                  = "candidate"
