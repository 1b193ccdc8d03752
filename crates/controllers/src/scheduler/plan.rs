//! Where a Pod goes: filter the nodes that can take it (Ready, schedulable,
//! taints tolerated, nodeSelector matched), then pick the least loaded.
//! Pure; the loop binds.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, PodCondition, Taint, Toleration};

use crate::pod_state;

pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// The decision for one Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Node(String),
    /// No node fits; the message is what `describe pod` shows.
    Unschedulable(String),
}

/// Whether this scheduler should place the Pod now.
pub fn needs_scheduling(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.node_name.as_deref().unwrap_or_default().is_empty()
        && spec.scheduler_name.as_deref().unwrap_or(DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER
        && pod_state::is_active(pod)
}

/// Pods per node, counting those bound but not yet seen bound by the cache
/// (`assumed`: node of each such Pod) so a burst spreads out.
pub fn node_load<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    assumed: impl IntoIterator<Item = &'a String>,
) -> BTreeMap<String, usize> {
    let mut load = BTreeMap::new();
    for pod in pods {
        if matches!(pod_state::phase(pod), "Succeeded" | "Failed") {
            continue;
        }
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *load.entry(node).or_insert(0) += 1;
        }
    }
    for node in assumed {
        *load.entry(node.clone()).or_insert(0) += 1;
    }
    load
}

/// Pick a node for `pod` among `nodes`, the one with the fewest Pods
/// (`load`), ties by name.
pub fn plan_placement(pod: &Pod, nodes: &[&Node], load: &BTreeMap<String, usize>) -> Placement {
    if nodes.is_empty() {
        return Placement::Unschedulable("no nodes available to schedule pods".into());
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut fits: Vec<&str> = Vec::new();
    for node in nodes {
        match why_not(pod, node) {
            None => fits.push(node.metadata.name.as_deref().unwrap_or_default()),
            Some(reason) => *reasons.entry(reason).or_insert(0) += 1,
        }
    }
    if let Some(best) = fits
        .into_iter()
        .min_by_key(|n| (load.get(*n).copied().unwrap_or(0), n.to_string()))
    {
        return Placement::Node(best.to_string());
    }
    let details: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    Placement::Unschedulable(format!(
        "0/{} nodes are available: {}.",
        nodes.len(),
        details.join(", ")
    ))
}

/// Why `node` cannot take `pod`, in the scheduler's words; None if it can.
fn why_not(pod: &Pod, node: &Node) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    if !ready {
        // The node lifecycle taint a NotReady node carries.
        let taint = Taint {
            key: "node.kubernetes.io/not-ready".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if !tolerated(&taint, tolerations) {
            return Some("node(s) had untolerated taint {node.kubernetes.io/not-ready: }".into());
        }
    }
    let node_spec = node.spec.as_ref();
    if node_spec.and_then(|s| s.unschedulable).unwrap_or(false) {
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if !tolerated(&taint, tolerations) {
            return Some("node(s) were unschedulable".into());
        }
    }
    for taint in node_spec
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
    {
        if matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tolerated(taint, tolerations)
        {
            return Some(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or_default()
            ));
        }
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !selector_ok {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    None
}

/// `Toleration.ToleratesTaint`.
fn tolerated(taint: &Taint, tolerations: &[Toleration]) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect);
        let key = t.key.as_deref().unwrap_or_default();
        let key_ok = key.is_empty() || key == taint.key;
        let value_ok = match t.operator.as_deref().unwrap_or("Equal") {
            "Exists" => true,
            _ => {
                t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
            }
        };
        effect_ok && key_ok && value_ok
    })
}

