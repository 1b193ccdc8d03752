//! [`SledStore`]: the [`Store`] on sled.
//!
//! Layout (format 1): `<data-dir>/minik8s-format` holds the format number;
//! `<data-dir>/db` is the sled database. Its `objects` tree maps each key to
//! the object's JSON, plus one reserved key outside the `/` namespace that
//! holds the newest revision. Each write updates its object and that
//! revision in one atomic sled batch, so after a crash the revision on disk
//! is never behind an object on disk, and deleted objects' revisions are
//! never handed out again.
//!
//! Writes are serialized by one mutex (validation, revision assignment, the
//! in-memory apply and queueing the event), then wait for a shared flush
//! ([`GroupCommit`]). The flush leader publishes the queued events to the
//! watch history only after the flush, so watchers never see a write that a
//! crash could undo. Reads likewise wait until what they saw is durable.
//!
//! Reads never touch sled: every object is also kept decoded in memory
//! (loaded at open, updated by each write under the writer mutex), and
//! [`Store::list_shared`] hands out shared references to them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::commit::GroupCommit;
use crate::history::{EncodedEvent, WatchHistory};
use crate::{format, Store, StoreError, StoreEvent, StoreEventType};

/// Holds the newest revision; `\0` sorts before and apart from every `/`
/// key, so no prefix scan ever returns it.
const REVISION_KEY: &[u8] = b"\0revision";
const OBJECTS_TREE: &str = "objects";
const DB_DIR: &str = "db";

/// Tunables of a [`SledStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Events kept in memory for resuming watches; a watch from before the
    /// oldest of them is `Expired`.
    pub history_len: usize,
    /// Live events a watcher may lag behind by before its stream is closed.
    pub watch_channel_capacity: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            history_len: 10_000,
            watch_channel_capacity: 1024,
        }
    }
}

/// Durable [`Store`] in a data directory. Open one per directory: sled locks
/// the database against a second opener.
pub struct SledStore {
    dir: PathBuf,
    db: sled::Db,
    objects: sled::Tree,
    writer: Mutex<WriterState>,
    commit: GroupCommit,
    history: WatchHistory,
}

/// Guarded by the writer mutex: the newest revision applied to sled (maybe
/// not yet durable), its events waiting for the flush that publishes them,
/// and every stored object, decoded.
struct WriterState {
    applied: u64,
    pending: Vec<EncodedEvent>,
    /// What sled holds, as of `applied`: reads are served from here, so a
    /// list shares decoded objects instead of parsing each one's JSON again
    /// (kube-apiserver's watch cache does the same). Kept in key order for
    /// prefix scans.
    objects: BTreeMap<String, Arc<Value>>,
}

enum WriteOp {
    Create(Value),
    Update(Value, Option<u64>),
    Delete(Option<u64>),
}

/// How long to wait for sled's file lock, which a store dropped in this
/// same process can hold a moment longer: sled's I/O threads let go of the
/// file after the last handle is gone. Another process holding it (a
/// second server on the same data dir) still fails, after this wait.
const LOCK_WAIT: Duration = Duration::from_secs(3);

fn open_db(db_path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let opened = sled::Config::new()
            .path(db_path)
            // Every acknowledged write is flushed by its writer; a timer
            // flush would only add fsyncs competing with theirs.
            .flush_every_ms(None)
            .open();
        match opened {
            Ok(db) => return Ok(db),
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(StoreError::Io(format!(
                    "opening {}: {e}",
                    db_path.display()
                )))
            }
        }
    }
}

impl SledStore {
    /// Opens (creating if needed) the store in `dir` with default tunables.
    pub fn open(dir: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        SledStore::open_with(dir, StoreConfig::default())
    }

