//! The caches the controllers share: one watch per kind for all of them,
//! like the shared informers of kube-controller-manager.

use std::sync::Arc;

use api::registry::{
    ResourceInfo, DEPLOYMENTS, ENDPOINTS, ENDPOINT_SLICES, NODES, PODS, REPLICA_SETS, SERVICES,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::runtime::{feed_cache, Cache, TypedApi};

#[derive(Clone)]
pub struct Caches {
    pub pods: Arc<Cache<Pod>>,
    pub replica_sets: Arc<Cache<ReplicaSet>>,
    pub deployments: Arc<Cache<Deployment>>,
    pub services: Arc<Cache<Service>>,
    pub endpoints: Arc<Cache<Endpoints>>,
    pub endpoint_slices: Arc<Cache<EndpointSlice>>,
    pub nodes: Arc<Cache<Node>>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            pods: Cache::new(),
            replica_sets: Cache::new(),
            deployments: Cache::new(),
            services: Cache::new(),
            endpoints: Cache::new(),
            endpoint_slices: Cache::new(),
            nodes: Cache::new(),
        }
    }
}

impl Caches {
    pub fn new() -> Caches {
        Caches::default()
    }

    /// Start one watch per kind; they stop at shutdown.
    pub fn feed(
        &self,
        client: &client::Client,
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) {
        fn spawn<K>(
            tasks: &mut JoinSet<()>,
            client: &client::Client,
            res: &'static ResourceInfo,
            cache: &Arc<Cache<K>>,
            shutdown: &CancellationToken,
        ) where
            K: Metadata<Ty = ObjectMeta> + DeserializeOwned + Send + Sync + 'static,
        {
            tasks.spawn(feed_cache(
                client.clone(),
                res,
                cache.clone(),
                shutdown.clone(),
            ));
        }
        spawn(tasks, client, &PODS, &self.pods, shutdown);
        spawn(tasks, client, &REPLICA_SETS, &self.replica_sets, shutdown);
        spawn(tasks, client, &DEPLOYMENTS, &self.deployments, shutdown);
        spawn(tasks, client, &SERVICES, &self.services, shutdown);
        spawn(tasks, client, &ENDPOINTS, &self.endpoints, shutdown);
        spawn(
            tasks,
            client,
            &ENDPOINT_SLICES,
            &self.endpoint_slices,
            shutdown,
        );
        spawn(tasks, client, &NODES, &self.nodes, shutdown);
    }

    /// Typed API handles over these caches.
    pub fn pods_api(&self, client: &client::Client) -> TypedApi<Pod> {
        TypedApi::new(client.clone(), &PODS, self.pods.clone())
    }
    pub fn replica_sets_api(&self, client: &client::Client) -> TypedApi<ReplicaSet> {
        TypedApi::new(client.clone(), &REPLICA_SETS, self.replica_sets.clone())
    }
    pub fn deployments_api(&self, client: &client::Client) -> TypedApi<Deployment> {
        TypedApi::new(client.clone(), &DEPLOYMENTS, self.deployments.clone())
    }
    pub fn services_api(&self, client: &client::Client) -> TypedApi<Service> {
        TypedApi::new(client.clone(), &SERVICES, self.services.clone())
    }
    pub fn endpoints_api(&self, client: &client::Client) -> TypedApi<Endpoints> {
        TypedApi::new(client.clone(), &ENDPOINTS, self.endpoints.clone())
    }
    pub fn endpoint_slices_api(&self, client: &client::Client) -> TypedApi<EndpointSlice> {
        TypedApi::new(
            client.clone(),
            &ENDPOINT_SLICES,
            self.endpoint_slices.clone(),
        )
    }
}

/// Wait for the first list of every cache given.
pub async fn all_synced(caches: &[&dyn Synced]) {
    for c in caches {
        c.wait().await;
    }
}

/// A cache whose first list can be awaited, whatever its kind.
pub trait Synced: Send + Sync {
    fn wait(&self) -> futures::future::BoxFuture<'_, ()>;
}

impl<K> Synced for Cache<K>
where
    K: Resource + Metadata<Ty = ObjectMeta> + Serialize + Send + Sync + 'static,
{
    fn wait(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.synced())
    }
}
