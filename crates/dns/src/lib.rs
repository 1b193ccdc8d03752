//! The cluster DNS of minik8s: `cluster.local` answers from Services,
//! EndpointSlices and Pods, as CoreDNS's kubernetes plugin gives them, served
//! with hickory-server from inside the node's network namespace.
//!
//! Decisions are pure and tested without sockets: `objects` (the DNS view of
//! API objects), `records` (which records exist), `lookup` (how a question is
//! answered), `kube_dns` (the endpoints the server publishes for itself).
//! `feed` keeps the table current from watches; `handler`, `forward`,
//! `sockets` and `server` are the network side.

mod config;
mod error;
pub mod feed;
pub mod forward;
mod handler;
pub mod kube_dns;
pub mod lookup;
mod name_hash;
pub mod objects;
pub mod records;
mod server;
mod shared;
mod sockets;

pub use config::{DnsConfig, Upstream};
pub use error::DnsError;
pub use records::{build_table, Table, ZoneConfig};
pub use server::DnsServer;
pub use shared::SharedTable;
