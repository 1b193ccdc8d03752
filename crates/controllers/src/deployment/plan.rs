//! What one reconcile of a Deployment changes: the ReplicaSet of the current
//! template (created when missing), the scale of every owned ReplicaSet, old
//! revisions beyond the history limit, the revision annotation and status.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::rollout::{self, DESIRED_REPLICAS, MAX_REPLICAS, REVISION};
use crate::names::pod_template_hash;
use crate::owners::{controller_reference, is_controlled_by};

pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// What one reconcile of a Deployment does.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentPlan {
    /// The ReplicaSet of the current template, when none exists yet.
    pub create: Option<ReplicaSet>,
    /// Owned ReplicaSets whose spec or annotations change (full objects,
    /// resourceVersion kept for optimistic concurrency).
    pub update: Vec<ReplicaSet>,
    /// Names of old, empty ReplicaSets beyond `revisionHistoryLimit`.
    pub delete: Vec<String>,
    /// The Deployment's `deployment.kubernetes.io/revision`, when it changes.
    pub revision: Option<String>,
    /// The status to write when it differs from the current one.
    pub status: DeploymentStatus,
}

/// Reconcile one Deployment against `replica_sets` (those of its namespace).
pub fn plan_deployment(
    d: &Deployment,
    replica_sets: &[&ReplicaSet],
    now: jiff::Timestamp,
) -> DeploymentPlan {
    let uid = d.metadata.uid.as_deref().unwrap_or_default();
    let owned: Vec<&ReplicaSet> = replica_sets
        .iter()
        .copied()
        .filter(|rs| is_controlled_by(&rs.metadata, uid))
        .collect();
    let template = d
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut new_rs: Option<ReplicaSet> = owned
        .iter()
        .filter(|rs| same_template(rs, &template))
        .min_by_key(|rs| {
            (
                rs.metadata.creation_timestamp.clone(),
                rs.metadata.name.clone(),
            )
        })
        .map(|rs| (*rs).clone())
        .or_else(|| {
            // The ReplicaSet named for this template's hash is this
            // template's, even if defaulting made the stored copies differ
            // (otherwise every reconcile would count a false collision).
            let collision = d.status.as_ref().and_then(|s| s.collision_count);
            let name = format!(
                "{}-{}",
                d.metadata.name.as_deref().unwrap_or_default(),
                pod_template_hash(&template, collision)
            );
            owned
                .iter()
                .find(|rs| rs.metadata.name.as_deref() == Some(name.as_str()))
                .map(|rs| (*rs).clone())
        });
    let mut old: Vec<ReplicaSet> = owned
        .iter()
        .filter(|rs| Some(&rs.metadata.uid) != new_rs.as_ref().map(|n| &n.metadata.uid))
        .map(|rs| (*rs).clone())
        .collect();
    let originals: Vec<ReplicaSet> = owned.iter().map(|rs| (*rs).clone()).collect();
    let max_old_revision = old.iter().map(rollout::revision).max().unwrap_or(0);
    let replicas = rollout::desired_replicas(d);
    let (surge, _) = rollout::surge_and_unavailable(d);
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let deleting = d.metadata.deletion_timestamp.is_some();
    let mut plan = DeploymentPlan {
        create: None,
        update: Vec::new(),
        delete: Vec::new(),
        revision: None,
        status: DeploymentStatus::default(),
    };

    let mut created = false;
    if new_rs.is_none() && !paused && !deleting {
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = pod_template_hash(&template, collision);
        let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default());
        if replica_sets
            .iter()
            .any(|rs| rs.metadata.name.as_deref() == Some(&name))
        {
            // Another template hashed to the same name: count the collision
            // so the next reconcile hashes differently (ComputeHash's
            // collisionCount).
            let mut status = rollout::deployment_status(d, &owned, None, false, now);
            status.collision_count = Some(collision.unwrap_or(0) + 1);
            plan.status = status;
            return plan;
        }
        let old_active = old.iter().any(|rs| rollout::spec_replicas(rs) > 0);
        let old_running = old
            .iter()
            .any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0));
        // Recreate starts the new Pods only once every old one is gone.
        if !(rollout::is_recreate(d) && (old_active || old_running)) {
            let mut rs = new_replica_set(d, &template, &hash, name, max_old_revision + 1, surge);
            let start = if old_active && !rollout::is_recreate(d) {
                let all: Vec<&ReplicaSet> = old.iter().collect();
                rollout::new_rs_target(d, &all, &rs)
            } else {
                replicas
            };
            rollout::set_spec_replicas(&mut rs, start);
            plan.create = Some(rs.clone());
            new_rs = Some(rs);
            created = true;
        }
    }

    if let Some(rs) = new_rs.as_mut().filter(|_| !created && !deleting) {
        // A template that comes back (a rollback) makes its old ReplicaSet
        // the newest revision again.
        let current = rollout::revision(rs);
        let revision = if current > max_old_revision {
            current
        } else {
            max_old_revision + 1
        };
        set_annotation(&mut rs.metadata, REVISION, revision.to_string());
        if rs.spec.as_ref().and_then(|s| s.min_ready_seconds)
            != d.spec.as_ref().and_then(|s| s.min_ready_seconds)
        {
            if let Some(spec) = rs.spec.as_mut() {
                spec.min_ready_seconds = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            }
        }
    }

    if !deleting {
        scale(d, new_rs.as_mut(), &mut old, paused, created);
    }
    if let Some(rs) = new_rs.as_mut().filter(|_| !created) {
        copy_annotations(d, &mut rs.metadata);
        set_annotation(&mut rs.metadata, DESIRED_REPLICAS, replicas.to_string());
        set_annotation(
            &mut rs.metadata,
            MAX_REPLICAS,
            (replicas + surge).to_string(),
        );
    }

    for changed in new_rs.iter().filter(|_| !created).chain(old.iter()) {
        let before = originals
            .iter()
            .find(|o| o.metadata.uid == changed.metadata.uid);
        if before != Some(changed) {
            plan.update.push(changed.clone());
        }
    }

    let all: Vec<&ReplicaSet> = new_rs.iter().chain(old.iter()).collect();
    plan.status = rollout::deployment_status(d, &all, new_rs.as_ref(), created, now);
    let complete = plan.status.updated_replicas.unwrap_or(0) == replicas
        && plan.status.available_replicas.unwrap_or(0) == replicas
        && plan.status.replicas.unwrap_or(0) == replicas;
    if complete && !deleting {
        plan.delete = history_to_delete(d, &old);
    }
    if let Some(rs) = &new_rs {
        let want = rollout::revision(rs).to_string();
        let have = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION));
        if have != Some(&want) {
            plan.revision = Some(want);
        }
    }
    plan
}

