//! Behaviour of `SledStore` through the `Store` trait.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct Scratch(PathBuf);

impl Scratch {
    pub(super) fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "minik8s-store-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn svc(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}})
}

fn key(ns: &str, name: &str) -> String {
    format!("/registry/core/services/{ns}/{name}")
}

pub(super) fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion set")
        .parse()
        .unwrap()
}

fn drain(rx: &mut mpsc::Receiver<StoreEvent>) -> Vec<StoreEvent> {
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    events
}

#[test]
fn create_stamps_resource_version_and_get_returns_it() {
    let dir = Scratch::new("stamp");
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.current_revision(), 0);
    let created = store.create(&key("default", "web"), svc("web")).unwrap();
    assert_eq!(rv(&created), 1);
    assert_eq!(created["metadata"]["name"], "web");
    assert_eq!(store.get(&key("default", "web")).unwrap(), Some(created));
    assert_eq!(store.get(&key("default", "nope")).unwrap(), None);
    assert_eq!(store.current_revision(), 1);
}

#[test]
fn revision_is_monotonic_across_reopen_even_after_deletes() {
    let dir = Scratch::new("reopen");
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create(&key("default", "a"), svc("a")).unwrap();
        store.create(&key("default", "b"), svc("b")).unwrap();
        // The newest revision belongs to a delete: nothing stored carries it.
        let deleted = store.delete(&key("default", "b"), None).unwrap();
        assert_eq!(rv(&deleted), 3);
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.current_revision(), 3);
    let (items, list_rv) = store.list("/registry/core/services/").unwrap();
    assert_eq!(list_rv, 3);
    assert_eq!(items.len(), 1);
    assert_eq!(
        rv(&store.create(&key("default", "c"), svc("c")).unwrap()),
        4
    );
}

#[test]
fn create_of_existing_key_is_already_exists() {
    let dir = Scratch::new("exists");
    let store = SledStore::open(dir.path()).unwrap();
    store.create(&key("default", "web"), svc("web")).unwrap();
    assert_eq!(
        store.create(&key("default", "web"), svc("web")),
        Err(StoreError::AlreadyExists)
    );
    // A failed write consumes no revision.
    assert_eq!(store.current_revision(), 1);
}

#[test]
fn missing_key_is_not_found_for_update_and_delete() {
    let dir = Scratch::new("missing");
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        store.update(&key("default", "x"), svc("x"), None),
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.delete(&key("default", "x"), None),
        Err(StoreError::NotFound)
    );
}

#[test]
fn stale_expected_revision_is_conflict() {
    let dir = Scratch::new("conflict");
    let store = SledStore::open(dir.path()).unwrap();
    let k = key("default", "web");
    let v1 = store.create(&k, svc("web")).unwrap();
    let mut changed = v1.clone();
    changed["spec"] = json!({"type": "NodePort"});
    let v2 = store.update(&k, changed.clone(), Some(rv(&v1))).unwrap();
    assert_eq!(rv(&v2), 2);
    assert_eq!(
        store.update(&k, changed.clone(), Some(rv(&v1))),
        Err(StoreError::Conflict)
    );
    assert_eq!(store.delete(&k, Some(rv(&v1))), Err(StoreError::Conflict));
    // Unconditional update ignores the stored revision.
    assert_eq!(rv(&store.update(&k, changed, None).unwrap()), 3);
    assert_eq!(rv(&store.delete(&k, Some(3)).unwrap()), 4);
}

#[test]
fn delete_returns_object_with_the_deletion_revision() {
    let dir = Scratch::new("delete");
    let store = SledStore::open(dir.path()).unwrap();
    let k = key("default", "web");
    store.create(&k, svc("web")).unwrap();
    let mut rx = store.watch("/registry/core/services/", 1).unwrap();
    let deleted = store.delete(&k, None).unwrap();
    assert_eq!(rv(&deleted), 2);
    assert_eq!(deleted["metadata"]["name"], "web");
    assert_eq!(store.get(&k).unwrap(), None);
    let events = drain(&mut rx);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, StoreEventType::Deleted);
    assert_eq!(events[0].revision, 2);
    assert_eq!(events[0].object, deleted);
}

