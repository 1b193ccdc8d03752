//! Scheduler: Pods without a node -> a Ready node.

pub mod controller;
pub mod plan;

pub use controller::Scheduler;
pub use plan::{needs_scheduling, node_load, plan_placement, scheduled_condition, Placement};