/// Decide every owned ReplicaSet's `spec.replicas`, one rollout step at a
/// time like Kubernetes: grow the new ReplicaSet first; only when it cannot
/// grow further, shrink old ones.
fn scale(
    d: &Deployment,
    new_rs: Option<&mut ReplicaSet>,
    old: &mut [ReplicaSet],
    paused: bool,
    created: bool,
) {
    let replicas = rollout::desired_replicas(d);
    let old_active = old.iter().any(|rs| rollout::spec_replicas(rs) > 0);
    if rollout::is_recreate(d) && !paused {
        for rs in old.iter_mut() {
            rollout::set_spec_replicas(rs, 0);
        }
        if let Some(rs) = new_rs {
            let old_running = old
                .iter()
                .any(|o| o.status.as_ref().is_some_and(|s| s.replicas > 0));
            if !old_running {
                rollout::set_spec_replicas(rs, replicas);
            }
        }
        return;
    }
    let Some(new_rs) = new_rs else { return };
    if !old_active {
        // Nothing to roll from: this is plain scaling.
        rollout::set_spec_replicas(new_rs, replicas);
        return;
    }
    if paused {
        return;
    }
    if !created {
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&*new_rs)).collect();
        let target = rollout::new_rs_target(d, &all, new_rs);
        if target != rollout::spec_replicas(new_rs) {
            rollout::set_spec_replicas(new_rs, target);
            return;
        }
    }
    let olds: Vec<&ReplicaSet> = old.iter().collect();
    let targets = rollout::old_rs_targets(d, &olds, Some(new_rs));
    for (rs, target) in old.iter_mut().zip(targets) {
        rollout::set_spec_replicas(rs, target);
    }
}

