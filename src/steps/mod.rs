//! steps (being written).
