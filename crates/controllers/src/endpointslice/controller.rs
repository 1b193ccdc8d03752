//! The EndpointSlice controller's loop: a Service, a Pod it selects, or one
//! of its slices changing queues the Service; a reconcile applies
//! `plan_endpoint_slices`.

use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio_util::sync::CancellationToken;

use super::plan::{is_managed_for, plan_endpoint_slices, SERVICE_NAME};
use crate::caches::{all_synced, Caches};
use crate::endpoints::services_selecting;
use crate::names::generate_name;
use crate::owners::controller_of;
use crate::runtime::{run_worker, Action, Cache, Change, ObjectRef, TypedApi, WorkQueue};
use crate::ControllerError;

/// Tries for a random slice name.
const NAME_ATTEMPTS: usize = 3;

pub struct EndpointSliceController {
    services: Arc<Cache<Service>>,
    pods: Arc<Cache<Pod>>,
    slices: TypedApi<EndpointSlice>,
    queue: Arc<WorkQueue<ObjectRef>>,
}

impl EndpointSliceController {
    pub fn new(client: &client::Client, caches: &Caches) -> EndpointSliceController {
        let queue = WorkQueue::new();
        let q = queue.clone();
        caches.services.on_change(move |c| match c {
            Change::Applied { new, .. } => q.add(ObjectRef::of(&new.metadata)),
            Change::Deleted(old) => q.add(ObjectRef::of(&old.metadata)),
        });
        let (q, services) = (queue.clone(), caches.services.clone());
        caches.pods.on_change(move |c| {
            for key in services_selecting(&services, c) {
                q.add(key);
            }
        });
        let q = queue.clone();
        caches.endpoint_slices.on_change(move |c| {
            let meta = match c {
                Change::Applied { new, .. } => &new.metadata,
                Change::Deleted(old) => &old.metadata,
            };
            if let Some(service) = meta.labels.as_ref().and_then(|l| l.get(SERVICE_NAME)) {
                q.add(ObjectRef::new(
                    meta.namespace.as_deref().unwrap_or_default(),
                    service,
                ));
            }
        });
        EndpointSliceController {
            services: caches.services.clone(),
            pods: caches.pods.clone(),
            slices: caches.endpoint_slices_api(client),
            queue,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let ready = async {
            all_synced(&[&*self.services, &*self.pods, &*self.slices.cache]).await;
        };
        let this = &self;
        run_worker(
            "endpointslice",
            self.queue.clone(),
            ready,
            shutdown,
            |key| this.reconcile(key),
        )
        .await;
    }

    async fn reconcile(&self, key: ObjectRef) -> Result<Action, ControllerError> {
        let svc = self.services.get_ref(&key);
        let managed = self.slices.cache.list(Some(&key.namespace));
        let svc_uid = svc.as_ref().and_then(|s| s.metadata.uid.clone());
        // Slices of an earlier Service of the same name go at once.
        let (current, stale): (Vec<&EndpointSlice>, Vec<&EndpointSlice>) = managed
            .iter()
            .map(|s| s.as_ref())
            .filter(|s| is_managed_for(s, &key.name))
            .partition(|s| {
                svc_uid.is_none()
                    || controller_of(&s.metadata).is_none_or(|o| Some(&o.uid) == svc_uid.as_ref())
            });
        let pods = self.pods.list(Some(&key.namespace));
        let pods: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let mut plan = plan_endpoint_slices(svc.as_deref(), &pods, &current, &mut generate_name);
        plan.delete
            .extend(stale.iter().filter_map(|s| s.metadata.name.clone()));

        let doomed: Vec<ObjectRef> = plan
            .delete
            .iter()
            .map(|n| ObjectRef::new(&key.namespace, n))
            .collect();
        let (created, updated, deleted) = futures::join!(
            join_all(plan.create.iter().map(|s| self.create(s))),
            join_all(
                plan.update
                    .iter()
                    .map(|s| async { self.slices.replace(s).await.map(|_| ()) })
            ),
            join_all(doomed.iter().map(|r| self.slices.delete(r))),
        );
        created
            .into_iter()
            .chain(updated)
            .chain(deleted)
            .collect::<Result<Vec<()>, _>>()?;
        Ok(Action::done())
    }

    async fn create(&self, slice: &EndpointSlice) -> Result<(), ControllerError> {
        let mut slice = slice.clone();
        let prefix = slice.metadata.generate_name.clone().unwrap_or_default();
        for _ in 0..NAME_ATTEMPTS {
            match self.slices.create(&slice).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_already_exists() => {
                    slice.metadata.name = Some(generate_name(&prefix))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
