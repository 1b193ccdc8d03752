//! The Endpoints controller's loop: a Service, a Pod it selects (before or
//! after a change) or its Endpoints changing queues the Service; a
//! reconcile applies `plan_endpoints`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use tokio_util::sync::CancellationToken;

use super::plan::{plan_endpoints, EndpointsAction};
use crate::caches::{all_synced, Caches};
use crate::runtime::{run_worker, Action, Cache, Change, ObjectRef, TypedApi, WorkQueue};
use crate::ControllerError;

pub struct EndpointsController {
    services: Arc<Cache<Service>>,
    pods: Arc<Cache<Pod>>,
    endpoints: TypedApi<Endpoints>,
    queue: Arc<WorkQueue<ObjectRef>>,
    /// Services seen deleted whose Endpoints are still to be removed.
    deleted: Arc<Mutex<HashSet<ObjectRef>>>,
}

impl EndpointsController {
    pub fn new(client: &client::Client, caches: &Caches) -> EndpointsController {
        let queue = WorkQueue::new();
        let deleted = Arc::new(Mutex::new(HashSet::new()));
        let (q, d) = (queue.clone(), deleted.clone());
        caches.services.on_change(move |c| match c {
            Change::Applied { new, .. } => q.add(ObjectRef::of(&new.metadata)),
            Change::Deleted(old) => {
                let key = ObjectRef::of(&old.metadata);
                d.lock().unwrap().insert(key.clone());
                q.add(key);
            }
        });
        let (q, services) = (queue.clone(), caches.services.clone());
        caches.pods.on_change(move |c| {
            for key in services_selecting(&services, c) {
                q.add(key);
            }
        });
        let q = queue.clone();
        caches.endpoints.on_change(move |c| {
            let meta = match c {
                Change::Applied { new, .. } => &new.metadata,
                Change::Deleted(old) => &old.metadata,
            };
            q.add(ObjectRef::of(meta));
        });
        EndpointsController {
            services: caches.services.clone(),
            pods: caches.pods.clone(),
            endpoints: caches.endpoints_api(client),
            queue,
            deleted,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let ready = async {
            all_synced(&[&*self.services, &*self.pods, &*self.endpoints.cache]).await;
        };
        let this = &self;
        run_worker("endpoints", self.queue.clone(), ready, shutdown, |key| {
            this.reconcile(key)
        })
        .await;
    }

    async fn reconcile(&self, key: ObjectRef) -> Result<Action, ControllerError> {
        let svc = self.services.get_ref(&key);
        let existing = self.endpoints.cache.get_ref(&key);
        let pods = self.pods.list(Some(&key.namespace));
        let pods: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let was_deleted = svc.is_none() && self.deleted.lock().unwrap().contains(&key);
        match plan_endpoints(svc.as_deref(), &pods, existing.as_deref(), was_deleted) {
            EndpointsAction::Nothing => {}
            EndpointsAction::Create(ep) => {
                self.endpoints.create(&ep).await?;
            }
            EndpointsAction::Update(ep) => {
                self.endpoints.replace(&ep).await?;
            }
            EndpointsAction::Delete => self.endpoints.delete(&key).await?,
        }
        if svc.is_none() {
            self.deleted.lock().unwrap().remove(&key);
        }
        Ok(Action::done())
    }
}

/// The Services whose selector picks the changed Pod, before or after the
/// change (a relabelled Pod leaves one Service and joins another).
pub fn services_selecting(services: &Cache<Service>, change: &Change<'_, Pod>) -> Vec<ObjectRef> {
    let (old, new) = match change {
        Change::Applied { old, new } => (*old, Some(*new)),
        Change::Deleted(old) => (Some(*old), None),
    };
    let Some(ns) = new.or(old).and_then(|p| p.metadata.namespace.clone()) else {
        return Vec::new();
    };
    services
        .list(Some(&ns))
        .iter()
        .filter(|svc| {
            let Some(selector) = super::plan::selector_of(svc) else {
                return false;
            };
            [old, new]
                .into_iter()
                .flatten()
                .any(|p| crate::labels::map_selects(selector, p.metadata.labels.as_ref()))
        })
        .map(|svc| ObjectRef::of(&svc.metadata))
        .collect()
}
