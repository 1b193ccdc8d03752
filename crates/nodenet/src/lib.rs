//! nodenet: the kernel side of a minik8s node's network.
//!
//! One node is a named network namespace (`ip netns list` shows it) joined
//! to the host by a veth pair; inside it a bridge `cni0` carries the Pod
//! sandboxes, each its own named namespace with a veth into the bridge and
//! an address from the node's Pod CIDR. The host routes the cluster CIDRs
//! (Pods, Services, LoadBalancer pool) to the node, so no packet for a
//! cluster address leaves the machine, and the host's own iptables rules
//! and sysctls are never touched: forwarding and bridge netfilter are
//! switched on inside the node namespace only.
//!
//! Links, addresses and routes are made over netlink (rtnetlink); a
//! namespace is entered on a fresh OS thread that opens its sockets there.
//! Pure planning lives in `names` (kernel object names), `ipam` (Pod
//! addresses) and `config` (validation); `state` persists allocations. The
//! adapters: `netns` (named namespaces, entering them), `netlink` (links,
//! addresses, routes), `node_links` and `routes` (the node's plumbing),
//! `sandbox` (one Pod), `node` (the public `NodeNetwork`) and `adopt`
//! (what a crashed server left).
//!
//! ```no_run
//! # async fn demo() -> Result<(), nodenet::NodeNetError> {
//! use nodenet::{command_in_netns, run_in_netns, NodeNetConfig, NodeNetwork};
//! let cfg = NodeNetConfig {
//!     state_dir: "/var/lib/minik8s/network".into(),
//!     ..NodeNetConfig::default()
//! };
//! let node = NodeNetwork::setup(cfg).await?; // adopts what a crashed server left
//! let pod = node.create_sandbox("6f1c2d3e-...", "default", "web-7d4b9-x2x4z").await?;
//! // pod.netns_path: setns() target for the Pod's containers; pod.ip: its IP.
//! // Sockets inside the node netns (the DNS server) and iptables-restore:
//! let udp = run_in_netns(&node.netns_path(), || std::net::UdpSocket::bind("0.0.0.0:53"))?;
//! let restore = command_in_netns(&node.netns_path(), "iptables-restore");
//! node.remove_sandbox(&pod.pod_uid).await?;
//! node.teardown().await?; // on server shutdown: nothing left behind
//! # let _ = (udp, restore);
//! # Ok(()) }
//! ```

mod adopt;
mod config;
mod error;
pub mod ipam;
pub mod names;
mod netlink;
mod netns;
mod node;
mod node_links;
mod routes;
mod sandbox;
mod state;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use config::NodeNetConfig;
pub use error::NodeNetError;
pub use netns::{command_in_netns, named_netns_path, run_in_netns, NETNS_DIR};
pub use node::NodeNetwork;

/// A Pod's network sandbox: where its containers run and how they are
/// reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub pod_uid: String,
    /// Visible in `ip netns list`; `ip netns exec <netns_name> ...` enters it.
    pub netns_name: String,
    /// `/run/netns/<netns_name>`, for setns(2).
    pub netns_path: PathBuf,
    /// The Pod IP (on the Pod's `eth0`).
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    /// The bridge address, the Pod's default gateway.
    pub gateway: Ipv4Addr,
    /// The Pod's veth peer inside the node netns, a port of `cni0`.
    pub host_veth: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kubelet shares one `NodeNetwork` between tasks and spawns its
    /// futures: they must be Send, the value Send + Sync. Compiling this is
    /// the test.
    #[allow(dead_code, clippy::manual_async_fn)]
    fn node_network_is_shareable(
        net: &'static NodeNetwork,
        owned: NodeNetwork,
        cfg: NodeNetConfig,
    ) {
        fn is_send<T: Send>(_: &T) {}
        fn is_sync<T: Send + Sync>() {}
        is_sync::<NodeNetwork>();
        is_send(&NodeNetwork::setup(cfg));
        is_send(&net.create_sandbox("uid", "default", "pod"));
        is_send(&net.remove_sandbox("uid"));
        is_send(&owned.teardown());
    }
}
