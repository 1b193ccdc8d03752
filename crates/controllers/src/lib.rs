//! The controllers of minik8s, run inside the server process and talking to
//! the API over HTTP like any client (so what users see and what the
//! controllers act on cannot drift apart). Each controller follows the
//! kube-runtime pattern: a watched cache feeds a coalescing queue, and an
//! idempotent reconcile applies a pure `plan_*` function's decision.
//!
//! | controller | watches | writes |
//! |---|---|---|
//! | [`DeploymentController`] | Deployments, ReplicaSets | ReplicaSets, Deployment status |
//! | [`ReplicaSetController`] | ReplicaSets, Pods | Pods, ReplicaSet status |
//! | [`Scheduler`] | Pods, Nodes | `pods/binding`, PodScheduled |
//! | [`EndpointsController`] | Services, Pods, Endpoints | Endpoints |
//! | [`EndpointSliceController`] | Services, Pods, EndpointSlices | EndpointSlices |
//! | [`GarbageCollector`] | everything cached | deletes orphans |
//! | [`LoadBalancerController`] | Services | `services/status` |

pub mod caches;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
mod error;
pub mod events;
pub mod garbage_collector;
pub mod labels;
pub mod load_balancer;
pub mod names;
pub mod owners;
pub mod pod_state;
pub mod replicaset;
pub mod runtime;
pub mod scheduler;

use std::net::Ipv4Addr;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use caches::Caches;
pub use deployment::DeploymentController;
pub use endpoints::EndpointsController;
pub use endpointslice::EndpointSliceController;
pub use error::ControllerError;
pub use garbage_collector::GarbageCollector;
pub use load_balancer::{AddressPool, LoadBalancerController};
pub use replicaset::ReplicaSetController;
pub use scheduler::Scheduler;

/// What the server configures about its controllers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControllersConfig {
    /// First and last address (inclusive) the built-in load-balancer
    /// provider hands to Services of type LoadBalancer. None: no provider,
    /// their EXTERNAL-IP stays `<pending>` (see [`AddressPool::from_cidr`]).
    pub lb_pool: Option<(Ipv4Addr, Ipv4Addr)>,
}

/// Run every controller until `shutdown` fires; returns once all have
/// stopped.
pub async fn run(client: client::Client, config: ControllersConfig, shutdown: CancellationToken) {
    // Our own token, so a failing controller stops its siblings without
    // cancelling the caller's.
    let shutdown = shutdown.child_token();
    let caches = Caches::new();
    // Controllers register their handlers before any cache is fed, so each
    // sees the initial lists.
    let deployments = DeploymentController::new(&client, &caches);
    let replica_sets = ReplicaSetController::new(&client, &caches);
    let scheduler = Scheduler::new(&client, &caches);
    let endpoints = EndpointsController::new(&client, &caches);
    let slices = EndpointSliceController::new(&client, &caches);
    let gc = GarbageCollector::new(&client, &caches);
    let lb = config.lb_pool.map(|(first, last)| {
        LoadBalancerController::new(&client, &caches, AddressPool::new(first, last))
    });

    let mut tasks = JoinSet::new();
    caches.feed(&client, &mut tasks, &shutdown);
    tasks.spawn(deployments.run(shutdown.clone()));
    tasks.spawn(replica_sets.run(shutdown.clone()));
    tasks.spawn(scheduler.run(shutdown.clone()));
    tasks.spawn(endpoints.run(shutdown.clone()));
    tasks.spawn(slices.run(shutdown.clone()));
    tasks.spawn(gc.run(shutdown.clone()));
    if let Some(lb) = lb {
        tasks.spawn(lb.run(shutdown.clone()));
    }
    tracing::info!("controllers running");
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            if e.is_panic() {
                // A bug in one controller: say so and stop the rest, so the
                // supervisor sees the component end and can restart it.
                tracing::error!(error = %e, "a controller panicked");
                shutdown.cancel();
            }
        }
    }
}
