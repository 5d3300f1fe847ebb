//! planner (being written).
