variable "deploy_airflow" {
  description = "Whether this environment runs its own Airflow."
  type        = bool
  default     = true
}

variable "environment" {
  description = "Environment name: dev, staging or production."
  type        = string
}

variable "cluster_name" {
  description = "Cluster Airflow runs in."
  type        = string
}

variable "namespace" {
  description = "Namespace of the Airflow components."
  type        = string
  default     = "airflow"
}

variable "airflow_version" {
  description = "Airflow version of the scheduler, API server and workers."
  type        = string
  default     = "3.1.8"
}

variable "executor" {
  description = "Airflow executor."
  type        = string
  default     = "KubernetesExecutor"
}

variable "worker_image" {
  description = "Image the KubernetesExecutor runs tasks in (the trainer image carries the churn package)."
  type        = string
}

variable "dag_bundle" {
  description = "Git DAG bundle: repository, the ref Airflow follows, the DAG folder inside it, refresh seconds."
  type = object({
    repo_url         = string
    tracking_ref     = string
    subdir           = string
    refresh_interval = number
  })
}

variable "variables" {
  description = "Airflow Variables of the environment (mlflow_tracking_uri and friends)."
  type        = map(string)
  default     = {}
}

variable "database_instance_type" {
  description = "Instance type of the Postgres metadata database."
  type        = string
}

variable "tags" {
  description = "Tags every resource carries; must include owner, team, cost_center and environment."
  type        = map(string)
}
