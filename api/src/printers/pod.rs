//! Pod rows (kubectl's `printPod`): READY, the STATUS reason kubectl
//! derives from phase and container states, RESTARTS with the time of the
//! last restart.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::age;
use super::table::{Column, Row, AGE, NAME};
use crate::validation::access::{at, bool_at, int_at, list_at, str_at};

const POD_IP_DESCRIPTION: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
const NODE_NAME_DESCRIPTION: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const NOMINATED_NODE_DESCRIPTION: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const READINESS_GATES_DESCRIPTION: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

pub fn pod_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        Column::string("Status", "The aggregate status of the containers in this pod."),
        Column::string(
            "Restarts",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        Column::string("IP", POD_IP_DESCRIPTION).wide(),
        Column::string("Node", NODE_NAME_DESCRIPTION).wide(),
        Column::string("Nominated Node", NOMINATED_NODE_DESCRIPTION).wide(),
        Column::string("Readiness Gates", READINESS_GATES_DESCRIPTION).wide(),
    ]
}

fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// The later of two optional times.
fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn condition_true(pod: &Value, ty: &str) -> bool {
    list_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == ty && str_at(c, &["status"]) == "True")
}

/// An init container with `restartPolicy: Always` is a sidecar: it keeps
/// running and counts as a container of the Pod.
fn is_sidecar(c: Option<&Value>) -> bool {
    c.is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
}

fn last_termination(cs: &Value) -> Option<Timestamp> {
    timestamp(at(cs, &["lastState", "terminated", "finishedAt"]))
}

pub fn pod_row(pod: &Value, now: Timestamp) -> Row {
    let phase = str_at(pod, &["status", "phase"]);
    let mut reason = match str_at(pod, &["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    for c in list_at(pod, &["status", "conditions"]) {
        if str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }
    let init_specs: HashMap<&str, &Value> = list_at(pod, &["spec", "initContainers"])
        .iter()
        .map(|c| (str_at(c, &["name"]), c))
        .collect();
    let mut total = list_at(pod, &["spec", "containers"]).len();
    total += list_at(pod, &["spec", "initContainers"])
        .iter()
        .filter(|c| is_sidecar(Some(c)))
        .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let init_statuses = list_at(pod, &["status", "initContainerStatuses"]);
    let init_count = list_at(pod, &["spec", "initContainers"]).len();
    let mut initializing = false;
    for (i, cs) in init_statuses.iter().enumerate() {
        let count = int_at(cs, &["restartCount"]).unwrap_or(0);
        restarts += count;
        last_restart = later(last_restart, last_termination(cs));
        let sidecar = is_sidecar(init_specs.get(str_at(cs, &["name"])).copied());
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, last_termination(cs));
        }
        let terminated = at(cs, &["state", "terminated"]);
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]).unwrap_or(0) == 0) {
            continue;
        }
        if sidecar && bool_at(cs, &["started"]) {
            if bool_at(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match str_at(t, &["reason"]) {
                "" => match int_at(t, &["signal"]).unwrap_or(0) {
                    0 => format!("Init:ExitCode:{}", int_at(t, &["exitCode"]).unwrap_or(0)),
                    s => format!("Init:Signal:{s}"),
                },
                r => format!("Init:{r}"),
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{init_count}");
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in list_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(cs, &["restartCount"]).unwrap_or(0);
            last_restart = later(last_restart, last_termination(cs));
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            let terminated = at(cs, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match str_at(t, &["reason"]) {
                    "" => match int_at(t, &["signal"]).unwrap_or(0) {
                        0 => format!("ExitCode:{}", int_at(t, &["exitCode"]).unwrap_or(0)),
                        s => format!("Signal:{s}"),
                    },
                    r => r.to_string(),
                };
            } else if bool_at(cs, &["ready"]) && at(cs, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A container still running puts a "Completed" Pod back to Running.
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    let deleting = at(pod, &["metadata", "deletionTimestamp"]).is_some();
    if deleting && str_at(pod, &["status", "reason"]) == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            super::duration::human_duration(now.duration_since(t))
        ),
        _ => restarts.to_string(),
    };

    let pod_ip = list_at(pod, &["status", "podIPs"])
        .first()
        .map(|p| str_at(p, &["ip"]))
        .filter(|s| !s.is_empty())
        .or_else(|| Some(str_at(pod, &["status", "podIP"])).filter(|s| !s.is_empty()))
        .unwrap_or("<none>");
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let gates = list_at(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list_at(pod, &["status", "conditions"]);
        let true_count = gates
            .iter()
            .filter(|g| {
                let ty = str_at(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == ty)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    let conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]),
        ),
        _ => None,
    };
    Row {
        cells: vec![
            json!(str_at(pod, &["metadata", "name"])),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts_cell),
            json!(age(
                at(pod, &["metadata", "creationTimestamp"]).and_then(Value::as_str),
                now
            )),
            json!(pod_ip),
            json!(or_none(str_at(pod, &["spec", "nodeName"]))),
            json!(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
            json!(readiness_gates),
        ],
        conditions,
    }
}
