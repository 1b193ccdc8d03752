//! The garbage collector's loop over every cached kind: an object with
//! owners is checked when it changes and when one of its owners is
//! deleted; an owner missing from the cache is confirmed with a GET before
//! anything is deleted (the caches of different kinds are not in step).

use std::sync::Arc;

use api::registry::{
    ResourceInfo, DEPLOYMENTS, ENDPOINTS, ENDPOINT_SLICES, NODES, PODS, REPLICA_SETS, SERVICES,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Metadata;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::plan::{owner_location, owner_state, plan_collection, OwnerState, Verdict};
use crate::caches::{all_synced, Caches, Synced};
use crate::runtime::cache::revision;
use crate::runtime::{run_worker, Action, Cache, Change, ObjectRef, WorkQueue};
use crate::ControllerError;

/// A dependent to check: its kind (index into the indexes) and key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DependentKey {
    kind: usize,
    plural: &'static str,
    object: ObjectRef,
}

impl std::fmt::Display for DependentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.plural, self.object)
    }
}

/// One cached kind seen without its type: what the collector needs.
trait Index: Send + Sync {
    fn resource(&self) -> &'static ResourceInfo;
    fn metadata(&self, r: &ObjectRef) -> Option<ObjectMeta>;
    fn uid_of(&self, r: &ObjectRef) -> Option<String>;
    /// Objects that name `uid` among their owners.
    fn dependents_of(&self, uid: &str) -> Vec<ObjectRef>;
    fn synced(&self) -> &dyn Synced;
}

struct Indexed<K> {
    res: &'static ResourceInfo,
    cache: Arc<Cache<K>>,
}

impl<K> Index for Indexed<K>
where
    K: k8s_openapi::Resource + Metadata<Ty = ObjectMeta> + serde::Serialize + Send + Sync + 'static,
{
    fn resource(&self) -> &'static ResourceInfo {
        self.res
    }
    fn metadata(&self, r: &ObjectRef) -> Option<ObjectMeta> {
        self.cache.get_ref(r).map(|o| o.metadata().clone())
    }
    fn uid_of(&self, r: &ObjectRef) -> Option<String> {
        self.cache.get_ref(r).and_then(|o| o.metadata().uid.clone())
    }
    fn dependents_of(&self, uid: &str) -> Vec<ObjectRef> {
        self.cache
            .list(None)
            .iter()
            .filter(|o| {
                o.metadata()
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == uid)
            })
            .map(|o| ObjectRef::of(o.metadata()))
            .collect()
    }
    fn synced(&self) -> &dyn Synced {
        &*self.cache
    }
}

pub struct GarbageCollector {
    client: client::Client,
    indexes: Arc<Vec<Box<dyn Index>>>,
    queue: Arc<WorkQueue<DependentKey>>,
}

