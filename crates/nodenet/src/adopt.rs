//! Adoption after a crash: the sandboxes a previous server recorded are
//! kept when intact and rebuilt when not; sandboxes nobody recorded are
//! removed.

use std::collections::{BTreeMap, HashSet};

use crate::error::NodeNetError;
use crate::ipam::PodIpam;
use crate::names;
use crate::netlink::Netlink;
use crate::netns::{delete_named_netns, list_named_netns, named_netns_path};
use crate::node::NodeNetwork;
use crate::sandbox::{build_sandbox, destroy_sandbox, sandbox_is_intact};
use crate::state::PersistedState;
use crate::Sandbox;

impl NodeNetwork {
    /// Loads the persisted sandboxes; keeps intact ones, rebuilds broken ones
    /// with the same names and address, drops those that cannot be rebuilt.
    pub(crate) async fn adopt_sandboxes(
        &self,
        saved: Option<PersistedState>,
    ) -> Result<(), NodeNetError> {
        let Some(saved) = saved else {
            return Ok(());
        };
        let entries = saved.sandboxes.iter().map(|s| (s.ip, s.pod_uid.clone()));
        let (mut ipam, _) = PodIpam::restore(self.cfg.pod_cidr, entries, saved.last_reserved);
        // An entry survives when the allocator accepted its address for its
        // uid (inside the Pod CIDR, no duplicate); the rest are removed,
        // unless they share a netns name with a surviving one.
        let (valid, invalid): (Vec<Sandbox>, Vec<Sandbox>) = {
            let mut seen = HashSet::new();
            saved.sandboxes.into_iter().partition(|s| {
                ipam.ip_of(&s.pod_uid) == Some(s.ip) && seen.insert(s.pod_uid.clone())
            })
        };
        let valid_netns: HashSet<String> = valid.iter().map(|s| s.netns_name.clone()).collect();
        for sandbox in invalid
            .iter()
            .filter(|s| !valid_netns.contains(&s.netns_name))
        {
            tracing::warn!(netns = %sandbox.netns_name, ip = %sandbox.ip, "removing sandbox outside the Pod CIDR");
            let _ = destroy_sandbox(&self.node, sandbox).await;
        }
        let mut kept = BTreeMap::new();
        for sandbox in valid {
            let sandbox = Sandbox {
                gateway: self.bridge_ip,
                prefix_len: self.cfg.pod_cidr.prefix_len(),
                ..sandbox
            };
            if sandbox_is_intact(&self.node, self.bridge_index, &sandbox).await? {
                kept.insert(sandbox.pod_uid.clone(), sandbox);
                continue;
            }
            tracing::info!(netns = %sandbox.netns_name, "repairing Pod sandbox");
            let _ = destroy_sandbox(&self.node, &sandbox).await;
            match build_sandbox(&self.node, self.bridge_index, &sandbox).await {
                Ok(()) => {
                    kept.insert(sandbox.pod_uid.clone(), sandbox);
                }
                Err(e) => {
                    tracing::warn!(netns = %sandbox.netns_name, error = %e, "cannot repair Pod sandbox; releasing it");
                    let _ = destroy_sandbox(&self.node, &sandbox).await;
                    ipam.release(&sandbox.pod_uid);
                }
            }
        }
        let state = {
            let mut book = self.book.lock().expect("book lock");
            book.ipam = ipam;
            book.sandboxes = kept;
            book.persisted()
        };
        self.save(state).await
    }

    /// Removes sandbox-shaped netns of this prefix that no record names, and
    /// bridge ports that belong to no recorded sandbox. A netns counts as
    /// this node's when its veth peer is a port of this node's bridge; an
    /// empty one (no link but `lo`) is a shell nobody can use. Anything
    /// else is another server's and left alone.
    pub(crate) async fn remove_unrecorded_sandboxes(&self) -> Result<(), NodeNetError> {
        let (known_netns, known_veths): (HashSet<String>, HashSet<String>) = {
            let book = self.book.lock().expect("book lock");
            (
                book.sandboxes
                    .values()
                    .map(|s| s.netns_name.clone())
                    .collect(),
                book.sandboxes
                    .values()
                    .map(|s| s.host_veth.clone())
                    .collect(),
            )
        };
        let node_links = self.node.links().await?;
        for name in list_named_netns() {
            if name == self.cfg.name
                || known_netns.contains(&name)
                || !names::looks_like_sandbox_netns(&self.cfg.netns_prefix, &name)
            {
                continue;
            }
            let peered_here = match self.node.nsid_of(&name).await {
                Ok(Some(nsid)) => node_links.iter().any(|l| {
                    l.peer_netnsid == Some(nsid) && l.controller == Some(self.bridge_index)
                }),
                _ => false,
            };
            let remove = peered_here || netns_is_empty(&name).await.unwrap_or(false);
            if remove {
                tracing::info!(netns = %name, "removing unrecorded Pod sandbox");
                delete_named_netns(&name)?;
            }
        }
        for link in &node_links {
            if link.controller == Some(self.bridge_index) && !known_veths.contains(&link.name) {
                tracing::info!(link = %link.name, "removing unrecorded bridge port");
                self.node.delete_link(&link.name).await?;
            }
        }
        Ok(())
    }
}

/// Whether a netns has no link but `lo` (a sandbox shell whose veth is gone).
async fn netns_is_empty(name: &str) -> Result<bool, NodeNetError> {
    let nl = Netlink::connect_in(&named_netns_path(name), name).await?;
    Ok(nl.links().await?.iter().all(|l| l.name == "lo"))
}
