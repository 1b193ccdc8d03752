//! Server-side printing: objects as a `meta.k8s.io` Table (the columns and
//! cells are `api::printers`').

use crate::negotiate::TableVersion;
use api::printers::{table_with, IncludeObject};
use api::registry::ResourceInfo;
use serde_json::{json, Value};

/// The Table of `objects`, with `resource_version` in its metadata;
/// without column definitions when `with_columns` is false (watch events
/// after the first, as Kubernetes sends them).
pub fn render<'a>(
    res: &ResourceInfo,
    objects: impl IntoIterator<Item = &'a Value>,
    version: TableVersion,
    resource_version: Value,
    with_columns: bool,
    include: IncludeObject,
) -> Value {
    let mut table = table_with(res.kind, objects, jiff::Timestamp::now(), include);
    table["kind"] = json!("Table");
    table["apiVersion"] = json!(version.api_version());
    table["metadata"] = if resource_version.is_null() {
        json!({})
    } else {
        json!({"resourceVersion": resource_version})
    };
    if !with_columns {
        table["columnDefinitions"] = Value::Null;
    }
    table
}

/// The `includeObject` query parameter; Metadata unless it says otherwise.
pub fn include_object(query: &crate::query::Query) -> IncludeObject {
    query
        .get("includeObject")
        .and_then(IncludeObject::parse)
        .unwrap_or_default()
}
