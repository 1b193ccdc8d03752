//! The machinery every controller shares: watched caches, a coalescing
//! work queue, a worker loop, typed writes.

pub mod cache;
pub mod queue;
pub mod typed_api;
pub mod worker;

pub use cache::{Cache, Change, ObjectRef};
pub use queue::WorkQueue;
pub use typed_api::TypedApi;
pub use worker::{feed_cache, run_worker, Action};