/// The Pod's `PodScheduled` condition as the decision makes it; None when
/// the Pod already says so (nothing to write).
pub fn scheduled_condition(
    pod: &Pod,
    placement: &Placement,
    now: jiff::Timestamp,
) -> Option<Vec<PodCondition>> {
    let (status, reason, message) = match placement {
        Placement::Node(_) => ("True", None, None),
        Placement::Unschedulable(m) => {
            ("False", Some("Unschedulable".to_string()), Some(m.clone()))
        }
    };
    let mut conditions = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let existing = conditions.iter_mut().find(|c| c.type_ == "PodScheduled");
    if let Some(c) = &existing {
        if c.status == status && c.reason == reason && c.message == message {
            return None;
        }
    }
    let time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::from_second(now.as_second()).unwrap_or(now),
    );
    let new = PodCondition {
        type_: "PodScheduled".into(),
        status: status.into(),
        reason,
        message,
        last_transition_time: Some(time),
        last_probe_time: None,
        observed_generation: None,
    };
    match existing {
        Some(c) => *c = new,
        None => conditions.push(new),
    }
    Some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_state::testing::pod;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, ready: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([("kubernetes.io/hostname".to_string(), name.to_string())].into()),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn bound(name: &str, node: &str) -> Pod {
        let mut p = pod(name, &[]);
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        p
    }

    #[test]
    fn picks_the_least_loaded_ready_node() {
        let (a, b, c) = (node("a", true), node("b", true), node("c", false));
        let pods = [bound("p1", "a"), bound("p2", "a"), bound("p3", "b")];
        let load = node_load(pods.iter(), []);
        assert_eq!(
            plan_placement(&pod("new", &[]), &[&a, &b, &c], &load),
            Placement::Node("b".into())
        );
        let assumed = ["b".to_string(), "b".to_string()];
        let load = node_load(pods.iter(), assumed.iter());
        assert_eq!(
            plan_placement(&pod("new", &[]), &[&a, &b, &c], &load),
            Placement::Node("a".into())
        );
    }

    #[test]
    fn explains_why_nothing_fits() {
        let mut tainted = node("t", true);
        tainted.spec.as_mut().unwrap().taints = Some(vec![Taint {
            key: "dedicated".into(),
            value: Some("db".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        }]);
        let down = node("d", false);
        let placement = plan_placement(&pod("p", &[]), &[&tainted, &down], &BTreeMap::new());
        assert_eq!(
            placement,
            Placement::Unschedulable(
                "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, \
                 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
                    .into()
            )
        );
        let mut tolerant = pod("p", &[]);
        tolerant.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("db".into()),
            effect: Some("NoSchedule".into()),
            toleration_seconds: None,
        }]);
        assert_eq!(
            plan_placement(&tolerant, &[&tainted, &down], &BTreeMap::new()),
            Placement::Node("t".into())
        );
        assert_eq!(
            plan_placement(&pod("p", &[]), &[], &BTreeMap::new()),
            Placement::Unschedulable("no nodes available to schedule pods".into())
        );
    }

    #[test]
    fn node_selector_must_match() {
        let a = node("a", true);
        let mut p = pod("p", &[]);
        p.spec.as_mut().unwrap().node_selector =
            Some([("kubernetes.io/hostname".to_string(), "b".to_string())].into());
        assert!(
            matches!(plan_placement(&p, &[&a], &BTreeMap::new()), Placement::Unschedulable(m) if m.contains("node affinity/selector"))
        );
    }

    #[test]
    fn only_unbound_live_pods_of_this_scheduler() {
        assert!(needs_scheduling(&pod("p", &[])));
        assert!(!needs_scheduling(&bound("p", "a")));
        let mut other = pod("p", &[]);
        other.spec.as_mut().unwrap().scheduler_name = Some("custom".into());
        assert!(!needs_scheduling(&other));
    }

    #[test]
    fn condition_written_once() {
        let now = jiff::Timestamp::from_second(5).unwrap();
        let mut p = pod("p", &[]);
        let placement = Placement::Node("a".into());
        let conds = scheduled_condition(&p, &placement, now).unwrap();
        assert_eq!(
            (conds[0].type_.as_str(), conds[0].status.as_str()),
            ("PodScheduled", "True")
        );
        p.status.as_mut().unwrap().conditions = Some(conds);
        assert_eq!(scheduled_condition(&p, &placement, now), None);
        let changed = scheduled_condition(&p, &Placement::Unschedulable("x".into()), now).unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].reason.as_deref(), Some("Unschedulable"));
    }
}