impl GarbageCollector {
    pub fn new(client: &client::Client, caches: &Caches) -> GarbageCollector {
        fn boxed<K>(res: &'static ResourceInfo, cache: &Arc<Cache<K>>) -> Box<dyn Index>
        where
            K: k8s_openapi::Resource
                + Metadata<Ty = ObjectMeta>
                + serde::Serialize
                + Send
                + Sync
                + 'static,
        {
            Box::new(Indexed {
                res,
                cache: cache.clone(),
            })
        }
        let indexes: Arc<Vec<Box<dyn Index>>> = Arc::new(vec![
            boxed(&PODS, &caches.pods),
            boxed(&REPLICA_SETS, &caches.replica_sets),
            boxed(&DEPLOYMENTS, &caches.deployments),
            boxed(&SERVICES, &caches.services),
            boxed(&ENDPOINTS, &caches.endpoints),
            boxed(&ENDPOINT_SLICES, &caches.endpoint_slices),
            boxed(&NODES, &caches.nodes),
        ]);
        let queue = WorkQueue::new();
        let gc = GarbageCollector {
            client: client.clone(),
            indexes: indexes.clone(),
            queue: queue.clone(),
        };
        gc.watch(0, &caches.pods);
        gc.watch(1, &caches.replica_sets);
        gc.watch(2, &caches.deployments);
        gc.watch(3, &caches.services);
        gc.watch(4, &caches.endpoints);
        gc.watch(5, &caches.endpoint_slices);
        gc.watch(6, &caches.nodes);
        gc
    }

    fn watch<K>(&self, kind: usize, cache: &Arc<Cache<K>>)
    where
        K: Metadata<Ty = ObjectMeta> + Send + Sync + 'static,
    {
        let queue = self.queue.clone();
        let indexes = self.indexes.clone();
        let plural = indexes[kind].resource().plural;
        cache.on_change(move |c| match c {
            Change::Applied { new, .. } => {
                let meta = new.metadata();
                if meta
                    .owner_references
                    .as_ref()
                    .is_some_and(|r| !r.is_empty())
                {
                    queue.add(DependentKey {
                        kind,
                        plural,
                        object: ObjectRef::of(meta),
                    });
                }
            }
            Change::Deleted(old) => {
                // An owner went: check everything that named it.
                let Some(uid) = old.metadata().uid.as_deref() else {
                    return;
                };
                for (i, index) in indexes.iter().enumerate() {
                    for object in index.dependents_of(uid) {
                        queue.add(DependentKey {
                            kind: i,
                            plural: index.resource().plural,
                            object,
                        });
                    }
                }
            }
        });
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let indexes = self.indexes.clone();
        let ready = async move {
            let synced: Vec<&dyn Synced> = indexes.iter().map(|i| i.synced()).collect();
            all_synced(&synced).await;
        };
        let this = &self;
        run_worker(
            "garbagecollector",
            self.queue.clone(),
            ready,
            shutdown,
            |key| this.reconcile(key),
        )
        .await;
    }

    async fn reconcile(&self, key: DependentKey) -> Result<Action, ControllerError> {
        let index = &self.indexes[key.kind];
        let Some(meta) = index.metadata(&key.object) else {
            return Ok(Action::done());
        };
        if meta.deletion_timestamp.is_some() {
            return Ok(Action::done());
        }
        let references = meta.owner_references.clone().unwrap_or_default();
        let mut states = Vec::with_capacity(references.len());
        for reference in &references {
            states.push((
                reference,
                self.owner_state(reference, &key.object.namespace).await?,
            ));
        }
        let res = index.resource();
        let ns = key.object.ns();
        match plan_collection(&states) {
            Verdict::Keep => {}
            Verdict::Delete => {
                tracing::debug!(dependent = %key, "owner gone; deleting");
                match self.client.delete(res, ns, &key.object.name).await {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Verdict::DropReferences(uids) => {
                let kept: Vec<_> = references
                    .iter()
                    .filter(|r| !uids.contains(&r.uid))
                    .collect();
                // resourceVersion makes the patch conditional: the owners
                // were judged on this version.
                let patch = json!({"metadata": {
                    "ownerReferences": kept,
                    "resourceVersion": revision(&meta).to_string(),
                }});
                self.client
                    .patch(res, ns, &key.object.name, client::PatchType::Merge, &patch)
                    .await?;
            }
        }
        Ok(Action::done())
    }

    /// The cache answers "present"; an owner the cache lacks is confirmed
    /// absent with a GET, since its creation may simply not have arrived.
    async fn owner_state(
        &self,
        reference: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
        namespace: &str,
    ) -> Result<OwnerState, ControllerError> {
        let Some((res, ns)) = owner_location(reference, namespace) else {
            return Ok(OwnerState::Unknown);
        };
        let owner = ObjectRef::new(ns, &reference.name);
        if let Some(index) = self.indexes.iter().find(|i| i.resource() == res) {
            if index.uid_of(&owner).as_deref() == Some(reference.uid.as_str()) {
                return Ok(OwnerState::Present);
            }
        }
        match self.client.get(res, owner.ns(), &owner.name).await {
            Ok(v) => Ok(owner_state(reference, v["metadata"]["uid"].as_str())),
            Err(e) if e.is_not_found() => Ok(OwnerState::Absent),
            Err(e) => Err(e.into()),
        }
    }
}
