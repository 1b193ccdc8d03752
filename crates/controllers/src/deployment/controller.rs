//! The Deployment controller's loop: events of Deployments and of the
//! ReplicaSets they own queue the Deployment; a reconcile applies
//! `plan_deployment`.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use tokio_util::sync::CancellationToken;

use super::plan::plan_deployment;
use super::rollout::{self, REVISION};
use crate::caches::{all_synced, Caches};
use crate::events::{EventRecorder, EventType};
use crate::owners::controller_of;
use crate::runtime::{run_worker, Action, Change, ObjectRef, TypedApi, WorkQueue};
use crate::ControllerError;

pub struct DeploymentController {
    deployments: TypedApi<Deployment>,
    replica_sets: TypedApi<ReplicaSet>,
    queue: Arc<WorkQueue<ObjectRef>>,
    events: EventRecorder,
}

impl DeploymentController {
    pub fn new(client: &client::Client, caches: &Caches) -> DeploymentController {
        let queue = WorkQueue::new();
        let q = queue.clone();
        caches.deployments.on_change(move |c| {
            if let Change::Applied { new, .. } = c {
                q.add(ObjectRef::of(&new.metadata));
            }
        });
        let q = queue.clone();
        caches.replica_sets.on_change(move |c| {
            let (old, new) = match c {
                Change::Applied { old, new } => (*old, Some(*new)),
                Change::Deleted(old) => (Some(*old), None),
            };
            for rs in [old, new].into_iter().flatten() {
                if let Some(owner) = controller_of(&rs.metadata).filter(|o| o.kind == "Deployment")
                {
                    let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
                    q.add(ObjectRef::new(ns, &owner.name));
                }
            }
        });
        DeploymentController {
            deployments: caches.deployments_api(client),
            replica_sets: caches.replica_sets_api(client),
            queue,
            events: EventRecorder::new(client, "deployment-controller"),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let ready = async {
            all_synced(&[&*self.deployments.cache, &*self.replica_sets.cache]).await;
        };
        let this = &self;
        run_worker("deployment", self.queue.clone(), ready, shutdown, |key| {
            this.reconcile(key)
        })
        .await;
    }

    async fn reconcile(&self, key: ObjectRef) -> Result<Action, ControllerError> {
        let Some(d) = self.deployments.cache.get_ref(&key) else {
            return Ok(Action::done());
        };
        let all = self.replica_sets.cache.list(Some(&key.namespace));
        let all: Vec<&ReplicaSet> = all.iter().map(|rs| rs.as_ref()).collect();
        let plan = plan_deployment(&d, &all, jiff::Timestamp::now());

        if let Some(rs) = &plan.create {
            self.replica_sets.create(rs).await?;
            self.scaled(&d, rs, 0);
        }
        for rs in &plan.update {
            let before = self
                .replica_sets
                .cache
                .get_ref(&ObjectRef::of(&rs.metadata))
                .map_or(0, |old| rollout::spec_replicas(&old));
            self.replica_sets.replace(rs).await?;
            self.scaled(&d, rs, before);
        }
        for name in &plan.delete {
            self.replica_sets
                .delete(&ObjectRef::new(&key.namespace, name))
                .await?;
        }
        let mut current = (*d).clone();
        if let Some(revision) = &plan.revision {
            current
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(REVISION.to_string(), revision.clone());
            current = self.deployments.replace(&current).await?;
        }
        if current.status.as_ref() != Some(&plan.status) {
            let status = plan.status.clone();
            self.deployments
                .write_status(&current, |o| o.status = Some(status.clone()))
                .await?;
        }
        Ok(Action::done())
    }

    /// `ScalingReplicaSet`, as `describe deployment` lists the rollout.
    fn scaled(&self, d: &Deployment, rs: &ReplicaSet, from: i32) {
        let to = rollout::spec_replicas(rs);
        if to == from {
            return;
        }
        let direction = if to > from { "up" } else { "down" };
        let name = rs.metadata.name.as_deref().unwrap_or_default();
        self.events.record(
            d,
            EventType::Normal,
            "ScalingReplicaSet",
            format!("Scaled {direction} replica set {name} from {from} to {to}"),
        );
    }
}
