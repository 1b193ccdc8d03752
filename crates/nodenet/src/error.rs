//! The one error type of the node network adapter.
//!
//! Every variant names the object (link, namespace, file, route) and the
//! operation that failed, so a log line alone says what to look at with
//! `ip netns list`, `ip link` or `ip route`.

use std::io;
use std::path::PathBuf;

use ipnet::Ipv4Net;

#[derive(Debug, thiserror::Error)]
pub enum NodeNetError {
    /// The configuration cannot describe a working node network.
    #[error("invalid node network configuration: {0}")]
    InvalidConfig(String),

    /// Setting up namespaces, links and routes needs CAP_NET_ADMIN and
    /// CAP_SYS_ADMIN; `minik8s server` runs as root.
    #[error("node network setup needs root (effective uid is {euid})")]
    NotRoot { euid: u32 },

    /// A netlink request was refused by the kernel.
    #[error("netlink {op} of {target} in {netns} failed: {source}")]
    Netlink {
        op: &'static str,
        target: String,
        netns: String,
        // Boxed: rtnetlink's error can carry a whole netlink message.
        #[source]
        source: Box<rtnetlink::Error>,
    },

    /// A link that must exist was not found.
    #[error("link {name} not found in {netns}")]
    LinkNotFound { name: String, netns: String },

    /// Creating, entering or removing a network namespace failed.
    #[error("{op} of network namespace {netns} failed: {source}")]
    Netns {
        op: &'static str,
        netns: String,
        #[source]
        source: io::Error,
    },

    /// A named network namespace already exists and is not ours to adopt.
    #[error("network namespace {netns} already exists")]
    NetnsExists { netns: String },

    /// Reading or writing a file (state, sysctl) failed.
    #[error("{op} {path} failed: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The persisted allocations cannot be parsed; refusing to guess which
    /// addresses are in use.
    #[error("state file {path} is corrupt: {reason}")]
    CorruptState { path: PathBuf, reason: String },

    /// Every usable address of the node's Pod CIDR is allocated.
    #[error("no free address left in Pod CIDR {cidr}")]
    PodCidrExhausted { cidr: Ipv4Net },

    /// A host route for a cluster CIDR exists and points somewhere else;
    /// replacing it could cut off another minik8s server or the host itself.
    #[error("host route to {dst} already exists via {existing}, not via {wanted}")]
    RouteConflict {
        dst: Ipv4Net,
        existing: String,
        wanted: String,
    },

    /// The kernel did not bring a Pod's bridge port (or the bridge) up in
    /// time.
    #[error("bridge port {link} in {netns} is not forwarding after {waited:?}")]
    PortNotForwarding {
        link: String,
        netns: String,
        waited: std::time::Duration,
    },

    /// A helper thread that entered a namespace could not be run or joined.
    #[error("namespace thread for {op} failed: {reason}")]
    Thread { op: &'static str, reason: String },
}

impl NodeNetError {
    /// The errno behind a netlink or namespace error, if any: lets callers
    /// treat EEXIST / ENODEV / ENOENT as "already done".
    pub fn errno(&self) -> Option<i32> {
        match self {
            NodeNetError::Netlink { source, .. } => netlink_errno(source),
            NodeNetError::Netns { source, .. } | NodeNetError::Io { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}

/// The positive errno of a kernel NACK.
pub(crate) fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io().raw_os_error(),
        _ => None,
    }
}
