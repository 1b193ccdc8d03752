//! EndpointSliceController: Service + Pods -> EndpointSlices.

pub mod controller;
pub mod plan;

pub use controller::EndpointSliceController;
pub use plan::{
    is_managed_for, plan_endpoint_slices, SlicePlan, CONTROLLER_NAME, MANAGED_BY,
    MAX_ENDPOINTS_PER_SLICE, SERVICE_NAME,
};
