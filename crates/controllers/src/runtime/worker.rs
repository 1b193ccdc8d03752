//! Feeding caches from the API and running reconcilers over a queue: the
//! two loops every controller shares.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Metadata;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::cache::Cache;
use super::queue::WorkQueue;
use crate::ControllerError;

/// What a reconcile asks for besides what events will bring anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Action {
    /// Reconcile this key again after this long (a condition that no event
    /// announces, like `minReadySeconds` elapsing).
    pub requeue_after: Option<Duration>,
}

impl Action {
    pub fn done() -> Action {
        Action::default()
    }
    pub fn requeue(after: Duration) -> Action {
        Action {
            requeue_after: Some(after),
        }
    }
}

/// First retry of a failed reconcile; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(5);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Keep `cache` equal to the API's objects of `res` until shutdown. The
/// watcher re-lists by itself after errors and expired revisions.
pub async fn feed_cache<K>(
    client: client::Client,
    res: &'static ResourceInfo,
    cache: Arc<Cache<K>>,
    shutdown: CancellationToken,
) where
    K: Metadata<Ty = ObjectMeta> + DeserializeOwned + Send + Sync + 'static,
{
    let mut events = client::watcher(client, res, None, client::ListParams::default());
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = events.next() => match e {
                Some(e) => e,
                None => return,
            },
        };
        match event {
            client::WatcherEvent::Restarted(items) => {
                let typed = items
                    .into_iter()
                    .filter_map(|v| decode::<K>(res, v))
                    .collect();
                cache.restart(typed);
            }
            client::WatcherEvent::Applied(v) => {
                if let Some(obj) = decode::<K>(res, v) {
                    cache.apply(obj);
                }
            }
            client::WatcherEvent::Deleted(v) => {
                if let Some(obj) = decode::<K>(res, v) {
                    cache.remove(&obj);
                }
            }
        }
    }
}

fn decode<K: DeserializeOwned>(res: &ResourceInfo, v: serde_json::Value) -> Option<K> {
    match client::typed::<K>(v) {
        Ok(obj) => Some(obj),
        Err(e) => {
            // One malformed object must not stop the controller for all others.
            tracing::warn!(kind = res.kind, error = %e, "skipping an object that does not decode");
            None
        }
    }
}

/// Run `reconcile` for every key of `queue`, one at a time, until shutdown.
/// Waits for `ready` (the caches' first lists) before the first key. A
/// failed key is retried with exponential backoff; a conflict is retried at
/// once-ish, since the watch brings the newer version within milliseconds.
pub async fn run_worker<T, F, Fut>(
    name: &'static str,
    queue: Arc<WorkQueue<T>>,
    ready: impl Future<Output = ()>,
    shutdown: CancellationToken,
    mut reconcile: F,
) where
    T: Clone + Eq + Hash + std::fmt::Display + Send + 'static,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<Action, ControllerError>>,
{
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = ready => {}
    }
    tracing::debug!(controller = name, "caches synced; reconciling");
    let mut failures: HashMap<T, u32> = HashMap::new();
    while let Some(key) = queue.next(&shutdown).await {
        match reconcile(key.clone()).await {
            Ok(action) => {
                failures.remove(&key);
                if let Some(after) = action.requeue_after {
                    queue.add_after(key, after, &shutdown);
                }
            }
            Err(e) => {
                let n = failures.entry(key.clone()).or_insert(0);
                *n += 1;
                let delay = FIRST_RETRY
                    .saturating_mul(1u32 << (*n - 1).min(12))
                    .min(MAX_RETRY);
                if e.is_conflict() || e.is_not_found() {
                    tracing::debug!(controller = name, key = %key, error = %e, "retrying");
                } else {
                    tracing::warn!(controller = name, key = %key, error = %e, retry_in = ?delay, "reconcile failed");
                }
                queue.add_after(key, delay, &shutdown);
            }
        }
    }
}
