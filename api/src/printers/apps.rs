//! Deployment and ReplicaSet rows (kubectl's `printDeployment`,
//! `printReplicaSet`).

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::age;
use super::table::{Column, Row, AGE, NAME};
use crate::validation::access::{at, int_at, list_at, map_at, str_at};

const CONTAINERS: Column =
    Column::string("Containers", "Names of each container in the template.").wide();
const IMAGES: Column = Column::string(
    "Images",
    "Images referenced by each container in the template.",
)
.wide();

pub fn deployment_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Ready", "Number of the pod with ready state"),
        Column::string(
            "Up-to-date",
            "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
        ),
        Column::string(
            "Available",
            "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        Column::string(
            "Selector",
            "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
        )
        .wide(),
    ]
}

pub fn replica_set_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::integer(
            "Desired",
            "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
        ),
        Column::integer(
            "Current",
            "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
        ),
        Column::integer("Ready", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
        AGE,
        CONTAINERS,
        IMAGES,
        Column::string(
            "Selector",
            "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
        )
        .wide(),
    ]
}

/// Container names and images of the Pod template, each joined by `,`.
fn container_cells(obj: &Value) -> (String, String) {
    let containers = list_at(obj, &["spec", "template", "spec", "containers"]);
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// `labels.Selector.String()` of a label selector: requirements sorted by
/// key (`app=web,tier in (a,b)`), `""` for an empty one.
pub(crate) fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = map_at(sel, &["matchLabels"]) {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in list_at(sel, &["matchExpressions"]) {
        let key = str_at(e, &["key"]).to_string();
        let mut values: Vec<&str> = list_at(e, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort();
        values.dedup();
        let text = match str_at(e, &["operator"]) {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key, text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn deployment_row(d: &Value, now: Timestamp) -> Row {
    let (names, images) = container_cells(d);
    let ready = int_at(d, &["status", "readyReplicas"]).unwrap_or(0);
    let desired = int_at(d, &["spec", "replicas"]).unwrap_or(0);
    Row::new(vec![
        json!(str_at(d, &["metadata", "name"])),
        json!(format!("{ready}/{desired}")),
        json!(int_at(d, &["status", "updatedReplicas"]).unwrap_or(0)),
        json!(int_at(d, &["status", "availableReplicas"]).unwrap_or(0)),
        json!(age(
            at(d, &["metadata", "creationTimestamp"]).and_then(Value::as_str),
            now
        )),
        json!(names),
        json!(images),
        json!(selector_string(at(d, &["spec", "selector"]))),
    ])
}

pub fn replica_set_row(rs: &Value, now: Timestamp) -> Row {
    let (names, images) = container_cells(rs);
    let selector = match selector_string(at(rs, &["spec", "selector"])) {
        s if s.is_empty() => "<none>".to_string(),
        s => s,
    };
    Row::new(vec![
        json!(str_at(rs, &["metadata", "name"])),
        json!(int_at(rs, &["spec", "replicas"]).unwrap_or(0)),
        json!(int_at(rs, &["status", "replicas"]).unwrap_or(0)),
        json!(int_at(rs, &["status", "readyReplicas"]).unwrap_or(0)),
        json!(age(
            at(rs, &["metadata", "creationTimestamp"]).and_then(Value::as_str),
            now
        )),
        json!(names),
        json!(images),
        json!(selector),
    ])
}
