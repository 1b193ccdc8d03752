//! The Deployment controller's loop: events of Deployments and of the
//! ReplicaSets they own queue the Deployment; a reconcile applies
//! `plan_deployment`.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use tokio_util::sync::CancellationToken;

use super::plan::plan_deployment;
use super::rollout::REVISION;
use crate::caches::{all_synced, Caches};
use crate::owners::controller_of;
use crate::runtime::{run_worker, Action, Change, ObjectRef, TypedApi, WorkQueue};
use crate::ControllerError;

pub struct DeploymentController {
    deployments: TypedApi<Deployment>,
    replica_sets: TypedApi<ReplicaSet>,
    queue: Arc<WorkQueue<ObjectRef>>,
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
            tracing::debug!(deployment = %key, replicaset = ?rs.metadata.name, "created ReplicaSet");
        }
        for rs in &plan.update {
            self.replica_sets.replace(rs).await?;
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
}
