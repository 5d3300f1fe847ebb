//! The terraform target (being built).
