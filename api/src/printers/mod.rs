//! Server-side printing: the `meta.k8s.io/v1` Table `kubectl get` asks for,
//! with kubectl's columns (names, types, formats, descriptions, priority)
//! and cell formats for each kind, as kube-apiserver's printers produce
//! them. Every client (the minik8s CLI, the real kubectl) renders the same
//! Table.

mod apps;
mod cluster;
pub mod duration;
mod pod;
mod service;
pub mod table;

use jiff::Timestamp;
use serde_json::{json, Value};

pub use duration::{age, human_duration};
use table::{Column, Row, CREATION_TIMESTAMP_DESCRIPTION, NAME};

/// What each row's `object` holds (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (kind, apiVersion, metadata): the default,
    /// what `--show-labels` and `-A` read.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// From the query parameter (`None`, `Metadata`, `Object`).
    pub fn parse(s: &str) -> Option<IncludeObject> {
        match s {
            "None" => Some(IncludeObject::None),
            "Metadata" | "" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

type RowFn = fn(&Value, Timestamp) -> Row;

fn printer(kind: &str) -> (Vec<Column>, RowFn) {
    match kind {
        "Service" => (service::service_columns(), service::service_row),
        "Endpoints" => (service::endpoints_columns(), service::endpoints_row),
        "EndpointSlice" => (
            service::endpoint_slice_columns(),
            service::endpoint_slice_row,
        ),
        "Pod" => (pod::pod_columns(), pod::pod_row),
        "Deployment" => (apps::deployment_columns(), apps::deployment_row),
        "ReplicaSet" => (apps::replica_set_columns(), apps::replica_set_row),
        "Namespace" => (cluster::namespace_columns(), cluster::namespace_row),
        "Node" => (cluster::node_columns(), cluster::node_row),
        "Event" => (cluster::event_columns(), cluster::event_row),
        _ => (default_columns(), default_row),
    }
}

/// The Table for `objects` of `kind` at time `now` (ages are relative to
/// it). Rows carry `PartialObjectMetadata` when `include_object` is true,
/// nothing otherwise. `metadata.resourceVersion` is for the caller to set.
pub fn table(kind: &str, objects: &[Value], now: Timestamp, include_object: bool) -> Value {
    let include = if include_object {
        IncludeObject::Metadata
    } else {
        IncludeObject::None
    };
    table_with(kind, objects, now, include)
}

/// [`table`] with the full choice of what rows carry.
pub fn table_with<'a>(
    kind: &str,
    objects: impl IntoIterator<Item = &'a Value>,
    now: Timestamp,
    include: IncludeObject,
) -> Value {
    let (columns, row) = printer(kind);
    let rows = objects
        .into_iter()
        .map(|obj| {
            let object = match include {
                IncludeObject::None => None,
                IncludeObject::Metadata => Some(table::partial_object_metadata(obj)),
                IncludeObject::Object => Some(obj.clone()),
            };
            (row(obj, now), object)
        })
        .collect();
    table::build(&columns, rows)
}

/// Kinds without a printer get what Kubernetes' default table convertor
/// gives: Name and `Created At`.
fn default_columns() -> Vec<Column> {
    vec![
        NAME,
        Column {
            name: "Created At",
            ty: "date",
            format: "",
            description: CREATION_TIMESTAMP_DESCRIPTION,
            priority: 0,
        },
    ]
}

fn default_row(obj: &Value, _now: Timestamp) -> Row {
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .cloned()
        .unwrap_or(json!(""));
    let created = meta
        .and_then(|m| m.get("creationTimestamp"))
        .cloned()
        .unwrap_or(Value::Null);
    Row::new(vec![name, created])
}

#[cfg(test)]
mod tests;
