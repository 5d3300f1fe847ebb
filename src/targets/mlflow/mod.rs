//! The mlflow target (being built).
