//! The store's one error type. Each variant's doc is its message.

use std::path::PathBuf;

/// Why a store operation failed. The apiserver turns these into Kubernetes
/// `Status` bodies (NotFound → 404, AlreadyExists → 409 AlreadyExists,
/// Conflict → 409 Conflict, Expired → 410 Gone, the rest → 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// "object not found": get/update/delete of a key that holds nothing.
    #[error("object not found")]
    NotFound,
    /// "object already exists": create of a key that holds an object.
    #[error("object already exists")]
    AlreadyExists,
    /// "the object has been modified; please apply your changes to the
    /// latest version and try again": `expected_rv` differs from the stored
    /// object's resourceVersion.
    #[error("the object has been modified; please apply your changes to the latest version and try again")]
    Conflict,
    /// "too old resource version: the oldest revision a watch can start from
    /// is {oldest}": the events after the requested revision have left the
    /// in-memory history; the client must list again.
    #[error("too old resource version: the oldest revision a watch can start from is {oldest}")]
    Expired { oldest: u64 },
    /// "storage I/O error: {0}": sled or the file system failed. A write
    /// that fails while waiting for its flush may still become durable
    /// later, like a timed-out etcd write.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// "stored object at {key} is unreadable: {reason}": the bytes on disk
    /// are not an object this store wrote.
    #[error("stored object at {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    /// "invalid storage key {0:?}: keys and prefixes start with '/'".
    #[error("invalid storage key {0:?}: keys and prefixes start with '/'")]
    InvalidKey(String),
    /// "object for {key} cannot be stored: {reason}": not a JSON object, or
    /// `metadata` is not an object.
    #[error("object for {key} cannot be stored: {reason}")]
    InvalidObject { key: String, reason: String },
    /// "data dir {dir} was written by a newer minik8s (format {found}); this
    /// build reads format {supported}".
    #[error("data dir {} was written by a newer minik8s (format {found}); this build reads format {supported}", dir.display())]
    NewerFormat {
        dir: PathBuf,
        found: u32,
        supported: u32,
    },
    /// "data dir {dir} has an unreadable format marker: {reason}".
    #[error("data dir {} has an unreadable format marker: {reason}", dir.display())]
    UnreadableFormat { dir: PathBuf, reason: String },
    /// "data dir {dir} is not empty and has no minik8s format marker;
    /// refusing to use it": protects directories minik8s did not create.
    #[error("data dir {} is not empty and has no minik8s format marker; refusing to use it", dir.display())]
    NotADataDir { dir: PathBuf },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}
