//! Which Pods a ReplicaSet should create or delete, and the status it
//! reports. Pure: reads the ReplicaSet and the Pods of its namespace.

use std::cmp::Ordering;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::labels::selector_matches;
use crate::owners::{controller_reference, is_controlled_by};
use crate::pod_state;

/// What one reconcile of a ReplicaSet does.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSetPlan {
    /// Pods to create, names already chosen.
    pub create: Vec<Pod>,
    /// Names of Pods to delete, the cheapest to lose first.
    pub delete: Vec<String>,
    /// The status to write when it differs from the current one.
    pub status: ReplicaSetStatus,
    /// Look again after this long: a Pod becomes available only after
    /// `minReadySeconds`, and no event marks that moment.
    pub requeue_after: Option<Duration>,
}

/// Reconcile one ReplicaSet against `pods` (the Pods of its namespace).
/// `new_name(prefix)` picks a Pod name for `generateName: prefix`.
pub fn plan_replica_set(
    rs: &ReplicaSet,
    pods: &[&Pod],
    now: jiff::Timestamp,
    new_name: &mut dyn FnMut(&str) -> String,
) -> ReplicaSetPlan {
    let uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let spec = rs.spec.as_ref();
    let selector = spec.map(|s| &s.selector);
    let owned: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| is_controlled_by(&p.metadata, uid))
        .filter(|p| selector.is_some_and(|s| selector_matches(s, p.metadata.labels.as_ref())))
        .collect();
    let active: Vec<&Pod> = owned
        .iter()
        .copied()
        .filter(|p| pod_state::is_active(p))
        .collect();

    let (status, requeue_after) = status_of(rs, &active, now);
    let mut plan = ReplicaSetPlan {
        create: Vec::new(),
        delete: Vec::new(),
        status,
        requeue_after,
    };
    // A ReplicaSet being deleted keeps its Pods until the garbage collector
    // removes them; it must not replace them meanwhile.
    if rs.metadata.deletion_timestamp.is_some() {
        return plan;
    }
    let want = spec.and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
    if active.len() < want {
        let prefix = format!("{}-", rs.metadata.name.as_deref().unwrap_or_default());
        for _ in active.len()..want {
            plan.create.push(pod_from_template(rs, new_name(&prefix)));
        }
    } else if active.len() > want {
        let mut doomed = active.clone();
        doomed.sort_by(|a, b| delete_order(a, b, now));
        plan.delete = doomed
            .into_iter()
            .take(active.len() - want)
            .filter_map(|p| p.metadata.name.clone())
            .collect();
    }
    plan
}