    /// Opens (creating if needed) the store in `dir`. Fails with
    /// `NewerFormat` for a directory written by a newer minik8s, and
    /// `NotADataDir` for a non-empty directory minik8s did not create.
    pub fn open_with(dir: impl AsRef<Path>, config: StoreConfig) -> Result<SledStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        format::check_or_init(&dir)?;
        let db_path = dir.join(DB_DIR);
        let db = open_db(&db_path)?;
        let objects = db.open_tree(OBJECTS_TREE)?;
        let revision = match objects.get(REVISION_KEY)? {
            None => 0,
            Some(bytes) => decode_revision(&bytes)?,
        };
        let decoded = load_objects(&objects)?;
        Ok(SledStore {
            dir,
            db,
            objects,
            writer: Mutex::new(WriterState {
                applied: revision,
                pending: Vec::new(),
                objects: decoded,
            }),
            commit: GroupCommit::new(revision),
            history: WatchHistory::new(revision, config.history_len, config.watch_channel_capacity),
        })
    }

    /// The data directory this store was opened on.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, key: &str, op: WriteOp) -> Result<Value, StoreError> {
        check_key(key)?;
        let (rev, object) = {
            let mut writer = self.lock_writer();
            let stored = writer.objects.get(key);
            let rev = writer.applied + 1;
            let (kind, object, prev) = match op {
                WriteOp::Create(obj) => {
                    if stored.is_some() {
                        return Err(StoreError::AlreadyExists);
                    }
                    (StoreEventType::Added, stamp(key, obj, rev)?, None)
                }
                WriteOp::Update(obj, expected) => {
                    let stored = stored.ok_or(StoreError::NotFound)?;
                    check_expected(key, stored, expected)?;
                    // Only what selectors read: a few hundred bytes per
                    // event in the history, not a second object.
                    let prev = Arc::new(api::selector::selection_attributes(stored));
                    (StoreEventType::Modified, stamp(key, obj, rev)?, Some(prev))
                }
                WriteOp::Delete(expected) => {
                    let stored = stored.ok_or(StoreError::NotFound)?;
                    check_expected(key, stored, expected)?;
                    (
                        StoreEventType::Deleted,
                        stamp(key, (**stored).clone(), rev)?,
                        None,
                    )
                }
            };
            // The bytes written are also what the watch history keeps.
            let encoded: Arc<[u8]> = encode(key, &object)?.into();
            let mut batch = sled::Batch::default();
            match kind {
                StoreEventType::Deleted => batch.remove(key.as_bytes()),
                _ => batch.insert(key.as_bytes(), &*encoded),
            }
            batch.insert(REVISION_KEY, &rev.to_be_bytes());
            // All-or-nothing: on error neither the object nor the revision
            // changed, so the revision is simply not consumed.
            self.objects.apply_batch(batch)?;
            match kind {
                StoreEventType::Deleted => writer.objects.remove(key),
                _ => writer
                    .objects
                    .insert(key.to_string(), Arc::new(object.clone())),
            };
            writer.applied = rev;
            writer.pending.push(EncodedEvent {
                kind,
                key: key.to_string(),
                object: encoded,
                prev,
                revision: rev,
            });
            (rev, object)
        };
        self.wait_durable(rev)?;
        Ok(object)
    }

    /// Blocks until every write up to `rev` is on disk (and published).
    fn wait_durable(&self, rev: u64) -> Result<(), StoreError> {
        self.commit.wait_durable(rev, || self.flush_and_publish())
    }

    /// The group-commit leader's job: flush everything applied so far, then
    /// publish its events in revision order. Returns the revision covered.
    fn flush_and_publish(&self) -> Result<u64, StoreError> {
        let (through, events) = {
            let mut writer = self.lock_writer();
            (writer.applied, std::mem::take(&mut writer.pending))
        };
        if let Err(e) = self.db.flush() {
            // Keep the events (ahead of any queued since) for the next leader.
            let mut writer = self.lock_writer();
            let newer = std::mem::replace(&mut writer.pending, events);
            writer.pending.extend(newer);
            return Err(e.into());
        }
        self.history.publish(events);
        Ok(through)
    }

    fn lock_writer(&self) -> MutexGuard<'_, WriterState> {
        // A panic under this lock happens before `applied`/`pending` change
        // (they are updated last, together), so the state is still sound.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for SledStore {
    fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        Ok(self.get_shared(key)?.map(Arc::unwrap_or_clone))
    }

    fn list(&self, prefix: &str) -> Result<(Vec<Value>, u64), StoreError> {
        let (objects, revision) = self.list_shared(prefix)?;
        Ok((
            objects.into_iter().map(Arc::unwrap_or_clone).collect(),
            revision,
        ))
    }

    fn get_shared(&self, key: &str) -> Result<Option<Arc<Value>>, StoreError> {
        check_key(key)?;
        let (object, applied) = {
            let writer = self.lock_writer();
            (writer.objects.get(key).cloned(), writer.applied)
        };
        match object {
            // Absence may come from a delete still in flight: wait for all
            // writes seen so far (in the common idle case, no wait at all).
            None => {
                self.wait_durable(applied)?;
                Ok(None)
            }
            // The object's own revision is the newest write it reflects.
            Some(object) => {
                self.wait_durable(resource_version(key, &object)?)?;
                Ok(Some(object))
            }
        }
    }

    fn list_shared(&self, prefix: &str) -> Result<(Vec<Arc<Value>>, u64), StoreError> {
        check_prefix(prefix)?;
        let scan = if prefix.is_empty() { "/" } else { prefix };
        // Read under the writer lock, the result is exactly the writes
        // <= `applied`; it is returned once those are durable.
        let (objects, applied) = {
            let writer = self.lock_writer();
            let objects: Vec<Arc<Value>> = writer
                .objects
                .range::<str, _>((std::ops::Bound::Included(scan), std::ops::Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(scan))
                .map(|(_, v)| v.clone())
                .collect();
            (objects, writer.applied)
        };
        self.wait_durable(applied)?;
        Ok((objects, applied))
    }

    fn create(&self, key: &str, obj: Value) -> Result<Value, StoreError> {
        self.write(key, WriteOp::Create(obj))
    }

    fn update(&self, key: &str, obj: Value, expected_rv: Option<u64>) -> Result<Value, StoreError> {
        self.write(key, WriteOp::Update(obj, expected_rv))
    }

    fn delete(&self, key: &str, expected_rv: Option<u64>) -> Result<Value, StoreError> {
        self.write(key, WriteOp::Delete(expected_rv))
    }

    fn watch(&self, prefix: &str, from_rv: u64) -> Result<mpsc::Receiver<StoreEvent>, StoreError> {
        check_prefix(prefix)?;
        self.history.watch(prefix, from_rv)
    }

    fn current_revision(&self) -> u64 {
        self.commit.durable()
    }
}

