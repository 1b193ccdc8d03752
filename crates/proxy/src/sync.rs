//! The proxy's loop: watch Services and EndpointSlices, plan, and write
//! only what changed, at once (no minimum sync period: a change reaches the
//! kernel in milliseconds).

use crate::kernel::RuleWriter;
use crate::model::service_ports;
use crate::plan::NodeContext;
use crate::syncer::RuleSync;
use api::registry::{ENDPOINT_SLICES, SERVICES};
use client::{watcher, Client, ListParams, WatcherEvent};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The cluster's Pod CIDR (`10.244.0.0/16`).
    pub cluster_cidr: String,
    /// How often the kernel's rules are checked for changes made by
    /// someone else (a flush by hand, say); they are rewritten in full
    /// when the writer sees such a change.
    pub check_every: Duration,
    /// How often every rule is rewritten when the writer cannot tell
    /// whether someone else changed them (the iptables-restore backends).
    pub full_resync: Duration,
}

pub struct Proxy {
    client: Client,
    config: ProxyConfig,
    writer: Arc<dyn RuleWriter>,
}

enum Input {
    Services(WatcherEvent),
    Slices(WatcherEvent),
}

impl Proxy {
    pub fn new(client: Client, config: ProxyConfig, writer: Arc<dyn RuleWriter>) -> Proxy {
        Proxy {
            client,
            config,
            writer,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let services = watcher(self.client.clone(), &SERVICES, None, ListParams::default())
            .map(Input::Services);
        let slices = watcher(
            self.client.clone(),
            &ENDPOINT_SLICES,
            None,
            ListParams::default(),
        )
        .map(Input::Slices);
        let mut inputs = futures::stream::select(services, slices);

        // Typed once when an event arrives, not at every sync.
        let mut svc_cache: BTreeMap<String, Service> = BTreeMap::new();
        let mut slice_cache: BTreeMap<String, EndpointSlice> = BTreeMap::new();
        let (mut svc_synced, mut slices_synced) = (false, false);
        // Moved into a blocking task for each sync and back.
        let mut syncer = Some(self.new_syncer());
        let mut full_at: Option<Instant> = None;
        let mut retry_at: Option<Instant> = None;
        let mut checked_at = Instant::now();

        loop {
            let wake = retry_at.unwrap_or(checked_at + self.config.check_every);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(wake.into()) => {
                    // A retry after a failure, or the periodic check.
                    checked_at = Instant::now();
                    if let Some(s) = syncer.as_mut() {
                        let rewrite = retry_at.is_some()
                            || match s.kernel_untouched() {
                                Some(untouched) => !untouched,
                                None => full_at.is_none_or(|t| {
                                    t.elapsed() >= self.config.full_resync
                                }),
                            };
                        if !rewrite {
                            continue;
                        }
                        if retry_at.is_none() {
                            tracing::info!("the node's rules were changed by someone else; rewriting them");
                        }
                        s.invalidate();
                    }
                }
                input = inputs.next() => {
                    let Some(mut input) = input else { break };
                    // Coalesce a burst: take everything already queued.
                    loop {
                        match input {
                            Input::Services(e) => { svc_synced |= apply(&mut svc_cache, e); }
                            Input::Slices(e) => { slices_synced |= apply(&mut slice_cache, e); }
                        }
                        match inputs.next().now_or_never() {
                            Some(Some(next)) => input = next,
                            _ => break,
                        }
                    }
                }
            }
            if !(svc_synced && slices_synced) {
                continue;
            }
            let started = Instant::now();
            let ports = service_ports(svc_cache.values(), slice_cache.values());
            let model = started.elapsed();
            let mut s = syncer.take().unwrap_or_else(|| self.new_syncer());
            let joined = tokio::task::spawn_blocking(move || {
                let result = s.sync(ports);
                (s, result)
            })
            .await;
            let result = match joined {
                Ok((s, result)) => {
                    syncer = Some(s);
                    result
                }
                // The syncer is lost with the task; a new one starts with
                // a full sync.
                Err(e) => Err(crate::ProxyError::Restore(format!("sync task failed: {e}"))),
            };
            match result {
                Ok(stats) => {
                    tracing::debug!(
                        full = stats.full,
                        nat_rules = stats.nat_rules,
                        bytes = stats.payload_bytes,
                        model_ms = ms(model),
                        plan_ms = ms(stats.plan),
                        render_ms = ms(stats.render),
                        write_ms = ms(stats.write),
                        "proxy sync"
                    );
                    if stats.full {
                        full_at = Some(Instant::now());
                    }
                    retry_at = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "proxy sync failed; retrying with a full sync");
                    retry_at = Some(Instant::now() + Duration::from_secs(1));
                }
            }
        }
        let mut s = syncer.unwrap_or_else(|| self.new_syncer());
        let result = tokio::task::spawn_blocking(move || s.cleanup()).await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "removing the proxy's rules failed");
        }
    }

    fn new_syncer(&self) -> RuleSync {
        let node = NodeContext {
            cluster_cidr: self.config.cluster_cidr.clone(),
        };
        RuleSync::new(self.writer.clone(), node)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Fold a watcher event into a cache keyed by namespace/name. Returns true
/// once the cache holds a complete list.
fn apply<K: DeserializeOwned>(cache: &mut BTreeMap<String, K>, event: WatcherEvent) -> bool {
    match event {
        WatcherEvent::Restarted(items) => {
            cache.clear();
            for o in items {
                insert(cache, o);
            }
            return true;
        }
        WatcherEvent::Applied(o) => insert(cache, o),
        WatcherEvent::Deleted(o) => {
            cache.remove(&key(&o));
        }
    }
    false
}

fn insert<K: DeserializeOwned>(cache: &mut BTreeMap<String, K>, o: Value) {
    let k = key(&o);
    match serde_json::from_value(o) {
        Ok(typed) => {
            cache.insert(k, typed);
        }
        Err(e) => tracing::warn!(object = %k, error = %e, "proxy ignores an object it cannot read"),
    }
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}",
        o["metadata"]["namespace"].as_str().unwrap_or(""),
        o["metadata"]["name"].as_str().unwrap_or("")
    )
}
