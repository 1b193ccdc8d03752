//! The one error type of the DNS server.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong while starting or running the cluster DNS.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A listening socket could not be opened.
    #[error("cannot listen for DNS on {addr} ({proto}): {source}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        source: std::io::Error,
    },
    /// The node's network namespace could not be entered.
    #[error("cannot enter network namespace {}: {reason}", path.display())]
    Netns { path: PathBuf, reason: String },
    /// An upstream resolver could not be asked.
    #[error("upstream resolver {addr}: {reason}")]
    Upstream { addr: SocketAddr, reason: String },
    /// No upstream resolver is configured.
    #[error("no upstream resolver configured")]
    NoUpstream,
    /// `--dns-upstream` has a value that is no address.
    #[error("invalid DNS upstream {0:?}: expected IP, IP:PORT or \"none\"")]
    InvalidUpstream(String),
    /// The DNS server stopped serving without being asked to.
    #[error("DNS server failed: {0}")]
    Serve(String),
    /// The kube-dns Endpoints or EndpointSlice could not be written.
    #[error("cannot publish the kube-dns endpoints: {0}")]
    Publish(String),
}
