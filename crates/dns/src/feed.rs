//! Keeps the table in step with the API: three watches (Services,
//! EndpointSlices, Pods, all namespaces) update a compact `ClusterState`,
//! and each change moves only the records of the objects it touched (a
//! Service with its EndpointSlices, or a Pod) in or out of the table. The
//! whole table is built only from a complete list (start, relist). No
//! polling: a change is served as soon as its event has been read.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use api::registry::{ENDPOINT_SLICES, PODS, SERVICES};
use client::{Client, ListParams, WatcherEvent};
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::objects::{object_key, pod_info, service_info, slice_info, ClusterState, SliceInfo};
use crate::records::{build_table, pod_records, service_records, Contribution, ZoneConfig};
use crate::shared::SharedTable;

/// Events applied before the table is touched at most, so a flood of
/// events still reaches the table now and then.
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

/// Records to take out of and put into the table, gathered over a batch
/// of events; or `rebuild` when a whole kind was relisted.
#[derive(Debug, Default)]
pub struct Delta {
    pub removed: Vec<Contribution>,
    pub added: Vec<Contribution>,
    pub rebuild: bool,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty() && !self.rebuild
    }

    pub fn clear(&mut self) {
        self.removed.clear();
        self.added.clear();
        self.rebuild = false;
    }
}

/// Which object's records an event may change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    /// A Service (`<ns>/<name>`) with its EndpointSlices.
    Service(String),
    /// A Pod (`<ns>/<name>`).
    Pod(String),
}

/// The cluster as DNS sees it, and which slices belong to which Service.
pub struct FeedState {
    pub state: ClusterState,
    /// `<ns>/<service>` -> keys of its EndpointSlices.
    slices_by_service: HashMap<String, BTreeSet<String>>,
    domain: String,
}

fn owner_key(slice: &SliceInfo) -> String {
    format!("{}/{}", slice.namespace, slice.service)
}

impl FeedState {
    pub fn new(zone: &ZoneConfig) -> FeedState {
        FeedState {
            state: ClusterState::default(),
            slices_by_service: HashMap::new(),
            domain: zone.domain.trim_end_matches('.').to_ascii_lowercase(),
        }
    }

    fn index_slice(&mut self, key: &str, slice: &SliceInfo, present: bool) {
        let owner = owner_key(slice);
        if present {
            self.slices_by_service
                .entry(owner)
                .or_default()
                .insert(key.to_string());
        } else if let Some(keys) = self.slices_by_service.get_mut(&owner) {
            keys.remove(key);
            if keys.is_empty() {
                self.slices_by_service.remove(&owner);
            }
        }
    }

    fn reindex_slices(&mut self) {
        self.slices_by_service.clear();
        for (key, slice) in &self.state.slices {
            self.slices_by_service
                .entry(owner_key(slice))
                .or_default()
                .insert(key.clone());
        }
    }

    /// The records `owner` contributes now.
    fn records(&self, owner: &Owner, out: &mut Vec<Contribution>) {
        match owner {
            Owner::Service(key) => {
                let Some(svc) = self.state.services.get(key) else {
                    return;
                };
                let slices: Vec<&SliceInfo> = self
                    .slices_by_service
                    .get(key)
                    .into_iter()
                    .flatten()
                    .filter_map(|k| self.state.slices.get(k))
                    .collect();
                service_records(svc, &slices, &self.domain, out);
            }
            Owner::Pod(key) => {
                if let Some(pod) = self.state.pods.get(key) {
                    pod_records(pod, &self.domain, out);
                }
            }
        }
    }

    /// Change the state with `mutate`, recording in `delta` how the
    /// records of `owners` moved. Owners whose records stay the same (a
    /// slice of a ClusterIP Service) cost nothing in the table.
    fn change(&mut self, owners: &[Owner], delta: &mut Delta, mutate: impl FnOnce(&mut Self)) {
        let mut before = Vec::new();
        for o in owners {
            self.records(o, &mut before);
        }
        mutate(self);
        let mut after = Vec::new();
        for o in owners {
            self.records(o, &mut after);
        }
        if before != after {
            delta.removed.extend(before);
            delta.added.extend(after);
        }
    }