/// A Pod as the ReplicaSet's template describes it, owned by the ReplicaSet.
pub fn pod_from_template(rs: &ReplicaSet, name: String) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            generate_name: Some(format!(
                "{}-",
                rs.metadata.name.as_deref().unwrap_or_default()
            )),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_reference(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// `getPodsRankedByRelatedPodsOnSameNode`-lite: Kubernetes' order for Pods
/// to delete first: unscheduled, then pending over running, not ready over
/// ready, more restarts, and the newest first.
fn delete_order(a: &Pod, b: &Pod, _now: jiff::Timestamp) -> Ordering {
    let assigned = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    let phase_rank = |p: &Pod| match pod_state::phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(pod_state::is_ready(a).cmp(&pod_state::is_ready(b)))
        .then(pod_state::restart_count(b).cmp(&pod_state::restart_count(a)))
        .then(created(b).cmp(&created(a)))
        .then(a.metadata.name.cmp(&b.metadata.name))
}

/// `calculateStatus`: counts over the active Pods the ReplicaSet owns.
fn status_of(
    rs: &ReplicaSet,
    active: &[&Pod],
    now: jiff::Timestamp,
) -> (ReplicaSetStatus, Option<Duration>) {
    let spec = rs.spec.as_ref();
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = i64::from(spec.and_then(|s| s.min_ready_seconds).unwrap_or(0).max(0));
    let mut fully_labeled = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut requeue: Option<Duration> = None;
    for pod in active {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            fully_labeled += 1;
        }
        if !pod_state::is_ready(pod) {
            continue;
        }
        ready += 1;
        let since = pod_state::ready_since(pod).unwrap_or(now);
        let ready_for = now.as_second() - since.as_second();
        if min_ready == 0 || ready_for >= min_ready {
            available += 1;
        } else {
            let wait = Duration::from_secs((min_ready - ready_for) as u64);
            requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
        }
    }
    let old = rs.status.clone().unwrap_or_default();
    let status = ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: rs.metadata.generation,
        conditions: old.conditions,
        terminating_replicas: old.terminating_replicas,
    };
    (status, requeue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_state::testing::{pod, running, terminating};
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

    fn rs(replicas: i32) -> ReplicaSet {
        let labels: crate::labels::Labels = [("app", "web"), ("pod-template-hash", "h1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web-h1".into()),
                namespace: Some("default".into()),
                uid: Some("rs-uid".into()),
                generation: Some(3),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec::default()),
                }),
                min_ready_seconds: None,
            }),
            status: None,
        }
    }

    fn owned(name: &str, rs: &ReplicaSet) -> Pod {
        let mut p = pod(name, &[("app", "web"), ("pod-template-hash", "h1")]);
        p.metadata.owner_references = Some(vec![controller_reference(rs)]);
        p
    }

    fn names() -> impl FnMut(&str) -> String {
        let mut n = 0;
        move |prefix: &str| {
            n += 1;
            format!("{prefix}p{n}")
        }
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(10_000).unwrap()
    }

    #[test]
    fn creates_missing_pods_from_the_template() {
        let rs = rs(3);
        let existing = running(owned("web-h1-aaaaa", &rs), "10.244.0.5", true, "n1");
        let plan = plan_replica_set(&rs, &[&existing], now(), &mut names());
        assert_eq!(plan.create.len(), 2);
        let p = &plan.create[0];
        assert_eq!(p.metadata.name.as_deref(), Some("web-h1-p1"));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-h1-"));
        assert_eq!(
            p.metadata.labels.as_ref().unwrap()["pod-template-hash"],
            "h1"
        );
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            ("rs-uid", Some(true))
        );
        assert_eq!(plan.status.replicas, 1);
        assert_eq!(plan.status.ready_replicas, Some(1));
        assert_eq!(plan.status.available_replicas, Some(1));
        assert_eq!(plan.status.observed_generation, Some(3));
    }

    #[test]
    fn ignores_foreign_and_terminating_pods() {
        let rs = rs(2);
        let foreign = pod("other", &[("app", "web"), ("pod-template-hash", "h1")]);
        let dying = terminating(owned("web-h1-dying", &rs));
        let alive = owned("web-h1-alive", &rs);
        let plan = plan_replica_set(&rs, &[&foreign, &dying, &alive], now(), &mut names());
        assert_eq!(plan.create.len(), 1, "the terminating Pod does not count");
        assert!(plan.delete.is_empty());
        assert_eq!(plan.status.replicas, 1);
    }

    #[test]
    fn deletes_unready_and_newest_first() {
        let rs = rs(1);
        let mut old_ready = running(owned("a-old", &rs), "10.0.0.1", true, "n");
        old_ready.metadata.creation_timestamp =
            Some(Time(jiff::Timestamp::from_second(1).unwrap()));
        let mut new_ready = running(owned("b-new", &rs), "10.0.0.2", true, "n");
        new_ready.metadata.creation_timestamp =
            Some(Time(jiff::Timestamp::from_second(5).unwrap()));
        let unready = running(owned("c-unready", &rs), "10.0.0.3", false, "n");
        let plan = plan_replica_set(
            &rs,
            &[&old_ready, &new_ready, &unready],
            now(),
            &mut names(),
        );
        assert_eq!(
            plan.delete,
            vec!["c-unready".to_string(), "b-new".to_string()]
        );
        assert!(plan.create.is_empty());
    }

    #[test]
    fn steady_state_plans_nothing() {
        let rs = rs(1);
        let p = running(owned("a", &rs), "10.0.0.1", true, "n");
        let plan = plan_replica_set(&rs, &[&p], now(), &mut names());
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.requeue_after, None);
    }

    #[test]
    fn min_ready_seconds_delays_availability() {
        let mut rs = rs(1);
        rs.spec.as_mut().unwrap().min_ready_seconds = Some(10_000 - 1_000 + 30);
        let p = running(owned("a", &rs), "10.0.0.1", true, "n");
        let plan = plan_replica_set(&rs, &[&p], now(), &mut names());
        assert_eq!(plan.status.ready_replicas, Some(1));
        assert_eq!(plan.status.available_replicas, Some(0));
        assert_eq!(plan.requeue_after, Some(Duration::from_secs(30)));
    }

    #[test]
    fn deleted_replica_set_does_not_replace_pods() {
        let mut rs = rs(2);
        rs.metadata.deletion_timestamp = Some(Time(now()));
        let plan = plan_replica_set(&rs, &[], now(), &mut names());
        assert!(plan.create.is_empty());
    }
}
