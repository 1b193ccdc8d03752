//! The `meta.k8s.io/v1` Table: column definitions and rows as kube-apiserver
//! writes them for `kubectl get`.

use serde_json::{json, Map, Value};

/// One column. `priority` 1 columns are only shown by `-o wide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

impl Column {
    /// A priority-0 string column.
    pub const fn string(name: &'static str, description: &'static str) -> Column {
        Column {
            name,
            ty: "string",
            format: "",
            description,
            priority: 0,
        }
    }

    /// A priority-0 integer column.
    pub const fn integer(name: &'static str, description: &'static str) -> Column {
        Column {
            name,
            ty: "integer",
            format: "",
            description,
            priority: 0,
        }
    }

    /// The same column, shown only with `-o wide`.
    pub const fn wide(self) -> Column {
        Column {
            priority: 1,
            ..self
        }
    }

    /// `{"name":..,"type":..,"format":..,"description":..,"priority":..}`,
    /// every field present, as Go writes it.
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.ty, "format": self.format,
               "description": self.description, "priority": self.priority})
    }
}

/// `metav1.ObjectMeta` field docs (Kubernetes 1.35), the descriptions of
/// the Name and Age columns of every table.
pub const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
pub const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The Name column (`format: name` makes kubectl print `service/web` when
/// several kinds are listed).
pub const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DESCRIPTION,
    priority: 0,
};
/// The Age column.
pub const AGE: Column = Column::string("Age", CREATION_TIMESTAMP_DESCRIPTION);

/// The cells of one object, and row conditions (Pods that finished).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

impl Row {
    pub fn new(cells: Vec<Value>) -> Row {
        Row {
            cells,
            conditions: None,
        }
    }
}

/// `{"kind":"PartialObjectMetadata",...}`: what a row carries by default,
/// so `--show-labels` and `-A` work without the whole object.
pub fn partial_object_metadata(obj: &Value) -> Value {
    // Built by hand: `json!` would copy the metadata a second time, and a
    // Table of thousands of rows is made of little else.
    let mut m = Map::new();
    m.insert("kind".into(), Value::from("PartialObjectMetadata"));
    m.insert("apiVersion".into(), Value::from("meta.k8s.io/v1"));
    m.insert(
        "metadata".into(),
        obj.get("metadata")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    Value::Object(m)
}

/// Assemble the Table. `metadata` is left for the API server to fill
/// (`resourceVersion`).
pub fn build(columns: &[Column], rows: Vec<(Row, Option<Value>)>) -> Value {
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(row, object)| {
            let mut r = Map::new();
            r.insert("cells".into(), Value::Array(row.cells));
            if let Some(c) = row.conditions {
                r.insert("conditions".into(), c);
            }
            if let Some(o) = object {
                r.insert("object".into(), o);
            }
            Value::Object(r)
        })
        .collect();
    // The rows are moved in, not passed to `json!`, which would serialise
    // (deep-copy) every one of them.
    let mut table = Map::new();
    table.insert("kind".into(), Value::from("Table"));
    table.insert("apiVersion".into(), Value::from("meta.k8s.io/v1"));
    table.insert("metadata".into(), Value::Object(Map::new()));
    table.insert(
        "columnDefinitions".into(),
        Value::Array(columns.iter().map(Column::to_json).collect()),
    );
    table.insert("rows".into(), Value::Array(rows));
    Value::Object(table)
}
