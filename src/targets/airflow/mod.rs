//! The airflow target (being built).
