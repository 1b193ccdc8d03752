use super::*;
use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStrategy, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn labels() -> crate::labels::Labels {
    [("app".to_string(), "web".to_string())].into()
}

fn deployment(replicas: i32, image: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("d-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "nginx".into(),
                        image: Some(image.into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(50_000).unwrap()
}

/// A tiny cluster: applies a plan to the ReplicaSets and then lets every
/// ReplicaSet's Pods come up (status follows spec at once).
struct World {
    rs: Vec<ReplicaSet>,
    next: i64,
}

impl World {
    fn new() -> World {
        World {
            rs: Vec::new(),
            next: 0,
        }
    }

    fn refs(&self) -> Vec<&ReplicaSet> {
        self.rs.iter().collect()
    }

    fn apply(&mut self, plan: &DeploymentPlan) {
        if let Some(rs) = &plan.create {
            let mut rs = rs.clone();
            self.next += 1;
            rs.metadata.uid = Some(format!("rs-{}", self.next));
            rs.metadata.creation_timestamp =
                Some(Time(jiff::Timestamp::from_second(self.next).unwrap()));
            self.rs.push(rs);
        }
        for u in &plan.update {
            let slot = self
                .rs
                .iter_mut()
                .find(|r| r.metadata.uid == u.metadata.uid)
                .unwrap();
            *slot = u.clone();
        }
        self.rs
            .retain(|r| !plan.delete.contains(r.metadata.name.as_ref().unwrap()));
    }

    fn pods_come_up(&mut self) {
        for rs in &mut self.rs {
            let n = rollout::spec_replicas(rs);
            rs.status = Some(ReplicaSetStatus {
                replicas: n,
                ready_replicas: Some(n),
                available_replicas: Some(n),
                ..Default::default()
            });
        }
    }

    fn by_image(&self, image: &str) -> &ReplicaSet {
        self.rs
            .iter()
            .find(|rs| {
                rs.spec
                    .as_ref()
                    .unwrap()
                    .template
                    .as_ref()
                    .unwrap()
                    .spec
                    .as_ref()
                    .unwrap()
                    .containers[0]
                    .image
                    .as_deref()
                    == Some(image)
            })
            .unwrap()
    }
}

fn condition<'a>(
    s: &'a DeploymentStatus,
    type_: &str,
) -> &'a k8s_openapi::api::apps::v1::DeploymentCondition {
    s.conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap()
}

#[test]
fn first_reconcile_creates_the_hashed_replica_set() {
    let d = deployment(3, "nginx");
    let plan = plan_deployment(&d, &[], now());
    let rs = plan.create.as_ref().expect("a new ReplicaSet");
    let hash = pod_template_hash(&d.spec.as_ref().unwrap().template, None);
    assert_eq!(
        rs.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap()[POD_TEMPLATE_HASH],
        hash
    );
    let tlabels = spec
        .template
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(tlabels[POD_TEMPLATE_HASH], hash);
    assert_eq!(tlabels["app"], "web");
    assert_eq!(
        rs.metadata.labels.as_ref().unwrap()[POD_TEMPLATE_HASH],
        hash
    );
    assert_eq!(rs.metadata.annotations.as_ref().unwrap()[REVISION], "1");
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.uid.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("Deployment", "d-uid", Some(true), Some(true))
    );
    assert_eq!(plan.revision.as_deref(), Some("1"));
    assert_eq!(
        condition(&plan.status, "Progressing").reason.as_deref(),
        Some("NewReplicaSetCreated")
    );
}

#[test]
fn steady_state_is_a_fixed_point() {
    let mut d = deployment(3, "nginx");
    let mut world = World::new();
    world.apply(&plan_deployment(&d, &world.refs(), now()));
    world.pods_come_up();
    let plan = plan_deployment(&d, &world.refs(), now());
    assert!(plan.create.is_none());
    assert_eq!(plan.status.available_replicas, Some(3));
    assert_eq!(plan.status.updated_replicas, Some(3));
    assert_eq!(plan.status.observed_generation, Some(1));
    assert_eq!(condition(&plan.status, "Available").status, "True");
    assert_eq!(
        condition(&plan.status, "Progressing").message.as_deref(),
        Some(
            format!(
                "ReplicaSet \"{}\" has successfully progressed.",
                world.rs[0].metadata.name.as_ref().unwrap()
            )
            .as_str()
        )
    );
    // Write what the plan said, then reconcile later: nothing changes.
    world.apply(&plan);
    d.status = Some(plan.status.clone());
    d.metadata.annotations = Some([(REVISION.to_string(), "1".to_string())].into());
    let later = jiff::Timestamp::from_second(99_000).unwrap();
    let again = plan_deployment(&d, &world.refs(), later);
    assert!(again.create.is_none() && again.update.is_empty() && again.delete.is_empty());
    assert_eq!(again.revision, None);
    assert_eq!(
        again.status, plan.status,
        "unchanged conditions keep their times"
    );
}

#[test]
fn scaling_changes_only_the_replica_count() {
    let mut world = World::new();
    world.apply(&plan_deployment(&deployment(3, "nginx"), &[], now()));
    world.pods_come_up();
    let plan = plan_deployment(&deployment(5, "nginx"), &world.refs(), now());
    assert!(plan.create.is_none());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(rollout::spec_replicas(&plan.update[0]), 5);
    assert_eq!(
        plan.update[0].metadata.annotations.as_ref().unwrap()[DESIRED_REPLICAS],
        "5"
    );
}

