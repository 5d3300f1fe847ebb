//! The systems a release is deployed to, one module each, all behind `deploy::Target`.
//! Each module knows its own system and the environment section that configures it, nothing of
//! promotion order, gates or other targets.

pub mod airflow;
pub mod kubernetes;
pub mod mlflow;
pub mod terraform;
