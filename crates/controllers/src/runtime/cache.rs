//! A watched cache of one kind: the reflector of kube-runtime. It is fed by
//! `client::watcher`, holds typed objects, tells registered handlers about
//! every change, and takes the controllers' own writes at once
//! ("write-through"), so a reconcile never acts on a state older than its
//! own last write (no duplicate Pods while a watch event is in flight).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Metadata;
use tokio::sync::watch;

/// Namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    pub fn of(meta: &ObjectMeta) -> ObjectRef {
        ObjectRef::new(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    /// The namespace as the client wants it: None for cluster-scoped kinds.
    pub fn ns(&self) -> Option<&str> {
        (!self.namespace.is_empty()).then_some(self.namespace.as_str())
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// One change a handler is told about.
pub enum Change<'a, K> {
    /// Created or changed; `old` is the previous cached version.
    Applied {
        old: Option<&'a K>,
        new: &'a K,
    },
    Deleted(&'a K),
}

/// A change before notification: (old, new); None new means deleted.
type Pending<K> = (Option<Arc<K>>, Option<Arc<K>>);

type Handler<K> = Box<dyn Fn(&Change<'_, K>) + Send + Sync>;

/// resourceVersion as a number: the API's revisions are one global counter,
/// so comparing them orders writes. Unparsable counts as 0 (always older).
pub fn revision(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

struct Objects<K> {
    by_ref: BTreeMap<ObjectRef, Arc<K>>,
    /// Revision at which a key was deleted, so a late event of the object's
    /// former life cannot bring it back.
    tombstones: HashMap<ObjectRef, u64>,
}

pub struct Cache<K> {
    objects: RwLock<Objects<K>>,
    handlers: RwLock<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
}

impl<K> Default for Cache<K>
where
    K: Metadata<Ty = ObjectMeta> + Send + Sync + 'static,
{
    fn default() -> Self {
        Cache {
            objects: RwLock::new(Objects {
                by_ref: BTreeMap::new(),
                tombstones: HashMap::new(),
            }),
            handlers: RwLock::new(Vec::new()),
            synced: watch::channel(false).0,
        }
    }
}

impl<K> Cache<K>
where
    K: Metadata<Ty = ObjectMeta> + Send + Sync + 'static,
{
    pub fn new() -> Arc<Cache<K>> {
        Arc::new(Cache::default())
    }

    /// Call `handler` on every change from now on (register before the
    /// cache is fed, to see the initial list).
    pub fn on_change(&self, handler: impl Fn(&Change<'_, K>) + Send + Sync + 'static) {
        self.handlers.write().unwrap().push(Box::new(handler));
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.objects
            .read()
            .unwrap()
            .by_ref
            .get(&ObjectRef::new(namespace, name))
            .cloned()
    }

    pub fn get_ref(&self, r: &ObjectRef) -> Option<Arc<K>> {
        self.objects.read().unwrap().by_ref.get(r).cloned()
    }

    /// Objects of one namespace, or all with None; in key order.
    pub fn list(&self, namespace: Option<&str>) -> Vec<Arc<K>> {
        let objects = self.objects.read().unwrap();
        match namespace {
            None => objects.by_ref.values().cloned().collect(),
            Some(ns) => objects
                .by_ref
                .range(ObjectRef::new(ns, "")..)
                .take_while(|(k, _)| k.namespace == ns)
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// Whether the first list has arrived.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Wait for the first list.
    pub async fn synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// The complete set after a (re-)list.
    pub fn restart(&self, items: Vec<K>) {
        let mut changes: Vec<Pending<K>> = Vec::new();
        {
            let mut objects = self.objects.write().unwrap();
            let mut fresh = BTreeMap::new();
            for item in items {
                let key = ObjectRef::of(item.metadata());
                let old = objects.by_ref.remove(&key);
                let keep_old = old
                    .as_ref()
                    .is_some_and(|o| revision(o.metadata()) >= revision(item.metadata()));
                let new = match (&old, keep_old) {
                    (Some(o), true) => o.clone(),
                    _ => Arc::new(item),
                };
                if !keep_old {
                    changes.push((old, Some(new.clone())));
                }
                fresh.insert(key, new);
            }
            for (_, gone) in std::mem::take(&mut objects.by_ref) {
                changes.push((Some(gone), None));
            }
            objects.by_ref = fresh;
            objects.tombstones.clear();
        }
        self.synced.send_replace(true);
        for (old, new) in &changes {
            match (old, new) {
                (old, Some(new)) => self.notify(&Change::Applied {
                    old: old.as_deref(),
                    new,
                }),
                (Some(old), None) => self.notify(&Change::Deleted(old)),
                (None, None) => {}
            }
        }
    }

    /// A created or changed object, from the watch or from our own write.
    /// Ignored when the cache already holds this revision or a newer one.
    pub fn apply(&self, obj: K) {
        let key = ObjectRef::of(obj.metadata());
        let rv = revision(obj.metadata());
        let (old, new) = {
            let mut objects = self.objects.write().unwrap();
            if objects.tombstones.get(&key).is_some_and(|t| rv <= *t) {
                return;
            }
            if let Some(cur) = objects.by_ref.get(&key) {
                if rv != 0 && revision(cur.metadata()) >= rv {
                    return;
                }
            }
            let new = Arc::new(obj);
            let old = objects.by_ref.insert(key, new.clone());
            (old, new)
        };
        self.notify(&Change::Applied {
            old: old.as_deref(),
            new: &new,
        });
    }

    /// A deleted object (its revision is the deletion's), from the watch or
    /// from our own delete.
    pub fn remove(&self, obj: &K) {
        let key = ObjectRef::of(obj.metadata());
        let rv = revision(obj.metadata());
        let old = {
            let mut objects = self.objects.write().unwrap();
            let tomb = objects.tombstones.entry(key.clone()).or_insert(0);
            *tomb = (*tomb).max(rv);
            match objects.by_ref.get(&key) {
                // A newer life of the same name (recreated) stays.
                Some(cur) if rv != 0 && revision(cur.metadata()) > rv => return,
                Some(_) => objects.by_ref.remove(&key),
                None => return,
            }
        };
        if let Some(old) = old {
            self.notify(&Change::Deleted(&old));
        }
    }

    fn notify(&self, change: &Change<'_, K>) {
        for handler in self.handlers.read().unwrap().iter() {
            handler(change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use std::sync::Mutex;

    fn pod(ns: &str, name: &str, rv: u64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                resource_version: Some(rv.to_string()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn newer_revisions_win_and_tombstones_block_the_past() {
        let cache: Arc<Cache<Pod>> = Cache::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        cache.on_change(move |c| {
            s.lock().unwrap().push(match c {
                Change::Applied { new, .. } => format!("+{}", revision(new.metadata())),
                Change::Deleted(old) => format!("-{}", revision(old.metadata())),
            })
        });
        cache.restart(vec![pod("default", "a", 5)]);
        assert!(cache.is_synced());
        cache.apply(pod("default", "a", 7)); // our own write
        cache.apply(pod("default", "a", 7)); // its watch event, later
        cache.apply(pod("default", "a", 6)); // an older event
        cache.remove(&pod("default", "a", 9));
        cache.apply(pod("default", "a", 8)); // in flight before the delete
        assert!(cache.get("default", "a").is_none());
        cache.apply(pod("default", "a", 10)); // recreated
        assert_eq!(*seen.lock().unwrap(), vec!["+5", "+7", "-7", "+10"]);
    }

    #[test]
    fn restart_reports_what_changed_and_lists_by_namespace() {
        let cache: Arc<Cache<Pod>> = Cache::new();
        cache.restart(vec![pod("a", "x", 1), pod("b", "y", 2), pod("b", "z", 3)]);
        assert_eq!(cache.list(Some("b")).len(), 2);
        assert_eq!(cache.list(None).len(), 3);
        let deleted = Arc::new(Mutex::new(Vec::new()));
        let d = deleted.clone();
        cache.on_change(move |c| {
            if let Change::Deleted(old) = c {
                d.lock().unwrap().push(old.metadata.name.clone().unwrap());
            }
        });
        cache.restart(vec![pod("b", "y", 2)]);
        let mut gone = deleted.lock().unwrap().clone();
        gone.sort();
        assert_eq!(gone, vec!["x", "z"]);
        assert!(cache.list(Some("a")).is_empty());
    }
}
