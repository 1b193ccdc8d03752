//! The cluster DNS of minik8s: `cluster.local` answers from Services,
//! EndpointSlices and Pods, as CoreDNS's kubernetes plugin gives them, served
//! with hickory-server from inside the node's network namespace.
//!
//! Decisions are pure and tested without sockets: `objects` (the DNS view of
//! API objects), `records` (which records exist), `lookup` (how a question is
//! answered), `kube_dns` (the endpoints the server publishes for itself).
//! `table` holds the records, changed in place one object at a time;
//! `feed` keeps it current from watches. `handler`, `forward`, `sockets`
//! and `server` are the network side: hickory-server answers TCP and
//! every unusual question, while `udp_fast` (with `batch_io`,
//! `fast_query`, `fast_answer`, `fallback`) answers the common UDP
//! questions for the cluster's names without decoding whole messages.

mod batch_io;
mod config;
mod error;
mod fallback;
mod fast_answer;
mod fast_query;
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
mod table;
mod udp_fast;

pub use config::{DnsConfig, Upstream};
pub use error::DnsError;
pub use records::{build_table, Table, ZoneConfig};
pub use server::DnsServer;
pub use shared::SharedTable;
