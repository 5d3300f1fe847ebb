variable "environment" {
  description = "Environment name: dev, staging or production."
  type        = string
}

variable "team" {
  description = "Owning team, for the `team` tag."
  type        = string
}

variable "cost_center" {
  description = "Cost center billed, for the `cost_center` tag."
  type        = string
}

variable "extra_tags" {
  description = "Further tags on every resource."
  type        = map(string)
  default     = {}
}

variable "region" {
  description = "Cloud region."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version."
  type        = string
  default     = "1.32"
}

variable "budget" {
  description = "Budget tier: small, medium or large."
  type        = string
}

variable "node_pools" {
  description = "Worker node pools."
  type = list(object({
    name          = string
    instance_type = string
    min_size      = number
    max_size      = number
    gpu           = optional(bool, false)
  }))
}

variable "workload_namespace" {
  description = "Namespace of the churn workloads (serving-api, training)."
  type        = string
}

variable "deploy_mlflow" {
  description = "Run an MLflow server in this environment."
  type        = bool
  default     = true
}

variable "external_mlflow_tracking_uri" {
  description = "MLflow server to use when deploy_mlflow is false."
  type        = string
  default     = null
}

variable "mlflow_replicas" {
  description = "MLflow tracking server replicas."
  type        = number
  default     = 1
}

variable "mlflow_database" {
  description = "MLflow backend store database."
  type = object({
    instance_type    = string
    storage_gb       = number
    multi_az         = bool
    backup_retention = number
    deletion_protect = bool
  })
}

variable "deploy_airflow" {
  description = "Run Airflow in this environment."
  type        = bool
  default     = true
}

variable "airflow_worker_image" {
  description = "Image Airflow tasks run in."
  type        = string
}

variable "airflow_database_instance_type" {
  description = "Instance type of Airflow's metadata database."
  type        = string
}

variable "dag_repo_url" {
  description = "Git repository Airflow reads DAGs from."
  type        = string
}

variable "dag_tracking_ref" {
  description = "Branch or tag the DAG bundle follows."
  type        = string
  default     = "main"
}

variable "dag_refresh_seconds" {
  description = "How often the DAG bundle refreshes."
  type        = number
  default     = 60
}

variable "scoring_alias" {
  description = "Registry alias batch scoring uses in this environment."
  type        = string
}
