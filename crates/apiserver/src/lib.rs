//! The minik8s API server: Kubernetes-shaped REST over HTTP, generic over
//! the kinds of `api::registry`, backed by a [`store::Store`].
//!
//! One set of handlers serves every kind (create, get, list, update, patch,
//! delete, watch, table printing); the streaming subresources of Pods
//! (`log`, `exec`, `attach`) are bridged to a [`podio::PodIo`].

mod admission;
mod allocator;
mod body;
mod bootstrap;
mod config;
mod decoding;
mod delete;
mod discovery;
mod error;
mod exec;
mod logs;
mod negotiate;
mod object_meta;
mod patch;
mod protobuf;
mod query;
mod read;
mod request_path;
mod resources;
mod scale;
mod selection;
mod server;
mod storage;
mod table;
mod watch;
mod write;

pub use bootstrap::bootstrap;
pub use config::{ApiServerConfig, DEFAULT_MAX_BODY_BYTES};
pub use error::ApiError;
pub use server::{router, serve, ApiServer};

#[cfg(test)]
mod tests;
