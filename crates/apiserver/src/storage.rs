//! Async access to the blocking [`Store`]: every call runs on tokio's
//! blocking pool so a sled flush never stalls the request executor.

use serde_json::Value;
use std::sync::Arc;
use store::{Store, StoreError, StoreEvent};
use tokio::sync::mpsc;

/// A write of one key, as [`crate::allocator::settled_write`] carries it
/// to the blocking pool.
pub enum Write {
    Create(Value),
    /// The new object and the resourceVersion it must replace.
    Update(Value, Option<u64>),
    Delete(Option<u64>),
}

impl Write {
    pub fn apply(self, store: &dyn Store, key: &str) -> Result<Value, StoreError> {
        match self {
            Write::Create(obj) => store.create(key, obj),
            Write::Update(obj, rv) => store.update(key, obj, rv),
            Write::Delete(rv) => store.delete(key, rv),
        }
    }
}

/// A cheap handle on the store for request handlers.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn Store>,
}

impl Storage {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Storage { store }
    }

    /// Run `f` on the blocking pool. It runs to its end even when the
    /// caller stops waiting.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| StoreError::Io(format!("storage task failed: {e}")))?
    }

    pub async fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let key = key.to_string();
        self.blocking(move |s| s.get(&key)).await
    }

    pub async fn list(&self, prefix: &str) -> Result<(Vec<Value>, u64), StoreError> {
        let prefix = prefix.to_string();
        self.blocking(move |s| s.list(&prefix)).await
    }

    /// [`Storage::list`] sharing the store's decoded objects.
    pub async fn list_shared(&self, prefix: &str) -> Result<(Vec<Arc<Value>>, u64), StoreError> {
        let prefix = prefix.to_string();
        self.blocking(move |s| s.list_shared(&prefix)).await
    }

    pub async fn create(&self, key: &str, obj: Value) -> Result<Value, StoreError> {
        let key = key.to_string();
        self.blocking(move |s| s.create(&key, obj)).await
    }

    pub async fn update(
        &self,
        key: &str,
        obj: Value,
        expected_rv: Option<u64>,
    ) -> Result<Value, StoreError> {
        let key = key.to_string();
        self.blocking(move |s| s.update(&key, obj, expected_rv))
            .await
    }

    pub async fn delete(&self, key: &str, expected_rv: Option<u64>) -> Result<Value, StoreError> {
        let key = key.to_string();
        self.blocking(move |s| s.delete(&key, expected_rv)).await
    }

    /// Watch registration only touches memory, so it runs inline.
    pub fn watch(
        &self,
        prefix: &str,
        from_rv: u64,
    ) -> Result<mpsc::Receiver<StoreEvent>, StoreError> {
        self.store.watch(prefix, from_rv)
    }

    pub fn current_revision(&self) -> u64 {
        self.store.current_revision()
    }
}
