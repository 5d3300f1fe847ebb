//! Terraform: what a plan would do and, later, driving the `terraform` CLI. This module knows
//! plans as JSON documents; it knows nothing of pull requests, policies or the store.

pub mod summary;
