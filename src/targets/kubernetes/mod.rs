//! The kubernetes target (being built).
