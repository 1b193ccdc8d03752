//! Validation with Kubernetes' field paths and messages: one file per kind
//! family, dispatched by kind here. Validation runs on the defaulted object
//! (see [`crate::defaults`]), as in Kubernetes.

pub(crate) mod access;
pub mod apps;
pub mod cluster;
pub mod endpoints;
pub mod meta;
pub mod names;
pub mod pod;
mod pod_update;
pub mod service;
mod service_update;

use serde_json::Value;

use crate::field_error::FieldError;

/// Validate an object of `kind`; `old` is the stored object on update.
/// An empty list means valid. Kinds without rules get none.
pub fn validate(kind: &str, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    match kind {
        "Service" => service::validate_service(obj, old),
        "Pod" => pod::validate_pod(obj, old),
        "Deployment" => apps::validate_workload(obj, old, true),
        "ReplicaSet" => apps::validate_workload(obj, old, false),
        "Endpoints" => endpoints::validate_endpoints(obj, old),
        "EndpointSlice" => endpoints::validate_endpoint_slice(obj, old),
        "Namespace" => cluster::validate_namespace(obj, old),
        "Node" => cluster::validate_node(obj, old),
        "Event" => cluster::validate_event(obj, old),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
