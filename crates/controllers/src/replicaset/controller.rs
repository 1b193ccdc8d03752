//! The ReplicaSet controller's loop: events of ReplicaSets and of the Pods
//! they own queue the ReplicaSet; a reconcile applies `plan_replica_set`.

use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use tokio_util::sync::CancellationToken;

use super::plan::plan_replica_set;
use crate::caches::{all_synced, Caches};
use crate::events::{EventRecorder, EventType};
use crate::names::generate_name;
use crate::owners::controller_of;
use crate::runtime::{run_worker, Action, Change, ObjectRef, TypedApi, WorkQueue};
use crate::ControllerError;

/// Tries for a Pod name before giving up until the next reconcile (names are
/// random; a clash with an existing Pod is possible, just unlikely).
const NAME_ATTEMPTS: usize = 3;

pub struct ReplicaSetController {
    replica_sets: TypedApi<ReplicaSet>,
    pods: TypedApi<Pod>,
    queue: Arc<WorkQueue<ObjectRef>>,
    events: EventRecorder,
}

impl ReplicaSetController {
    pub fn new(client: &client::Client, caches: &Caches) -> ReplicaSetController {
        let queue = WorkQueue::new();
        let q = queue.clone();
        caches.replica_sets.on_change(move |c| {
            if let Change::Applied { new, .. } = c {
                q.add(ObjectRef::of(&new.metadata));
            }
        });
        let q = queue.clone();
        caches.pods.on_change(move |c| {
            let (old, new) = match c {
                Change::Applied { old, new } => (*old, Some(*new)),
                Change::Deleted(old) => (Some(*old), None),
            };
            for pod in [old, new].into_iter().flatten() {
                if let Some(owner) = controller_of(&pod.metadata).filter(|o| o.kind == "ReplicaSet")
                {
                    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
                    q.add(ObjectRef::new(ns, &owner.name));
                }
            }
        });
        ReplicaSetController {
            replica_sets: caches.replica_sets_api(client),
            pods: caches.pods_api(client),
            queue,
            events: EventRecorder::new(client, "replicaset-controller"),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let ready = async {
            all_synced(&[&*self.replica_sets.cache, &*self.pods.cache]).await;
        };
        let this = &self;
        run_worker("replicaset", self.queue.clone(), ready, shutdown, |key| {
            this.reconcile(key)
        })
        .await;
    }

    async fn reconcile(&self, key: ObjectRef) -> Result<Action, ControllerError> {
        let Some(rs) = self.replica_sets.cache.get_ref(&key) else {
            return Ok(Action::done());
        };
        let pods = self.pods.cache.list(Some(&key.namespace));
        let pods: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let plan = plan_replica_set(&rs, &pods, jiff::Timestamp::now(), &mut generate_name);

        let creates = plan.create.iter().map(|pod| self.create_pod(&rs, pod));
        let doomed: Vec<ObjectRef> = plan
            .delete
            .iter()
            .map(|name| ObjectRef::new(&key.namespace, name))
            .collect();
        let deletes = doomed.iter().map(|r| async {
            self.pods.delete(r).await?;
            self.events.record(
                &*rs,
                EventType::Normal,
                "SuccessfulDelete",
                format!("Deleted pod: {}", r.name),
            );
            Ok::<(), ControllerError>(())
        });
        let (created, deleted) = futures::join!(join_all(creates), join_all(deletes));
        if !plan.create.is_empty() || !plan.delete.is_empty() {
            tracing::debug!(
                replicaset = %key,
                created = plan.create.len(),
                deleted = plan.delete.len(),
                "scaled"
            );
        }
        if rs.status.as_ref() != Some(&plan.status) {
            let status = plan.status.clone();
            self.replica_sets
                .write_status(&rs, |o| o.status = Some(status.clone()))
                .await?;
        }
        created
            .into_iter()
            .chain(deleted)
            .collect::<Result<Vec<()>, _>>()?;
        Ok(Action {
            requeue_after: plan.requeue_after,
        })
    }

    async fn create_pod(&self, rs: &ReplicaSet, pod: &Pod) -> Result<(), ControllerError> {
        let mut pod = pod.clone();
        let prefix = pod.metadata.generate_name.clone().unwrap_or_default();
        for _ in 0..NAME_ATTEMPTS {
            match self.pods.create(&pod).await {
                Ok(created) => {
                    let name = created.metadata.name.unwrap_or_default();
                    self.events.record(
                        rs,
                        EventType::Normal,
                        "SuccessfulCreate",
                        format!("Created pod: {name}"),
                    );
                    return Ok(());
                }
                Err(e) if e.is_already_exists() => pod.metadata.name = Some(generate_name(&prefix)),
                Err(e) => {
                    self.events.record(
                        rs,
                        EventType::Warning,
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    );
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}
