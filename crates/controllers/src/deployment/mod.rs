//! DeploymentController: Deployment -> ReplicaSets.

pub mod controller;
pub mod plan;
pub mod rollout;

pub use controller::DeploymentController;
pub use plan::{plan_deployment, DeploymentPlan, POD_TEMPLATE_HASH};