#[test]
fn watch_replays_history_then_streams_live_events_in_order() {
    let dir = Scratch::new("watch");
    let store = SledStore::open(dir.path()).unwrap();
    let (a, b) = (key("default", "a"), key("default", "b"));
    store.create(&a, svc("a")).unwrap(); // 1
    store.create(&b, svc("b")).unwrap(); // 2
    store.update(&a, svc("a"), None).unwrap(); // 3
    let mut rx = store.watch("/registry/core/services/", 1).unwrap();
    store.delete(&b, None).unwrap(); // 4
    store.create(&b, svc("b")).unwrap(); // 5
    let seen: Vec<(StoreEventType, String, u64)> = drain(&mut rx)
        .into_iter()
        .map(|e| {
            assert_eq!(rv(&e.object), e.revision);
            (e.kind, e.key, e.revision)
        })
        .collect();
    use StoreEventType::*;
    assert_eq!(
        seen,
        vec![
            (Added, b.clone(), 2),
            (Modified, a.clone(), 3),
            (Deleted, b.clone(), 4),
            (Added, b.clone(), 5),
        ]
    );
}

#[test]
fn watch_from_current_revision_gets_only_live_events() {
    let dir = Scratch::new("live");
    let store = SledStore::open(dir.path()).unwrap();
    store.create(&key("default", "a"), svc("a")).unwrap();
    let mut rx = store.watch("/", store.current_revision()).unwrap();
    assert!(drain(&mut rx).is_empty());
    store.create(&key("default", "b"), svc("b")).unwrap();
    let revs: Vec<u64> = drain(&mut rx).iter().map(|e| e.revision).collect();
    assert_eq!(revs, vec![2]);
}

#[test]
fn watch_from_before_the_history_is_expired() {
    let dir = Scratch::new("expired");
    let config = StoreConfig {
        history_len: 3,
        ..StoreConfig::default()
    };
    let store = SledStore::open_with(dir.path(), config).unwrap();
    for i in 0..5 {
        store
            .create(&key("default", &format!("s{i}")), svc("s"))
            .unwrap();
    }
    // Revisions 3..=5 are retained: watching from 2 is complete, from 1 not.
    assert_eq!(
        store.watch("/", 1).unwrap_err(),
        StoreError::Expired { oldest: 2 }
    );
    assert_eq!(drain(&mut store.watch("/", 2).unwrap()).len(), 3);
    drop(store);
    // After a restart the history is empty: only the current revision works.
    let store = SledStore::open_with(dir.path(), config).unwrap();
    assert_eq!(
        store.watch("/", 4).unwrap_err(),
        StoreError::Expired { oldest: 5 }
    );
    assert!(store.watch("/", 5).is_ok());
}

#[test]
fn prefixes_do_not_leak_into_longer_namespace_names() {
    let dir = Scratch::new("prefix");
    let store = SledStore::open(dir.path()).unwrap();
    let prefix = "/registry/core/services/default/";
    let mut rx = store.watch(prefix, 0).unwrap();
    store.create(&key("default2", "web"), svc("web")).unwrap();
    store.create(&key("default", "web"), svc("web")).unwrap();
    store
        .create("/registry/core/pods/default/web", svc("web"))
        .unwrap();
    let keys: Vec<String> = drain(&mut rx).into_iter().map(|e| e.key).collect();
    assert_eq!(keys, vec![key("default", "web")]);
    let (items, _) = store.list(prefix).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(rv(&items[0]), 2);
    // All namespaces: both services, not the pod.
    let (all, list_rv) = store.list("/registry/core/services/").unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(list_rv, 3);
}

#[test]
fn list_is_in_key_order() {
    let dir = Scratch::new("order");
    let store = SledStore::open(dir.path()).unwrap();
    for name in ["c", "a", "b"] {
        store.create(&key("default", name), svc(name)).unwrap();
    }
    let (items, rev) = store.list("").unwrap();
    let names: Vec<&str> = items
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b", "c"]);
    assert_eq!(rev, 3);
}

#[test]
fn keys_outside_the_slash_namespace_are_refused() {
    let dir = Scratch::new("keys");
    let store = SledStore::open(dir.path()).unwrap();
    assert!(matches!(
        store.get("\0revision"),
        Err(StoreError::InvalidKey(_))
    ));
    assert!(matches!(
        store.create("registry/x", svc("x")),
        Err(StoreError::InvalidKey(_))
    ));
    assert!(matches!(
        store.create("/registry/x", json!("not an object")),
        Err(StoreError::InvalidObject { .. })
    ));
}

#[test]
fn concurrent_creates_get_unique_gapless_revisions_and_persist() {
    let dir = Scratch::new("concurrent");
    let (threads, per_thread) = (16, 25);
    let total = threads * per_thread;
    {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let mut rx = store.watch("/", 0).unwrap();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let name = format!("t{t}-{i}");
                            rv(&store.create(&key("default", &name), svc(&name)).unwrap())
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut revs: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        revs.sort_unstable();
        assert_eq!(revs, (1..=total as u64).collect::<Vec<_>>());
        // Watchers saw every write once, in revision order.
        let watched: Vec<u64> = drain(&mut rx).iter().map(|e| e.revision).collect();
        assert_eq!(watched, (1..=total as u64).collect::<Vec<_>>());
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.current_revision(), total as u64);
    assert_eq!(store.list("/").unwrap().0.len(), total);
}

