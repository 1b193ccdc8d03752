//! The node: its netns, the host<->node veth, the Pod bridge, host routes
//! for the cluster CIDRs, and the bookkeeping of its Pod sandboxes.
//!
//! `setup` is "make it so": after `kill -9` of a server, a new `setup` with
//! the same configuration adopts what is there (same names), repairs what is
//! broken, removes sandboxes nobody recorded, and creates what is missing.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::config::{host_route_dsts, validate};
use crate::error::NodeNetError;
use crate::ipam::{gateway_of, PodIpam};
use crate::names;
use crate::netlink::Netlink;
use crate::netns::{delete_named_netns, named_netns_path, prepare_netns_dir};
use crate::node_links::{enable_forwarding, ensure_bridge, ensure_node_link, ensure_node_netns};
use crate::routes::{check_host_routes_free, ensure_host_routes, ensure_node_routes};
use crate::sandbox::{build_sandbox, destroy_sandbox, plan_sandbox};
use crate::state::{PersistedState, StateFile};
use crate::{NodeNetConfig, Sandbox};

/// A node's network, set up and owned by one server. Dropping it leaves
/// the kernel objects in place, as a crash would (the next `setup` adopts
/// them); `teardown` removes them.
pub struct NodeNetwork {
    pub(crate) cfg: NodeNetConfig,
    pub(crate) netns_path: PathBuf,
    pub(crate) host_veth: String,
    pub(crate) bridge_ip: Ipv4Addr,
    pub(crate) bridge_index: u32,
    /// Netlink in the server's own (host) namespace.
    pub(crate) host: Netlink,
    /// Netlink in the node namespace.
    pub(crate) node: Netlink,
    pub(crate) state_file: StateFile,
    pub(crate) book: Mutex<Book>,
    /// Serialises sandbox creation and removal: each is a short sequence of
    /// kernel steps plus a durable write, and running them one at a time
    /// keeps "one uid, one sandbox" trivially true.
    pub(crate) ops: tokio::sync::Mutex<()>,
}

/// Address allocations and sandbox records, in memory.
pub(crate) struct Book {
    pub(crate) ipam: PodIpam,
    /// Sandboxes that are fully built.
    pub(crate) sandboxes: BTreeMap<String, Sandbox>,
    /// The sandbox being built: persisted (its address is taken) but not
    /// reported by `sandboxes()` yet.
    pub(crate) pending: Option<Sandbox>,
}

impl Book {
    pub(crate) fn persisted(&self) -> PersistedState {
        PersistedState::new(
            self.ipam.cidr(),
            self.ipam.last_reserved(),
            self.sandboxes
                .values()
                .chain(self.pending.as_ref())
                .cloned()
                .collect(),
        )
    }
}

impl NodeNetwork {
    /// Creates the node network, or adopts and repairs the one a previous
    /// server with the same configuration left.
    pub async fn setup(cfg: NodeNetConfig) -> Result<NodeNetwork, NodeNetError> {
        validate(&cfg)?;
        let euid = nix::unistd::geteuid().as_raw();
        if euid != 0 {
            return Err(NodeNetError::NotRoot { euid });
        }
        // A corrupt state file stops setup before anything is created.
        let state_file = StateFile::new(&cfg.state_dir);
        let saved = state_file.load()?;
        let host = Netlink::connect_here("host")?;
        let host_veth = names::node_host_veth_name(&cfg.prefix, &cfg.name);
        // Refuse before creating anything when a cluster CIDR is routed
        // elsewhere.
        let host_index = host.link(&host_veth).await?.map(|l| l.index);
        check_host_routes_free(&cfg, &host.routes().await?, host_index, &host_veth)?;

        prepare_netns_dir()?;
        let netns_path = named_netns_path(&cfg.name);
        ensure_node_netns(&cfg.name, &netns_path).await?;
        let node = Netlink::connect_in(&netns_path, &cfg.name).await?;
        let bridge_ip = gateway_of(cfg.pod_cidr);
        let bridge_index = ensure_bridge(&node, bridge_ip, cfg.pod_cidr.prefix_len()).await?;
        enable_forwarding(&netns_path, &cfg.name).await?;

        let host_index = ensure_node_link(&cfg, &host, &node, &host_veth).await?;
        ensure_node_routes(&cfg, &node, bridge_index).await?;
        ensure_host_routes(&cfg, &host, &host_veth, host_index).await?;

        let network = NodeNetwork {
            book: Mutex::new(Book {
                ipam: PodIpam::new(cfg.pod_cidr),
                sandboxes: BTreeMap::new(),
                pending: None,
            }),
            cfg,
            netns_path,
            host_veth,
            bridge_ip,
            bridge_index,
            host,
            node,
            state_file,
            ops: tokio::sync::Mutex::new(()),
        };
        network.adopt_sandboxes(saved).await?;
        network.remove_unrecorded_sandboxes().await?;
        Ok(network)
    }

    /// `/run/netns/<name>` of the node.
    pub fn netns_path(&self) -> PathBuf {
        self.netns_path.clone()
    }

    /// The node netns name (`ip netns exec <name> ...`).
    pub fn netns_name(&self) -> &str {
        &self.cfg.name
    }