    /// Apply one watcher event; true when the DNS view changed.
    pub fn apply(&mut self, kind: Kind, event: WatcherEvent, delta: &mut Delta) -> bool {
        let (key, obj, deleted) = match event {
            WatcherEvent::Restarted(items) => {
                match kind {
                    Kind::Service => self.state.services = collect(&items, service_info),
                    Kind::Slice => {
                        self.state.slices = collect(&items, slice_info);
                        self.reindex_slices();
                    }
                    Kind::Pod => self.state.pods = collect(&items, pod_info),
                }
                delta.rebuild = true;
                return true;
            }
            WatcherEvent::Applied(obj) => (object_key(&obj), obj, false),
            WatcherEvent::Deleted(obj) => (object_key(&obj), obj, true),
        };
        let Some(key) = key else {
            return false;
        };
        match kind {
            Kind::Service => {
                // A Service whose view cannot be made (not a Service) is
                // gone for DNS, as a deleted one.
                let new = if deleted { None } else { service_info(&obj) };
                if self.state.services.get(&key) == new.as_ref() {
                    return false;
                }
                let owners = [Owner::Service(key.clone())];
                self.change(&owners, delta, |s| match new {
                    Some(new) => {
                        s.state.services.insert(key, new);
                    }
                    None => {
                        s.state.services.remove(&key);
                    }
                });
            }
            Kind::Slice => {
                let new = if deleted { None } else { slice_info(&obj) };
                let old = self.state.slices.get(&key);
                if old == new.as_ref() {
                    return false;
                }
                // A slice may move from one Service to another (its label
                // changed): both Services' records follow.
                let mut owners: Vec<Owner> = old
                    .into_iter()
                    .chain(new.as_ref())
                    .map(|s| Owner::Service(owner_key(s)))
                    .collect();
                owners.dedup();
                self.change(&owners, delta, |s| {
                    if let Some(old) = s.state.slices.remove(&key) {
                        s.index_slice(&key, &old, false);
                    }
                    if let Some(new) = new {
                        s.index_slice(&key, &new, true);
                        s.state.slices.insert(key, new);
                    }
                });
            }
            Kind::Pod => {
                let new = if deleted { None } else { pod_info(&obj) };
                if self.state.pods.get(&key) == new.as_ref() {
                    return false;
                }
                let owners = [Owner::Pod(key.clone())];
                self.change(&owners, delta, |s| match new {
                    Some(new) => {
                        s.state.pods.insert(key, new);
                    }
                    None => {
                        s.state.pods.remove(&key);
                    }
                });
            }
        }
        true
    }
}