/// A list at R plus the watch from R must add up to the final state while
/// writers race the list: no event lost, doubled or reordered; and the list
/// must be exactly the writes <= R.
#[test]
fn list_then_watch_is_consistent_under_concurrent_writes() {
    let dir = Scratch::new("listwatch");
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let name = format!("w{t}-{}", i % 5);
                    let k = key("default", &name);
                    let result = match i % 3 {
                        0 => store.create(&k, svc(&name)),
                        1 => store.update(&k, svc(&name), None),
                        _ => store.delete(&k, None),
                    };
                    match result {
                        Ok(_) | Err(StoreError::AlreadyExists) | Err(StoreError::NotFound) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (items, list_rv) = store.list("/").unwrap();
    let mut rx = store.watch("/", list_rv).unwrap();
    for w in writers {
        w.join().unwrap();
    }
    let mut state: BTreeMap<String, Value> = items
        .into_iter()
        .map(|o| (key("default", o["metadata"]["name"].as_str().unwrap()), o))
        .collect();
    assert_eq!(state, replay_history_through(&store, list_rv));
    let mut last = list_rv;
    for e in drain(&mut rx) {
        assert_eq!(e.revision, last + 1, "gap or reorder in watch");
        last = e.revision;
        match e.kind {
            StoreEventType::Deleted => assert!(state.remove(&e.key).is_some()),
            StoreEventType::Added => assert!(state.insert(e.key, e.object).is_none()),
            StoreEventType::Modified => assert!(state.insert(e.key, e.object).is_some()),
        }
    }
    assert_eq!(last, store.current_revision());
    let (final_items, _) = store.list("/").unwrap();
    assert_eq!(state.into_values().collect::<Vec<_>>(), final_items);
}

/// The state the history says existed at `rev` (history must reach back to 0).
fn replay_history_through(store: &SledStore, rev: u64) -> BTreeMap<String, Value> {
    let mut state = BTreeMap::new();
    for e in drain(&mut store.watch("/", 0).unwrap()) {
        if e.revision > rev {
            break;
        }
        match e.kind {
            StoreEventType::Deleted => state.remove(&e.key),
            _ => state.insert(e.key, e.object),
        };
    }
    state
}

#[test]
fn newer_data_dir_format_is_refused_on_open() {
    let dir = Scratch::new("newer");
    drop(SledStore::open(dir.path()).unwrap());
    std::fs::write(dir.path().join(format::MARKER_FILE), "2\n").unwrap();
    let err = SledStore::open(dir.path()).err().expect("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "data dir {} was written by a newer minik8s (format 2); this build reads format 1",
            dir.path().display()
        )
    );
}

#[test]
fn shared_reads_match_copies_and_survive_a_reopen() {
    let dir = Scratch::new("shared");
    let pods = "/registry/core/pods/default/p";
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create(&key("default", "a"), svc("a")).unwrap();
        store.create(&key("default", "b"), svc("b")).unwrap();
        store.create(&key("other", "c"), svc("c")).unwrap();
        store.create(pods, svc("p")).unwrap();
        store.delete(&key("default", "b"), None).unwrap();
        let mut updated = svc("a");
        updated["spec"] = json!({"type": "NodePort"});
        store.update(&key("default", "a"), updated, None).unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let prefix = "/registry/core/services/default/";
    let (shared, rev) = store.list_shared(prefix).unwrap();
    let (copied, rev2) = store.list(prefix).unwrap();
    assert_eq!(rev, 6);
    assert_eq!(rev2, 6);
    let shared: Vec<Value> = shared.iter().map(|o| (**o).clone()).collect();
    assert_eq!(shared, copied);
    assert_eq!(
        copied.len(),
        1,
        "deleted b stays deleted, c and p are elsewhere"
    );
    assert_eq!(copied[0]["spec"]["type"], "NodePort");
    assert_eq!(rv(&copied[0]), 6);
    let got = store.get_shared(&key("default", "a")).unwrap().unwrap();
    assert_eq!(*got, copied[0]);
    assert!(store.get_shared(&key("default", "b")).unwrap().is_none());
    assert_eq!(store.list("/registry/core/").unwrap().0.len(), 3);
}
