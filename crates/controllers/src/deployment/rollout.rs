//! The arithmetic of a rolling update, as Kubernetes' deployment utilities
//! define it: surge and unavailability budgets, how far the new ReplicaSet
//! may grow and how far the old ones may shrink, and the status that results.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

pub fn desired_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

/// `ResolveFenceposts`: maxSurge rounds up, maxUnavailable rounds down, and
/// both zero would stall the rollout, so unavailability becomes one.
/// Recreate has neither budget.
pub fn surge_and_unavailable(d: &Deployment) -> (i32, i32) {
    if is_recreate(d) {
        return (0, 0);
    }
    let replicas = desired_replicas(d);
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let quarter = IntOrString::String("25%".into());
    let surge = scaled(
        rolling
            .and_then(|r| r.max_surge.as_ref())
            .unwrap_or(&quarter),
        replicas,
        true,
    );
    let unavailable = scaled(
        rolling
            .and_then(|r| r.max_unavailable.as_ref())
            .unwrap_or(&quarter),
        replicas,
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable.min(replicas))
    }
}

/// `intstr.GetScaledValueFromIntOrPercent`.
fn scaled(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => (*n).max(0),
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let product = pct * i64::from(total);
            let v = if round_up {
                (product + 99) / 100
            } else {
                product / 100
            };
            v.max(0) as i32
        }
    }
}

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

pub fn set_spec_replicas(rs: &mut ReplicaSet, n: i32) {
    if let Some(spec) = rs.spec.as_mut() {
        spec.replicas = Some(n);
    }
}

fn status_num(
    rs: &ReplicaSet,
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    rs.status.as_ref().and_then(f).unwrap_or(0)
}

pub fn available(rs: &ReplicaSet) -> i32 {
    status_num(rs, |s| s.available_replicas)
}

/// The revision annotation of a ReplicaSet, 0 when absent.
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// `NewRSNewReplicas` for RollingUpdate: grow the new ReplicaSet while all
/// ReplicaSets together stay within replicas + maxSurge.
pub fn new_rs_target(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let replicas = desired_replicas(d);
    let (surge, _) = surge_and_unavailable(d);
    let current: i32 = all.iter().map(|rs| spec_replicas(rs)).sum();
    let new = spec_replicas(new_rs);
    let max_total = replicas + surge;
    if current >= max_total {
        return new.min(replicas);
    }
    let up = (max_total - current).min(replicas - new);
    (new + up).min(replicas)
}

/// `reconcileOldReplicaSets`: how far each old ReplicaSet (oldest first) may
/// shrink without dropping below replicas - maxUnavailable available Pods.
/// Returns the new `spec.replicas` of each old ReplicaSet, in input order.
pub fn old_rs_targets(
    d: &Deployment,
    old: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Vec<i32> {
    let mut targets: Vec<i32> = old.iter().map(|rs| spec_replicas(rs)).collect();
    if targets.iter().sum::<i32>() == 0 {
        return targets;
    }
    let replicas = desired_replicas(d);
    let (_, max_unavailable) = surge_and_unavailable(d);
    let min_available = replicas - max_unavailable;
    let new_spec = new_rs.map(spec_replicas).unwrap_or(0);
    let new_unavailable = (new_spec - new_rs.map(available).unwrap_or(0)).max(0);
    let all_pods = targets.iter().sum::<i32>() + new_spec;
    let mut budget = all_pods - min_available - new_unavailable;
    if budget <= 0 {
        return targets;
    }
    let mut order: Vec<usize> = (0..old.len()).collect();
    order.sort_by_key(|&i| {
        (
            old[i].metadata.creation_timestamp.clone(),
            old[i].metadata.name.clone(),
        )
    });

    // Unhealthy old Pods first: they serve nobody, and waiting for them
    // would stall the rollout.
    for &i in &order {
        if budget <= 0 {
            break;
        }
        let unhealthy = targets[i] - available(old[i]);
        if targets[i] == 0 || unhealthy <= 0 {
            continue;
        }
        let cut = unhealthy.min(budget);
        targets[i] -= cut;
        budget -= cut;
    }
    // Then healthy ones, as far as availability allows.
    let available_now: i32 = old
        .iter()
        .enumerate()
        .map(|(i, rs)| available(rs).min(targets[i]))
        .sum::<i32>()
        + new_rs.map(available).unwrap_or(0);
    let mut allowed = (available_now - min_available).min(budget);
    for &i in &order {
        if allowed <= 0 {
            break;
        }
        let cut = targets[i].min(allowed);
        targets[i] -= cut;
        allowed -= cut;
    }
    targets
}

/// Zero reads as absent, as Go's `omitempty` writes it.
fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// `calculateStatus` plus the Progressing condition of `syncRolloutStatus`.
pub fn deployment_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    created_new: bool,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let old = d.status.clone().unwrap_or_default();
    let replicas = desired_replicas(d);
    let (_, max_unavailable) = surge_and_unavailable(d);
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| all.iter().map(|rs| f(rs)).sum::<i32>();
    let actual = sum(&|rs| status_num(rs, |s| Some(s.replicas)));
    let ready = sum(&|rs| status_num(rs, |s| s.ready_replicas));
    let avail = sum(&|rs| available(rs));
    let total_spec = sum(&|rs| spec_replicas(rs));
    let updated = new_rs
        .map(|rs| status_num(rs, |s| Some(s.replicas)))
        .unwrap_or(0);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nonzero(actual),
        updated_replicas: nonzero(updated),
        ready_replicas: nonzero(ready),
        available_replicas: nonzero(avail),
        unavailable_replicas: nonzero((total_spec - avail).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    let available_cond = if avail >= replicas - max_unavailable {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    set_condition(&mut status, available_cond, now);

    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let rs_name = new_rs
        .and_then(|rs| rs.metadata.name.clone())
        .unwrap_or_default();
    let complete = updated == replicas && actual == replicas && avail == replicas;
    let progressing = if paused {
        Some(condition(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
        ))
    } else if created_new {
        Some(condition(
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            &format!("Created new replica set \"{rs_name}\""),
        ))
    } else if new_rs.is_none() {
        None
    } else if complete {
        Some(condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        ))
    } else {
        Some(condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs_name}\" is progressing."),
        ))
    };
    if let Some(c) = progressing {
        set_condition(&mut status, c, now);
    }
    status
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_transition_time: None,
        last_update_time: None,
    }
}

/// `SetDeploymentCondition`, made idempotent: an unchanged condition keeps
/// its times (so a reconcile that changes nothing writes nothing), a changed
/// one gets `lastUpdateTime` now, and `lastTransitionTime` moves only when
/// the status flips.
fn set_condition(
    status: &mut DeploymentStatus,
    mut new: DeploymentCondition,
    now: jiff::Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let now = Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now));
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status == new.status
                && existing.reason == new.reason
                && existing.message == new.message
            {
                return;
            }
            new.last_update_time = Some(now.clone());
            new.last_transition_time = if existing.status == new.status {
                existing.last_transition_time.clone().or(Some(now))
            } else {
                Some(now)
            };
            *existing = new;
        }
        None => {
            new.last_update_time = Some(now.clone());
            new.last_transition_time = Some(now);
            conditions.push(new);
        }
    }
}
