//! `describe replicaset` (kubectl's `describeReplicaSet`).

use super::deployment::{describe_pod_template, selector_string};
use super::{
    describe_conditions, describe_events, print_annotations, print_labels, DescribeWriter,
};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Event;

/// How many of the ReplicaSet's pods are in each phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodCounts {
    pub running: usize,
    pub waiting: usize,
    pub succeeded: usize,
    pub failed: usize,
}

pub fn describe_replica_set(
    rs: &ReplicaSet,
    pods: PodCounts,
    events: Option<&[Event]>,
    now: jiff::Timestamp,
) -> String {
    let mut w = DescribeWriter::new();
    let meta = &rs.metadata;
    let spec = rs.spec.clone().unwrap_or_default();
    let status = rs.status.clone().unwrap_or_default();
    w.name_and_namespace(meta);
    w.write(
        0,
        &format!("Selector:\t{}\n", selector_string(&spec.selector)),
    );
    print_labels(&mut w, "Labels", meta.labels.as_ref());
    print_annotations(&mut w, "Annotations", meta.annotations.as_ref());
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        w.write(
            0,
            &format!("Controlled By:\t{}/{}\n", owner.kind, owner.name),
        );
    }
    w.write(
        0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            status.replicas,
            spec.replicas.unwrap_or(1)
        ),
    );
    w.write(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
            pods.running, pods.waiting, pods.succeeded, pods.failed
        ),
    );
    describe_pod_template(&mut w, spec.template.as_ref());
    let conditions = status.conditions.iter().flatten();
    describe_conditions(
        &mut w,
        conditions.map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_deref())),
    );
    describe_events(&mut w, events, now);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_replicas_and_pod_phases() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "default",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u", "controller": true}]},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
            "status": {"replicas": 3}
        }))
        .unwrap();
        let counts = PodCounts {
            running: 2,
            waiting: 1,
            ..Default::default()
        };
        let out = describe_replica_set(&rs, counts, Some(&[]), jiff::Timestamp::now());
        assert!(
            out.starts_with(
                "Name:           web-abc\nNamespace:      default\nSelector:       app=web\n"
            ),
            "{out}"
        );
        assert!(out.contains("Controlled By:  Deployment/web\n"));
        assert!(out.contains("Replicas:       3 current / 3 desired\n"));
        assert!(out.contains(
            "Pods Status:    2 Running / 1 Waiting / 0 Succeeded / 0 Failed\nPod Template:\n"
        ));
    }
}
