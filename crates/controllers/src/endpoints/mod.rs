//! EndpointsController: Service + Pods -> Endpoints.

pub mod controller;
pub mod plan;

pub use controller::{services_selecting, EndpointsController};
pub use plan::{
    desired_subsets, is_headless, plan_endpoints, pod_reference, selected_pods, selector_of,
    EndpointsAction, CONTROLLER_NAME, HEADLESS, MANAGED_BY,
};
