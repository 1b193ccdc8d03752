//! ReplicaSetController: ReplicaSet -> Pods.

pub mod controller;
pub mod plan;

pub use controller::ReplicaSetController;
pub use plan::{plan_replica_set, pod_from_template, ReplicaSetPlan};
