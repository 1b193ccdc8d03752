//! Namespace, Node and Event rows (kubectl's `printNamespace`,
//! `printNode`, `printEvent`).

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::{age, human_duration};
use super::table::{Column, Row, AGE, NAME};
use crate::validation::access::{at, bool_at, int_at, list_at, map_at, str_at};

const ADDRESSES_DESCRIPTION: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const FIELD_PATH_DESCRIPTION: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";

fn created(obj: &Value, now: Timestamp) -> Value {
    json!(age(
        at(obj, &["metadata", "creationTimestamp"]).and_then(Value::as_str),
        now
    ))
}

pub fn namespace_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Status", "The status of the namespace"),
        AGE,
    ]
}

pub fn namespace_row(ns: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(str_at(ns, &["metadata", "name"])),
        json!(str_at(ns, &["status", "phase"])),
        created(ns, now),
    ])
}

pub fn node_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Status", "The status of the node"),
        Column::string("Roles", "The roles of the node"),
        AGE,
        Column::string("Version", "Kubelet Version reported by the node."),
        Column::string("Internal-IP", ADDRESSES_DESCRIPTION).wide(),
        Column::string("External-IP", ADDRESSES_DESCRIPTION).wide(),
        Column::string("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).").wide(),
        Column::string("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).").wide(),
        Column::string(
            "Container-Runtime",
            "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        )
        .wide(),
    ]
}

pub fn node_row(node: &Value, now: Timestamp) -> Row {
    let mut status: Vec<String> = list_at(node, &["status", "conditions"])
        .iter()
        .filter(|c| str_at(c, &["type"]) == "Ready")
        .take(1)
        .map(|c| {
            if str_at(c, &["status"]) == "True" {
                "Ready".to_string()
            } else {
                "NotReady".to_string()
            }
        })
        .collect();
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if bool_at(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled".to_string());
    }
    // Roles come from node-role.kubernetes.io/<role> and kubernetes.io/role.
    let mut roles = BTreeSet::new();
    if let Some(labels) = map_at(node, &["metadata", "labels"]) {
        for (k, v) in labels {
            if let Some(role) = k
                .strip_prefix("node-role.kubernetes.io/")
                .filter(|r| !r.is_empty())
            {
                roles.insert(role.to_string());
            } else if k == "kubernetes.io/role" && v.as_str().is_some_and(|v| !v.is_empty()) {
                roles.insert(v.as_str().unwrap_or("").to_string());
            }
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };
    let address = |ty: &str| {
        list_at(node, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == ty)
            .map(|a| str_at(a, &["address"]).to_string())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let info = |key: &str| match str_at(node, &["status", "nodeInfo", key]) {
        "" => "<unknown>".to_string(),
        s => s.to_string(),
    };
    Row::new(vec![
        json!(str_at(node, &["metadata", "name"])),
        json!(status.join(",")),
        json!(roles),
        created(node, now),
        json!(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ])
}

pub fn event_columns() -> Vec<Column> {
    vec![
        Column::string("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
        Column::string("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
        Column::string(
            "Reason",
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        Column::string("Object", "The object that this event is about."),
        Column::string("Subobject", FIELD_PATH_DESCRIPTION).wide(),
        Column::string("Source", "The component reporting this event. Should be a short machine understandable string.").wide(),
        Column::string("Message", "A human-readable description of the status of this operation."),
        Column::string("First Seen", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)").wide(),
        Column::string("Count", "The number of times this event has occurred.").wide(),
        Column { priority: 1, ..NAME },
    ]
}

fn since(v: Option<&Value>, now: Timestamp) -> Option<String> {
    v.and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok())
        .map(|t| human_duration(now.duration_since(t)))
}

pub fn event_row(ev: &Value, now: Timestamp) -> Row {
    let first = since(at(ev, &["firstTimestamp"]), now)
        .or_else(|| since(at(ev, &["eventTime"]), now))
        .unwrap_or_else(|| "<unknown>".to_string());
    let mut last = since(at(ev, &["lastTimestamp"]), now).unwrap_or_else(|| first.clone());
    let mut count = int_at(ev, &["count"]).unwrap_or(0);
    if let Some(series) = at(ev, &["series"]) {
        last = since(at(series, &["lastObservedTime"]), now)
            .unwrap_or_else(|| "<unknown>".to_string());
        count = int_at(series, &["count"]).unwrap_or(0);
    } else if count == 0 {
        // Events of the newer API have no count when they happened once.
        count = 1;
    }
    let kind = str_at(ev, &["involvedObject", "kind"]).to_lowercase();
    let name = str_at(ev, &["involvedObject", "name"]);
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let component = match str_at(ev, &["source", "component"]) {
        "" => str_at(ev, &["reportingComponent"]),
        c => c,
    };
    let host = match str_at(ev, &["source", "host"]) {
        "" => str_at(ev, &["reportingInstance"]),
        h => h,
    };
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    Row::new(vec![
        json!(last),
        json!(str_at(ev, &["type"])),
        json!(str_at(ev, &["reason"])),
        json!(target),
        json!(str_at(ev, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(str_at(ev, &["message"]).trim()),
        json!(first),
        json!(count),
        json!(str_at(ev, &["metadata", "name"])),
    ])
}
