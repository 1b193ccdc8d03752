//! Keeps the table in step with the API: three watches (Services,
//! EndpointSlices, Pods, all namespaces) update a compact `ClusterState`;
//! after each burst of events the table is rebuilt and swapped in. No
//! polling: a change is served as soon as its event has been read.

use std::sync::Arc;

use api::registry::{ENDPOINT_SLICES, PODS, SERVICES};
use client::{Client, ListParams, WatcherEvent};
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::objects::{object_key, pod_info, service_info, slice_info, ClusterState};
use crate::records::{build_table, ZoneConfig};
use crate::shared::SharedTable;

/// Events applied before a rebuild at most, so a flood of events still
/// reaches the table now and then.
const MAX_BATCH: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Service,
    Slice,
    Pod,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }
}

/// Apply one watcher event; true when the DNS view changed.
pub fn apply(state: &mut ClusterState, kind: Kind, event: WatcherEvent) -> bool {
    match event {
        WatcherEvent::Restarted(items) => {
            match kind {
                Kind::Service => state.services = collect(&items, service_info),
                Kind::Slice => state.slices = collect(&items, slice_info),
                Kind::Pod => state.pods = collect(&items, pod_info),
            }
            true
        }
        WatcherEvent::Applied(obj) => match kind {
            Kind::Service => upsert(&mut state.services, &obj, service_info),
            Kind::Slice => upsert(&mut state.slices, &obj, slice_info),
            Kind::Pod => upsert(&mut state.pods, &obj, pod_info),
        },
        WatcherEvent::Deleted(obj) => {
            let Some(key) = object_key(&obj) else {
                return false;
            };
            match kind {
                Kind::Service => state.services.remove(&key).is_some(),
                Kind::Slice => state.slices.remove(&key).is_some(),
                Kind::Pod => state.pods.remove(&key).is_some(),
            }
        }
    }
}

fn collect<T>(
    items: &[Value],
    info: fn(&Value) -> Option<T>,
) -> std::collections::HashMap<String, T> {
    items
        .iter()
        .filter_map(|obj| Some((object_key(obj)?, info(obj)?)))
        .collect()
}

/// Insert, replace or (when the object no longer has a DNS view, e.g. a
/// finished Pod) remove; true when something changed. Status-only updates
/// of Pods are frequent and change nothing here.
fn upsert<T: PartialEq>(
    map: &mut std::collections::HashMap<String, T>,
    obj: &Value,
    info: fn(&Value) -> Option<T>,
) -> bool {
    let Some(key) = object_key(obj) else {
        return false;
    };
    match info(obj) {
        Some(new) => {
            if map.get(&key) == Some(&new) {
                return false;
            }
            map.insert(key, new);
            true
        }
        None => map.remove(&key).is_some(),
    }
}

fn serial_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

/// Watch the API into `table` until `shutdown`. The table stays "unsynced"
/// (SERVFAIL for cluster names) until all three kinds were listed once.
pub async fn feed_table(
    client: Client,
    table: Arc<SharedTable>,
    zone: Arc<ZoneConfig>,
    shutdown: CancellationToken,
) {
    let mut streams = [
        (
            Kind::Service,
            client::watcher(client.clone(), &SERVICES, None, ListParams::default()),
        ),
        (
            Kind::Slice,
            client::watcher(
                client.clone(),
                &ENDPOINT_SLICES,
                None,
                ListParams::default(),
            ),
        ),
        (
            Kind::Pod,
            client::watcher(client, &PODS, None, ListParams::default()),
        ),
    ];
    let mut state = ClusterState::default();
    let mut listed = [false; 3];
    loop {
        let (kind, event) = {
            let [(k0, s0), (k1, s1), (k2, s2)] = &mut streams;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(e) = s0.next() => (*k0, e),
                Some(e) = s1.next() => (*k1, e),
                Some(e) = s2.next() => (*k2, e),
                else => return,
            }
        };
        listed[kind.index()] |= matches!(event, WatcherEvent::Restarted(_));
        let mut changed = apply(&mut state, kind, event);
        // Take whatever else is already waiting, then rebuild once.
        let mut taken = 1;
        'drain: while taken < MAX_BATCH {
            let mut any = false;
            for (kind, stream) in streams.iter_mut() {
                while let Some(Some(event)) = stream.next().now_or_never() {
                    listed[kind.index()] |= matches!(event, WatcherEvent::Restarted(_));
                    changed |= apply(&mut state, *kind, event);
                    any = true;
                    taken += 1;
                    if taken >= MAX_BATCH {
                        break 'drain;
                    }
                }
            }
            if !any {
                break;
            }
        }
        if changed && listed.iter().all(|l| *l) {
            let started = std::time::Instant::now();
            let built = build_table(&state, zone.clone(), serial_now());
            let names = built.len();
            table.store(built);
            tracing::debug!(
                services = state.services.len(),
                names,
                took_ms = started.elapsed().as_millis() as u64,
                "DNS table rebuilt"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(name: &str, ip: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"clusterIP": ip}})
    }

    #[test]
    fn restart_replaces_and_applied_updates_only_on_change() {
        let mut st = ClusterState::default();
        assert!(apply(
            &mut st,
            Kind::Service,
            WatcherEvent::Restarted(vec![svc("a", "10.96.0.2")])
        ));
        assert_eq!(st.services.len(), 1);
        assert!(!apply(
            &mut st,
            Kind::Service,
            WatcherEvent::Applied(svc("a", "10.96.0.2"))
        ));
        assert!(apply(
            &mut st,
            Kind::Service,
            WatcherEvent::Applied(svc("b", "10.96.0.3"))
        ));
        assert!(apply(
            &mut st,
            Kind::Service,
            WatcherEvent::Deleted(svc("a", "10.96.0.2"))
        ));
        assert!(!apply(
            &mut st,
            Kind::Service,
            WatcherEvent::Deleted(svc("a", "10.96.0.2"))
        ));
        assert!(apply(
            &mut st,
            Kind::Service,
            WatcherEvent::Restarted(vec![])
        ));
        assert!(st.services.is_empty());
    }

    #[test]
    fn a_pod_that_finishes_leaves_the_state() {
        let mut st = ClusterState::default();
        let running = json!({"metadata": {"name": "p", "namespace": "default"}, "status": {"phase": "Running", "podIP": "10.244.0.9"}});
        let done = json!({"metadata": {"name": "p", "namespace": "default"}, "status": {"phase": "Failed", "podIP": "10.244.0.9"}});
        assert!(apply(&mut st, Kind::Pod, WatcherEvent::Applied(running)));
        assert!(apply(&mut st, Kind::Pod, WatcherEvent::Applied(done)));
        assert!(st.pods.is_empty());
    }
}
