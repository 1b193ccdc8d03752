//! The proxy's loop: watch Services and EndpointSlices, plan, and write
//! only what changed, at once (no minimum sync period: a change reaches the
//! kernel in milliseconds).

use crate::kernel::RuleWriter;
use crate::model::{service_ports, ServicePort};
use crate::plan::{NodeContext, RulePlanner, RuleSet};
use crate::restore::{render_cleanup, render_full, render_partial, rule_count};
use api::registry::{ENDPOINT_SLICES, SERVICES};
use client::{watcher, Client, ListParams, WatcherEvent};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The cluster's Pod CIDR (`10.244.0.0/16`).
    pub cluster_cidr: String,
    /// How often every rule is rewritten, to repair rules someone else
    /// removed.
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

/// The last state written to the kernel.
#[derive(Default)]
struct Written {
    /// `None`: the kernel's state is unknown, so the next sync is full.
    rules: Option<RuleSet>,
    ports: Vec<ServicePort>,
    /// When the last full sync happened.
    full_at: Option<Instant>,
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
        let mut written = Written::default();
        let node = NodeContext {
            cluster_cidr: self.config.cluster_cidr.clone(),
        };
        let mut retry_at: Option<Instant> = None;
        let mut planner = RulePlanner::default();

        loop {
            let wake = retry_at
                .or_else(|| written.full_at.map(|t| t + self.config.full_resync))
                .unwrap_or_else(|| Instant::now() + self.config.full_resync);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(wake.into()) => {
                    // Periodic full resync, or a retry after a failure.
                    written.rules = None;
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
            let ports = service_ports(svc_cache.values(), slice_cache.values());
            let desired = planner.plan(&ports, &node);
            let full = written.rules.is_none();
            match self.write(written.rules.clone(), &desired).await {
                Ok(()) => {
                    self.clear_stale_udp(&written.ports, &ports).await;
                    written = Written {
                        rules: Some(desired),
                        ports,
                        full_at: if full {
                            Some(Instant::now())
                        } else {
                            written.full_at
                        },
                    };
                    retry_at = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "proxy sync failed; retrying with a full sync");
                    written.rules = None;
                    retry_at = Some(Instant::now() + Duration::from_secs(1));
                }
            }
        }
        self.cleanup().await;
    }

    /// A full sync when nothing is known of the kernel's state, else only
    /// the changed chains.
    async fn write(
        &self,
        previous: Option<RuleSet>,
        desired: &RuleSet,
    ) -> Result<(), crate::ProxyError> {
        let writer = self.writer.clone();
        let desired = desired.clone();
        let nat_rules = rule_count(&desired.nat);
        let started = Instant::now();
        let full = previous.is_none();
        let result = tokio::task::spawn_blocking(move || match previous {
            Some(prev) => match render_partial(&prev, &desired) {
                Some(payload) => writer.restore(&payload, false),
                None => Ok(()),
            },
            None => writer.restore(&render_full(&desired), true),
        })
        .await
        .unwrap_or_else(|e| Err(crate::ProxyError::Restore(format!("sync task failed: {e}"))));
        tracing::debug!(
            full,
            nat_rules,
            took_ms = started.elapsed().as_secs_f64() * 1000.0,
            "proxy sync"
        );
        result
    }

    async fn clear_stale_udp(&self, old: &[ServicePort], new: &[ServicePort]) {
        let mut stale = Vec::new();
        for o in old.iter().filter(|p| p.protocol == "udp") {
            let Some(ip) = o.cluster_ip else { continue };
            let now: BTreeSet<_> = new
                .iter()
                .find(|n| {
                    n.namespace == o.namespace
                        && n.name == o.name
                        && n.port_name == o.port_name
                        && n.protocol == "udp"
                })
                .map(|n| n.endpoints.iter().map(|e| e.ip).collect())
                .unwrap_or_default();
            for e in &o.endpoints {
                if !now.contains(&e.ip) {
                    stale.push((ip, o.port, e.ip));
                }
            }
        }
        if stale.is_empty() {
            return;
        }
        let writer = self.writer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (ip, port, ep) in stale {
                writer.clear_udp_flows(ip, port, ep);
            }
        })
        .await;
    }

    async fn cleanup(&self) {
        let writer = self.writer.clone();
        let result =
            tokio::task::spawn_blocking(move || writer.restore(&render_cleanup(), true)).await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "removing the proxy's rules failed");
        }
    }
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
