//! minik8s' kube-proxy: it turns Services and EndpointSlices into the
//! iptables rules of kube-proxy's iptables mode, inside the node's network
//! namespace.
//!
//! Decisions (`model`, `plan`, `restore`) are pure; `kernel` (with the
//! netlink writer in `nft`) is the only part that touches the kernel;
//! `syncer` is one sync (plan, render, write) and `sync` the watch loop
//! that triggers it.

pub mod chain_name;
pub mod kernel;
pub mod model;
pub mod nft;
pub mod plan;
pub mod planner;
pub mod restore;
mod sync;
pub mod syncer;

pub use kernel::{Backend, IptablesInNetns, RuleWriter};
pub use sync::{Proxy, ProxyConfig};
pub use syncer::{RuleSync, SyncStats};

/// What can go wrong while programming rules.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A program (iptables-restore, iptables-save) could not be started.
    #[error("cannot run {0} in the node network namespace: {1}")]
    Spawn(&'static str, String),
    /// iptables-restore refused the transaction.
    #[error("iptables-restore failed: {0}")]
    Restore(String),
    /// nf_tables refused the netlink writer's transaction (nothing
    /// changed), or could not be reached.
    #[error("writing rules over netlink failed: {0}")]
    Netlink(String),
}
