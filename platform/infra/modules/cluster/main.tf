# The Kubernetes cluster of one environment: control plane, node pools and namespaces.
# Modelled with the built-in terraform_data resource so that plans run anywhere without
# provider downloads; each input carries what the real resource would be created from.

locals {
  tags = merge(var.tags, { component = "cluster" })
}

resource "terraform_data" "control_plane" {
  input = {
    name               = var.name
    region             = var.region
    kubernetes_version = var.kubernetes_version
    endpoint_public    = false
    secrets_encryption = true
    budget             = var.budget
    tags               = local.tags
  }
}

resource "terraform_data" "node_pool" {
  for_each = { for pool in var.node_pools : pool.name => pool }

  input = {
    cluster       = terraform_data.control_plane.output.name
    name          = each.value.name
    instance_type = each.value.instance_type
    min_size      = each.value.min_size
    max_size      = each.value.max_size
    gpu           = each.value.gpu
    budget        = var.budget
    tags          = merge(local.tags, { node_pool = each.value.name })
  }
}

resource "terraform_data" "namespace" {
  for_each = toset(var.namespaces)

  input = {
    cluster = terraform_data.control_plane.output.name
    name    = each.value
    tags    = local.tags
  }
}