fn collect<T>(items: &[Value], info: fn(&Value) -> Option<T>) -> HashMap<String, T> {
    items
        .iter()
        .filter_map(|obj| Some((object_key(obj)?, info(obj)?)))
        .collect()
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
    let mut feed = FeedState::new(&zone);
    let mut delta = Delta::default();
    let mut listed = [false; 3];
    // The table is built whole once every kind was listed; after that,
    // events only move their own records.
    let mut built = false;
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
        feed.apply(kind, event, &mut delta);
        // Take whatever else is already waiting, then touch the table once.
        let mut taken = 1;
        'drain: while taken < MAX_BATCH {
            let mut any = false;
            for (kind, stream) in streams.iter_mut() {
                while let Some(Some(event)) = stream.next().now_or_never() {
                    listed[kind.index()] |= matches!(event, WatcherEvent::Restarted(_));
                    feed.apply(*kind, event, &mut delta);
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
        if !listed.iter().all(|l| *l) {
            delta.clear();
            continue;
        }
        if !built {
            delta.rebuild = true;
            built = true;
        }
        commit(&table, &feed, &zone, &mut delta);
    }
}

/// Bring `table` in line with `feed`: the whole table after a list, else
/// only the records that moved. Empties `delta`.
pub fn commit(table: &SharedTable, feed: &FeedState, zone: &Arc<ZoneConfig>, delta: &mut Delta) {
    if delta.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    if delta.rebuild {
        let whole = build_table(&feed.state, zone.clone(), serial_now());
        let names = whole.len();
        table.store(whole);
        tracing::debug!(
            services = feed.state.services.len(),
            names,
            took_ms = started.elapsed().as_millis() as u64,
            "DNS table built"
        );
    } else {
        table.update(|t| {
            // Additions first: a record that moves stays counted.
            for c in &delta.added {
                t.add(c);
            }
            for c in &delta.removed {
                t.remove(c);
            }
            t.set_serial(serial_now());
        });
        tracing::trace!(
            added = delta.added.len(),
            removed = delta.removed.len(),
            took_us = started.elapsed().as_micros() as u64,
            "DNS table updated"
        );
    }
    delta.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Rdata, Table};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn svc(name: &str, ip: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"clusterIP": ip,
               "ports": [{"name": "http", "port": 80}]}})
    }

    fn headless(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"clusterIP": "None"}})
    }

    fn slice(name: &str, service: &str, ips: &[&str]) -> Value {
        let endpoints: Vec<Value> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| json!({"addresses": [ip], "hostname": if i == 0 { json!("first") } else { Value::Null }}))
            .collect();
        json!({"metadata": {"name": name, "namespace": "default",
                            "labels": {"kubernetes.io/service-name": service}},
               "addressType": "IPv4", "endpoints": endpoints,
               "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]})
    }

    fn pod(name: &str, ip: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"},
               "status": {"phase": "Running", "podIP": ip}})
    }

    fn zone() -> Arc<ZoneConfig> {
        Arc::new(ZoneConfig::default())
    }

    /// Every name with its records, sorted: two tables answer alike when
    /// their snapshots are equal.
    fn snapshot(t: &Table) -> BTreeMap<String, Vec<String>> {
        t.iter()
            .map(|(name, entry)| {
                let mut records: Vec<String> =
                    entry.records().map(|r: Rdata| format!("{r:?}")).collect();
                records.sort();
                (name.to_string(), records)
            })
            .collect()
    }

    #[test]
    fn restart_replaces_and_applied_updates_only_on_change() {
        let mut f = FeedState::new(&zone());
        let mut d = Delta::default();
        assert!(f.apply(
            Kind::Service,
            WatcherEvent::Restarted(vec![svc("a", "10.96.0.2")]),
            &mut d
        ));
        assert!(d.rebuild);
        d.clear();
        assert_eq!(f.state.services.len(), 1);
        assert!(!f.apply(
            Kind::Service,
            WatcherEvent::Applied(svc("a", "10.96.0.2")),
            &mut d
        ));
        assert!(d.is_empty());
        assert!(f.apply(
            Kind::Service,
            WatcherEvent::Applied(svc("b", "10.96.0.3")),
            &mut d
        ));
        assert!(d.removed.is_empty());
        assert!(d
            .added
            .iter()
            .any(|c| &*c.name == "b.default.svc.cluster.local"));
        assert!(f.apply(
            Kind::Service,
            WatcherEvent::Deleted(svc("a", "10.96.0.2")),
            &mut d
        ));
        assert!(!f.apply(
            Kind::Service,
            WatcherEvent::Deleted(svc("a", "10.96.0.2")),
            &mut d
        ));
    }

    #[test]
    fn a_pod_that_finishes_leaves_the_state() {
        let mut f = FeedState::new(&zone());
        let mut d = Delta::default();
        let done = json!({"metadata": {"name": "p", "namespace": "default"}, "status": {"phase": "Failed", "podIP": "10.244.0.9"}});
        assert!(f.apply(
            Kind::Pod,
            WatcherEvent::Applied(pod("p", "10.244.0.9")),
            &mut d
        ));
        assert!(f.apply(Kind::Pod, WatcherEvent::Applied(done), &mut d));
        assert!(f.state.pods.is_empty());
    }

    #[test]
    fn a_slice_of_a_cluster_ip_service_moves_no_records() {
        let mut f = FeedState::new(&zone());
        let mut d = Delta::default();
        f.apply(
            Kind::Service,
            WatcherEvent::Applied(svc("web", "10.96.0.5")),
            &mut d,
        );
        d.clear();
        assert!(f.apply(
            Kind::Slice,
            WatcherEvent::Applied(slice("web-x", "web", &["10.244.0.5"])),
            &mut d
        ));
        assert!(d.is_empty());
    }

    /// Events applied one by one to a live table leave it exactly as a
    /// table built from scratch from the final state.
    #[test]
    fn incremental_updates_equal_a_full_build() {
        let zone = zone();
        let mut f = FeedState::new(&zone);
        let mut d = Delta::default();
        for kind in [Kind::Service, Kind::Slice, Kind::Pod] {
            f.apply(kind, WatcherEvent::Restarted(vec![]), &mut d);
        }
        let shared = SharedTable::new(Table::unsynced(zone.clone()));
        commit(&shared, &f, &zone, &mut d);
        let events = [
            (
                Kind::Service,
                WatcherEvent::Applied(svc("web", "10.96.0.5")),
            ),
            (Kind::Pod, WatcherEvent::Applied(pod("db-0", "10.244.0.8"))),
            (
                Kind::Slice,
                WatcherEvent::Applied(slice("db-a", "db", &["10.244.0.8", "10.244.0.9"])),
            ),
            (Kind::Service, WatcherEvent::Applied(headless("db"))),
            (
                Kind::Slice,
                WatcherEvent::Applied(slice("db-b", "db", &["10.244.0.9", "10.244.0.10"])),
            ),
            (
                Kind::Service,
                WatcherEvent::Applied(svc("web", "10.96.0.6")),
            ),
            (
                Kind::Slice,
                WatcherEvent::Applied(slice("db-a", "db", &["10.244.0.11"])),
            ),
            (
                Kind::Slice,
                WatcherEvent::Applied(slice("db-b", "other", &["10.244.0.9"])),
            ),
            (Kind::Service, WatcherEvent::Applied(headless("other"))),
            (Kind::Pod, WatcherEvent::Applied(pod("p2", "10.244.0.11"))),
            (Kind::Service, WatcherEvent::Deleted(headless("db"))),
            (Kind::Pod, WatcherEvent::Deleted(pod("db-0", "10.244.0.8"))),
        ];
        for (i, (kind, event)) in events.into_iter().enumerate() {
            f.apply(kind, event, &mut d);
            // Commit some events together, others one by one.
            if i % 3 != 1 {
                commit(&shared, &f, &zone, &mut d);
                let full = build_table(&f.state, zone.clone(), 1);
                assert_eq!(snapshot(&shared.load()), snapshot(&full), "after event {i}");
            }
        }
        commit(&shared, &f, &zone, &mut d);
        f.apply(
            Kind::Service,
            WatcherEvent::Deleted(svc("web", "10.96.0.6")),
            &mut d,
        );
        f.apply(
            Kind::Service,
            WatcherEvent::Deleted(headless("other")),
            &mut d,
        );
        f.apply(
            Kind::Pod,
            WatcherEvent::Deleted(pod("p2", "10.244.0.11")),
            &mut d,
        );
        commit(&shared, &f, &zone, &mut d);
        let empty = build_table(&ClusterState::default(), zone.clone(), 1);
        assert_eq!(snapshot(&shared.load()), snapshot(&empty));
    }
}