/// Every stored object, decoded: what reads are served from.
fn load_objects(tree: &sled::Tree) -> Result<BTreeMap<String, Arc<Value>>, StoreError> {
    let mut objects = BTreeMap::new();
    for entry in tree.scan_prefix("/") {
        let (k, v) = entry?;
        let key = String::from_utf8(k.to_vec()).map_err(|_| StoreError::Corrupt {
            key: String::from_utf8_lossy(&k).into_owned(),
            reason: "key is not UTF-8".to_string(),
        })?;
        let object = decode(&key, &v)?;
        objects.insert(key, Arc::new(object));
    }
    Ok(objects)
}

/// Object keys live under `/`; everything else is reserved for the store.
fn check_key(key: &str) -> Result<(), StoreError> {
    if key.starts_with('/') {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(key.to_string()))
    }
}

/// Like [`check_key`], but the empty prefix (everything) is allowed too.
fn check_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.is_empty() {
        Ok(())
    } else {
        check_key(prefix)
    }
}

/// Sets `metadata.resourceVersion` to `rev` (creating `metadata` if absent).
fn stamp(key: &str, mut obj: Value, rev: u64) -> Result<Value, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidObject {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let map = obj
        .as_object_mut()
        .ok_or_else(|| invalid("not a JSON object"))?;
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    metadata
        .as_object_mut()
        .ok_or_else(|| invalid("metadata is not a JSON object"))?
        .insert(
            "resourceVersion".to_string(),
            Value::String(rev.to_string()),
        );
    Ok(obj)
}

/// The revision the store stamped on a stored object.
fn resource_version(key: &str, obj: &Value) -> Result<u64, StoreError> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Corrupt {
            key: key.to_string(),
            reason: "metadata.resourceVersion is missing or not a number".to_string(),
        })
}

fn check_expected(key: &str, stored: &Value, expected: Option<u64>) -> Result<(), StoreError> {
    match expected {
        Some(rv) if rv != resource_version(key, stored)? => Err(StoreError::Conflict),
        _ => Ok(()),
    }
}

fn encode(key: &str, obj: &Value) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(obj).map_err(|e| StoreError::InvalidObject {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn decode(key: &str, bytes: &[u8]) -> Result<Value, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn decode_revision(bytes: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        key: String::from_utf8_lossy(REVISION_KEY).into_owned(),
        reason: format!("revision is {} bytes, expected 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing_tests;