    pub fn config(&self) -> &NodeNetConfig {
        &self.cfg
    }

    /// NodeIP: the node's address on the host<->node link.
    pub fn node_ip(&self) -> Ipv4Addr {
        self.cfg.node_ip
    }

    /// The bridge's address, every Pod's default gateway.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        self.bridge_ip
    }

    /// The host side of the host<->node veth (`mk-node-h`).
    pub fn host_veth(&self) -> &str {
        &self.host_veth
    }

    /// Every sandbox this node knows, including those adopted by `setup`,
    /// so a restarted kubelet can re-use them.
    pub fn sandboxes(&self) -> Vec<Sandbox> {
        self.book
            .lock()
            .expect("book lock")
            .sandboxes
            .values()
            .cloned()
            .collect()
    }

    /// Creates the Pod's sandbox, or returns the existing one for this uid.
    /// The address is persisted before it is handed out.
    pub async fn create_sandbox(
        &self,
        pod_uid: &str,
        namespace: &str,
        pod_name: &str,
    ) -> Result<Sandbox, NodeNetError> {
        let _op = self.ops.lock().await;
        self.undo_cancelled_create().await;
        let (sandbox, state) = {
            let mut book = self.book.lock().expect("book lock");
            if let Some(existing) = book.sandboxes.get(pod_uid) {
                return Ok(existing.clone());
            }
            let ip = book.ipam.allocate(pod_uid)?;
            let sandbox = plan_sandbox(
                &self.cfg.netns_prefix,
                pod_uid,
                namespace,
                pod_name,
                ip,
                self.cfg.pod_cidr,
                self.bridge_ip,
            );
            book.pending = Some(sandbox.clone());
            (sandbox, book.persisted())
        };
        // The durable write and the kernel work overlap; the sandbox is only
        // returned once both are done. Should the server die in between,
        // `setup` recognises the netns as this node's by its veth.
        let (saved, built) = tokio::join!(
            self.save(state),
            build_sandbox(&self.node, self.bridge_index, &sandbox)
        );
        if let Err(e) = saved.and(built) {
            let _ = destroy_sandbox(&self.node, &sandbox).await;
            let state = {
                let mut book = self.book.lock().expect("book lock");
                book.pending = None;
                book.ipam.release(pod_uid);
                book.persisted()
            };
            let _ = self.save(state).await;
            return Err(e);
        }
        let mut book = self.book.lock().expect("book lock");
        book.pending = None;
        book.sandboxes.insert(pod_uid.to_string(), sandbox.clone());
        Ok(sandbox)
    }

    /// Removes the Pod's sandbox and releases its address. Unknown uids are
    /// fine (already removed).
    pub async fn remove_sandbox(&self, pod_uid: &str) -> Result<(), NodeNetError> {
        let _op = self.ops.lock().await;
        self.undo_cancelled_create().await;
        let Some(sandbox) = self
            .book
            .lock()
            .expect("book lock")
            .sandboxes
            .get(pod_uid)
            .cloned()
        else {
            return Ok(());
        };
        destroy_sandbox(&self.node, &sandbox).await?;
        let state = {
            let mut book = self.book.lock().expect("book lock");
            book.sandboxes.remove(pod_uid);
            book.ipam.release(pod_uid);
            book.persisted()
        };
        self.save(state).await
    }

    /// Removes everything `setup` and `create_sandbox` made: sandboxes,
    /// host routes, the host<->node veth, the node netns and the state file.
    /// Keeps going after an error and returns the first one.
    pub async fn teardown(self) -> Result<(), NodeNetError> {
        let _op = self.ops.lock().await;
        self.undo_cancelled_create().await;
        let mut first_err: Option<NodeNetError> = None;
        let mut note = |r: Result<(), NodeNetError>| {
            if let Err(e) = r {
                tracing::warn!(error = %e, "node network teardown step failed");
                first_err.get_or_insert(e);
            }
        };
        for sandbox in self.sandboxes() {
            note(destroy_sandbox(&self.node, &sandbox).await);
        }
        if let Ok(Some(link)) = self.host.link(&self.host_veth).await {
            for dst in host_route_dsts(&self.cfg) {
                note(
                    self.host
                        .delete_route(dst, Some(self.cfg.node_ip), link.index)
                        .await,
                );
            }
        }
        note(self.host.delete_link(&self.host_veth).await);
        note(delete_named_netns(&self.cfg.name));
        note(self.state_file.remove());
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A `create_sandbox` whose future was dropped midway leaves a pending
    /// sandbox; its pieces are removed and its address released (the
    /// allocation stays persisted until the next save, which is harmless).
    async fn undo_cancelled_create(&self) {
        let stale = self.book.lock().expect("book lock").pending.take();
        if let Some(stale) = stale {
            let _ = destroy_sandbox(&self.node, &stale).await;
            self.book
                .lock()
                .expect("book lock")
                .ipam
                .release(&stale.pod_uid);
        }
    }

    pub(crate) async fn save(&self, state: PersistedState) -> Result<(), NodeNetError> {
        let file = self.state_file.clone();
        tokio::task::spawn_blocking(move || file.save(&state))
            .await
            .map_err(|e| NodeNetError::Thread {
                op: "save state",
                reason: e.to_string(),
            })?
    }
}
