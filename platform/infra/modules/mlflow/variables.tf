variable "deploy_mlflow" {
  description = "Whether this environment runs its own MLflow tracking server and registry."
  type        = bool
  default     = true
}

variable "environment" {
  description = "Environment name: dev, staging or production."
  type        = string
}

variable "cluster_name" {
  description = "Cluster the tracking server runs in."
  type        = string
}

variable "namespace" {
  description = "Namespace of the tracking server."
  type        = string
  default     = "mlflow"
}

variable "mlflow_version" {
  description = "MLflow server version."
  type        = string
  default     = "3.1.1"
}

variable "replicas" {
  description = "Tracking server replicas."
  type        = number
  default     = 1
}

variable "database" {
  description = "Backend store: a managed Postgres the registry needs (file stores have no registry)."
  type = object({
    instance_type    = string
    storage_gb       = number
    multi_az         = bool
    backup_retention = number
    deletion_protect = bool
  })
}

variable "artifact_bucket" {
  description = "Object-store bucket for run artifacts and model files."
  type        = string
}

variable "tags" {
  description = "Tags every resource carries; must include owner, team, cost_center and environment."
  type        = map(string)
}