#[test]
fn rolling_update_respects_surge_and_unavailability() {
    let mut world = World::new();
    world.apply(&plan_deployment(&deployment(4, "nginx"), &[], now()));
    world.pods_come_up();
    let d = deployment(4, "nginx:2");
    // maxSurge 25% of 4 = 1, maxUnavailable 25% of 4 = 1.
    for step in 0..20 {
        let plan = plan_deployment(&d, &world.refs(), now());
        world.apply(&plan);
        let total: i32 = world.rs.iter().map(rollout::spec_replicas).sum();
        assert!(
            total <= 5,
            "step {step}: {total} Pods exceed replicas + maxSurge"
        );
        world.pods_come_up();
        let available: i32 = world.rs.iter().map(rollout::available).sum();
        assert!(available >= 3, "step {step}: only {available} available");
    }
    assert_eq!(rollout::spec_replicas(world.by_image("nginx:2")), 4);
    assert_eq!(rollout::spec_replicas(world.by_image("nginx")), 0);
    assert_eq!(rollout::revision(world.by_image("nginx:2")), 2);
    let plan = plan_deployment(&d, &world.refs(), now());
    assert_eq!(plan.revision.as_deref(), Some("2"));
    assert_eq!(plan.status.replicas, Some(4));
}

#[test]
fn rolling_back_makes_the_old_template_the_newest_revision() {
    let mut world = World::new();
    for image in ["nginx", "nginx:2"] {
        let d = deployment(2, image);
        for _ in 0..10 {
            let plan = plan_deployment(&d, &world.refs(), now());
            world.apply(&plan);
            world.pods_come_up();
        }
    }
    let d = deployment(2, "nginx");
    let plan = plan_deployment(&d, &world.refs(), now());
    assert!(plan.create.is_none(), "the old ReplicaSet is reused");
    let back = plan
        .update
        .iter()
        .find(|rs| rs.metadata.uid == world.by_image("nginx").metadata.uid)
        .unwrap();
    assert_eq!(rollout::revision(back), 3);
}

#[test]
fn recreate_waits_for_old_pods_to_go() {
    let mut world = World::new();
    world.apply(&plan_deployment(&deployment(2, "nginx"), &[], now()));
    world.pods_come_up();
    let mut d = deployment(2, "nginx:2");
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    let plan = plan_deployment(&d, &world.refs(), now());
    assert!(plan.create.is_none(), "old Pods still run");
    assert_eq!(rollout::spec_replicas(&plan.update[0]), 0);
    world.apply(&plan);
    world.pods_come_up();
    let plan = plan_deployment(&d, &world.refs(), now());
    assert_eq!(rollout::spec_replicas(plan.create.as_ref().unwrap()), 2);
}

#[test]
fn explicit_budgets_and_fenceposts() {
    let mut d = deployment(10, "nginx");
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::String("0%".into())),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    });
    assert_eq!(rollout::surge_and_unavailable(&d), (0, 1));
    assert_eq!(rollout::surge_and_unavailable(&deployment(10, "x")), (3, 2));
}

#[test]
fn old_revisions_beyond_the_history_limit_are_deleted() {
    let mut world = World::new();
    for i in 0..4 {
        let mut d = deployment(1, &format!("nginx:{i}"));
        d.spec.as_mut().unwrap().revision_history_limit = Some(2);
        for _ in 0..6 {
            let plan = plan_deployment(&d, &world.refs(), now());
            world.apply(&plan);
            world.pods_come_up();
        }
    }
    let kept: Vec<i64> = world.rs.iter().map(rollout::revision).collect();
    assert_eq!(world.rs.len(), 3, "current + 2 old: {kept:?}");
    assert!(kept.contains(&4) && kept.contains(&3) && kept.contains(&2));
}

#[test]
fn change_cause_is_copied_but_client_bookkeeping_is_not() {
    let mut d = deployment(1, "nginx");
    d.metadata.annotations = Some(
        [
            ("kubernetes.io/change-cause".to_string(), "v1".to_string()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{}".to_string(),
            ),
            (REVISION.to_string(), "7".to_string()),
        ]
        .into(),
    );
    let plan = plan_deployment(&d, &[], now());
    let annotations = plan.create.unwrap().metadata.annotations.unwrap();
    assert_eq!(annotations["kubernetes.io/change-cause"], "v1");
    assert_eq!(annotations[REVISION], "1");
    assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
}

#[test]
fn the_hash_named_replica_set_is_found_even_if_defaulting_changed_it() {
    let d = deployment(2, "nginx");
    let mut world = World::new();
    world.apply(&plan_deployment(&d, &[], now()));
    // The stored template gained a defaulted field.
    let spec = world.rs[0].spec.as_mut().unwrap();
    let pod = spec.template.as_mut().unwrap().spec.as_mut().unwrap();
    pod.restart_policy = Some("Always".into());
    world.pods_come_up();
    let plan = plan_deployment(&d, &world.refs(), now());
    assert!(plan.create.is_none());
    assert_eq!(plan.status.collision_count, None);
    assert_eq!(plan.status.updated_replicas, Some(2));
}
