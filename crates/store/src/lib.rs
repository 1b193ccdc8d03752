//! Durable object storage for minik8s: one global revision, optimistic
//! concurrency and resumable watches, behind the [`Store`] trait.
//!
//! [`SledStore`] keeps objects in sled and acknowledges a write only once it
//! is on disk (group commit: concurrent writers share one flush). Watches are
//! served from an in-memory history keyed by revision, because sled's own
//! subscriptions cannot resume from a revision.

mod commit;
mod error;
mod format;
mod history;
mod sled_store;

pub use error::StoreError;
pub use sled_store::{SledStore, StoreConfig};

use serde_json::Value;
use std::sync::Arc;

/// The storage contract the apiserver is written against. Keys are
/// `/registry/<group|core>/<plural>/[<ns>/]<name>`; objects are JSON objects
/// whose `metadata.resourceVersion` the store owns.
///
/// The methods block (disk I/O, waiting for a flush); async callers use
/// `tokio::task::spawn_blocking`.
pub trait Store: Send + Sync + 'static {
    /// The object at `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Value>, StoreError>;
    /// Objects under prefix (key order) and the store's current revision.
    fn list(&self, prefix: &str) -> Result<(Vec<Value>, u64), StoreError>;
    /// Fails AlreadyExists. Sets metadata.resourceVersion to the new
    /// revision. Returns only once durable (survives kill -9).
    fn create(&self, key: &str, obj: Value) -> Result<Value, StoreError>;
    /// Fails NotFound; Conflict when `expected_rv` is Some and differs from
    /// the stored object's resourceVersion.
    fn update(&self, key: &str, obj: Value, expected_rv: Option<u64>) -> Result<Value, StoreError>;
    /// Returns the deleted object with the deletion's revision as its
    /// resourceVersion (what a DELETED watch event carries).
    fn delete(&self, key: &str, expected_rv: Option<u64>) -> Result<Value, StoreError>;
    /// Events with revision > from_rv under prefix, then live ones.
    /// Expired when from_rv is older than the in-memory history.
    fn watch(
        &self,
        prefix: &str,
        from_rv: u64,
    ) -> Result<tokio::sync::mpsc::Receiver<StoreEvent>, StoreError>;
    /// The newest durable revision (what a list made now would report).
    fn current_revision(&self) -> u64;

    /// [`Store::get`] without copying: the object may be shared with the
    /// store's own cache. Stores that keep decoded objects override it.
    fn get_shared(&self, key: &str) -> Result<Option<Arc<Value>>, StoreError> {
        Ok(self.get(key)?.map(Arc::new))
    }

    /// [`Store::list`] without copying: a list of thousands of objects
    /// then costs a reference count each, not a parse or a deep copy.
    fn list_shared(&self, prefix: &str) -> Result<(Vec<Arc<Value>>, u64), StoreError> {
        let (objects, revision) = self.list(prefix)?;
        Ok((objects.into_iter().map(Arc::new).collect(), revision))
    }
}

/// What a write did to its key; the watch event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreEventType {
    Added,
    Modified,
    Deleted,
}

impl StoreEventType {
    /// The Kubernetes watch event type (`ADDED`, `MODIFIED`, `DELETED`).
    pub fn as_str(self) -> &'static str {
        match self {
            StoreEventType::Added => "ADDED",
            StoreEventType::Modified => "MODIFIED",
            StoreEventType::Deleted => "DELETED",
        }
    }
}

/// One write, as watchers see it. `object` carries
/// `metadata.resourceVersion` == `revision`; for `Deleted` it is the object
/// as it was, stamped with the deletion's revision.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreEvent {
    pub kind: StoreEventType,
    pub key: String,
    pub object: Value,
    /// For `Modified`: what label and field selectors see of the version
    /// before (`api::selector::selection_attributes`), so a watch with a
    /// selector knows whether the object entered, left or stayed in its
    /// selection. `None` for `Added` and `Deleted` (`object` is the state
    /// that was deleted).
    pub prev: Option<Arc<Value>>,
    pub revision: u64,
}
