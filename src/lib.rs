//! sluice: a GitOps CI/CD engine for machine-learning platforms.
//!
//! See `ARCHITECTURE.md` for the map of the modules and the rules between them.

pub mod cli;
pub mod config;
pub mod deploy;
pub mod forge;
pub mod git;
pub mod model;
pub mod ownership;
pub mod planner;
pub mod policy;
pub mod sandbox;
pub mod scheduler;
pub mod server;
pub mod steps;
pub mod store;
pub mod targets;
pub mod terraform;