/// Old ReplicaSets that are scaled to zero and empty, oldest revisions
/// first, beyond `revisionHistoryLimit` (default 10).
fn history_to_delete(d: &Deployment, old: &[ReplicaSet]) -> Vec<String> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let mut empty: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| rollout::spec_replicas(rs) == 0)
        .filter(|rs| rs.status.as_ref().map_or(0, |s| s.replicas) == 0)
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    if empty.len() <= limit {
        return Vec::new();
    }
    empty.sort_by_key(|rs| rollout::revision(rs));
    let excess = empty.len() - limit;
    empty
        .into_iter()
        .take(excess)
        .filter_map(|rs| rs.metadata.name.clone())
        .collect()
}

/// `EqualIgnoreHash`: the ReplicaSet's template is the Deployment's, apart
/// from the `pod-template-hash` label the controller added.
fn same_template(rs: &ReplicaSet, template: &PodTemplateSpec) -> bool {
    let Some(mut theirs) = rs.spec.as_ref().and_then(|s| s.template.clone()) else {
        return false;
    };
    let mut ours = template.clone();
    for t in [&mut theirs, &mut ours] {
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
            if labels.is_empty() {
                t.metadata.as_mut().unwrap().labels = None;
            }
        }
    }
    theirs == ours
}

/// Annotations a Deployment does not pass on to its ReplicaSets
/// (`skipCopyAnnotation`): the client's own bookkeeping and the ones the
/// controller sets per ReplicaSet.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// `copyDeploymentAnnotationsToReplicaSet`: e.g. `kubernetes.io/change-cause`,
/// which `rollout history` shows per revision.
fn copy_annotations(d: &Deployment, meta: &mut ObjectMeta) {
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if !NOT_COPIED.contains(&k.as_str()) {
            set_annotation(meta, k, v.clone());
        }
    }
}

fn set_annotation(meta: &mut ObjectMeta, key: &str, value: String) {
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(key.to_string(), value);
}

/// The ReplicaSet of the Deployment's current template: the template's
/// labels plus `pod-template-hash` on the ReplicaSet, its selector and its
/// Pods, so ReplicaSets of different revisions never select each other's
/// Pods.
fn new_replica_set(
    d: &Deployment,
    template: &PodTemplateSpec,
    hash: &str,
    name: String,
    revision: i64,
    surge: i32,
) -> ReplicaSet {
    let spec = d.spec.clone().unwrap_or_default();
    let mut template = template.clone();
    let tmeta = template.metadata.get_or_insert_with(Default::default);
    tmeta
        .labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), hash.into());
    let labels = tmeta.labels.clone();
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH.into(), hash.into());
    let replicas = rollout::desired_replicas(d);
    let mut metadata = ObjectMeta {
        name: Some(name),
        namespace: d.metadata.namespace.clone(),
        labels,
        owner_references: Some(vec![controller_reference(d)]),
        ..Default::default()
    };
    copy_annotations(d, &mut metadata);
    set_annotation(&mut metadata, REVISION, revision.to_string());
    set_annotation(&mut metadata, DESIRED_REPLICAS, replicas.to_string());
    set_annotation(&mut metadata, MAX_REPLICAS, (replicas + surge).to_string());
    ReplicaSet {
        metadata,
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
